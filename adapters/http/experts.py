"""Expert routes of the coordinator API: add a profile, change it, read it back with invite
links."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from adapters.http.context import api_of
from core.domain.experts import Expert
from core.errors import ChannelDown, ExpertloopError

# token -> the chat's deep link (`https://t.me/<bot>?start=<token>`); set when Telegram is on
TELEGRAM_INVITE = web.AppKey("telegram_invite", Callable[[str], Awaitable[str]])


async def post_expert(request: web.Request) -> web.Response:
    api = api_of(request)
    expert = await api.coordinator.add_expert(Expert.model_validate(
        json.loads(await request.text())))
    return web.json_response(await _with_invites(request, expert), status=201)


async def patch_expert(request: web.Request) -> web.Response:
    """Only the fields sent change (level, roles, name, skills, ...); the id and linked
    accounts stay (accounts change through linking)."""
    api = api_of(request)
    changes = json.loads(await request.text())
    if not isinstance(changes, dict) or not changes:
        raise ExpertloopError("send a JSON object with the fields to change, e.g. "
                              '{"level": "senior", "roles": ["adjudicator"]}')
    expert = await api.coordinator.update_expert(request.match_info["id"], changes)
    return web.json_response(_profile(expert, None, api.settings.public_url))


async def get_expert(request: web.Request) -> web.Response:
    """The profile; invite links are only shown when made (POST), never read back."""
    api = api_of(request)
    expert = await api.coordinator.expert(request.match_info["id"])
    return web.json_response(_profile(expert, None, api.settings.public_url))


async def post_invite(request: web.Request) -> web.Response:
    """New invites: a web chat link (the old one stops working) and a Telegram deep link."""
    api = api_of(request)
    expert = await api.coordinator.expert(request.match_info["id"])
    return web.json_response(await _with_invites(request, expert), status=201)


async def _with_invites(request: web.Request, expert: Expert) -> dict[str, object]:
    """The profile with fresh invites: a web chat link and, when Telegram is on, a single-use
    deep link into the bot (as `expertloop expert invite ID --telegram` prints)."""
    api = api_of(request)
    token = await api.coordinator.invite_web(expert.id)
    link = request.app.get(TELEGRAM_INVITE)
    try:
        telegram = await link(await api.coordinator.new_invite(expert.id)) if link else None
    except ChannelDown as exc:  # Telegram on but not up yet: say so where the link would be
        return _profile(expert, token, api.settings.public_url, None, str(exc))
    return _profile(expert, token, api.settings.public_url, telegram)


def _profile(expert: Expert, token: str | None, base: str,
             telegram: str | None = None, telegram_note: str | None = None
             ) -> dict[str, object]:
    """A web chat link is a secret shown once, when made; later reads say how to get a new
    one (the store keeps only its hash)."""
    web = f"{base}/chat/{token}" if token else None
    invites = {"web": web, "new_web": f"POST /api/experts/{expert.id}/invite", "telegram": telegram}
    if telegram_note is not None:
        invites["telegram_note"] = telegram_note
    return {**expert.model_dump(mode="json"), "invites": invites}


async def requalify(request: web.Request) -> web.Response:
    """Let an expert take a campaign's qualification again."""
    api = api_of(request)
    expert_id, campaign_id = request.match_info["id"], request.match_info["campaign"]
    done = await api.coordinator.requalify(expert_id, campaign_id, "api")
    return web.json_response({"expert": expert_id, "campaign": campaign_id, "requalified": done,
                              "note": None if done else "they had not begun it: nothing to undo"})
