"""An expert's own data over the coordinator API: export it whole, or erase it."""

from __future__ import annotations

from aiohttp import web

from adapters.http.context import api_of
from core.privacy import Privacy


def _privacy(request: web.Request) -> Privacy:
    api = api_of(request)
    return Privacy(api.coordinator.store, api.ledger, api.coordinator.catalog)


async def export_expert(request: web.Request) -> web.Response:
    """Everything held about the expert; access tokens as digests only."""
    found = await _privacy(request).export(request.match_info["id"])
    return web.json_response(text=found.model_dump_json())


async def erase_expert(request: web.Request) -> web.Response:
    """Permanent: 409 if already erased. The answer names the pseudonym, not the id."""
    report = await _privacy(request).erase(request.match_info["id"])
    return web.json_response(text=report.model_dump_json())
