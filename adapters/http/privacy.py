"""An expert's own data over the coordinator API: export it whole, or erase it."""

from __future__ import annotations

from aiohttp import web

from adapters.http.context import api_of


async def export_expert(request: web.Request) -> web.Response:
    """Everything held about the expert; access tokens as digests only."""
    found = await api_of(request).privacy.export(request.match_info["id"])
    return web.json_response(text=found.model_dump_json())


async def erase_expert(request: web.Request) -> web.Response:
    """Permanent: 409 if already erased. The answer names the pseudonym, not the id."""
    report = await api_of(request).privacy.erase(request.match_info["id"])
    return web.json_response(text=report.model_dump_json())
