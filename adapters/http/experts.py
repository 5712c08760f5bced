"""Expert routes of the coordinator API: add a profile, read it back with invite links."""

from __future__ import annotations

import json

from aiohttp import web

from adapters.http.context import api_of
from core.experts import Expert


async def post_expert(request: web.Request) -> web.Response:
    api = api_of(request)
    expert = await api.coordinator.add_expert(Expert.model_validate(
        json.loads(await request.text())))
    token = await api.coordinator.invite_web(expert.id)
    return web.json_response(_profile(expert, token, api.settings.public_url), status=201)


async def get_expert(request: web.Request) -> web.Response:
    """The profile; invite links are only shown when made (POST), never read back."""
    api = api_of(request)
    expert = await api.coordinator.expert(request.match_info["id"])
    return web.json_response(_profile(expert, None, api.settings.public_url))


async def post_invite(request: web.Request) -> web.Response:
    """A new web chat link (the old one stops working)."""
    api = api_of(request)
    expert = await api.coordinator.expert(request.match_info["id"])
    token = await api.coordinator.invite_web(expert.id)
    return web.json_response(_profile(expert, token, api.settings.public_url), status=201)


def _profile(expert: Expert, token: str | None, base: str) -> dict[str, object]:
    """A web chat link is a secret shown once, when made; later reads say how to get a new
    one (the store keeps only its hash)."""
    web = f"{base}/chat/{token}" if token else None
    invites = {"web": web, "new_web": f"POST /api/experts/{expert.id}/invite"}
    return {**expert.model_dump(mode="json"), "invites": invites}
