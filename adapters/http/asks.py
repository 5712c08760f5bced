"""Live asks on the coordinator API (docs/asks.md): post, long poll, withdraw, list. The flow is
core/service/asks.py; here are the HTTP rules: a 256 KiB body, a pace per API token, a
callback URL that is signed, http(s) and not this server or a private address."""

from __future__ import annotations

import hashlib
import json
import math
from typing import get_args

from aiohttp import web

from adapters.http import campaigns
from adapters.http.context import Api, api_of
from adapters.http.middleware import error
from core.domain.asks import ASKS_LOG, AskRequest, AskStatus
from core.errors import InvalidCampaign, Problem

MAX_BODY = 256 << 10
MAX_WAIT_S = 60
MAX_LIST = 1000
MINUTE_MS = 60_000
STATUSES = get_args(AskStatus)


async def post_ask(request: web.Request) -> web.Response:
    """201 with the new ask; 200 with the same ask for a repeat `call_id` and body."""
    api = api_of(request)
    caller = caller_of(request)
    if (retry_after := await _paced(api, caller)) is not None:
        refused = error(429, f"more than {api.settings.asks_per_minute} asks a minute from "
                             f"this token; try again in {retry_after} s")
        refused.headers["Retry-After"] = str(retry_after)
        return refused
    ask = AskRequest.model_validate(json.loads(await _body(request)))
    await _check_callback(api, ask)
    view, created = await api.asks.post(ask, caller)
    return web.json_response(view.model_dump(mode="json"), status=201 if created else 200)


def caller_of(request: web.Request) -> str:
    """Who posts: the SHA-256 of the bearer token sent ("" without one). A `call_id` is unique
    per caller, and the pace is kept per caller; the token itself is never stored."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return ""
    return hashlib.sha256(token.encode()).hexdigest()


async def _paced(api: Api, caller: str) -> int | None:
    """None when this ask may go on; else the seconds to wait. Each post takes the caller's
    next slot, `interval` apart (a cell rate): a minute's worth may come at once, and past it
    one per interval. A refused post takes a slot too, so a client that ignores Retry-After
    stays refused."""
    per_minute = api.settings.asks_per_minute
    interval = max(MINUTE_MS // per_minute, 1)
    burst = interval * (per_minute - 1)  # how far ahead of now a slot may be taken
    wait = await api.turns.next_slot(f"asks:{caller[:32] or 'open'}", interval)
    if wait <= burst:
        return None
    return max(math.ceil((wait + interval - burst) / 1000), 1)


async def _body(request: web.Request) -> bytes:
    """Read as it arrives and cut off past MAX_BODY, whatever EXPERTLOOP_MAX_BODY says (that
    is the campaigns' limit)."""
    if (request.content_length or 0) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY,
                                            actual_size=request.content_length or 0)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)


async def _check_callback(api: Api, ask: AskRequest) -> None:
    if ask.callback is None:
        return
    if not api.settings.callbacks_signed:
        raise InvalidCampaign([Problem(
            "an ask with a callback needs EXPERTLOOP_CALLBACK_SECRET set on the server, to "
            "sign it; post without a callback and poll instead", loc=("callback",))])
    if why := await api.callback_refusal(ask.callback.url):
        raise InvalidCampaign([Problem(why, loc=("callback", "url"))])


async def get_ask(request: web.Request) -> web.Response:
    """`?wait=N` (at most 60): at once when decided, else after N s, still pending. Read from
    Redis, so any web process answers for an ask any other took."""
    api = api_of(request)
    wait = _wait_s(request)
    ask_id = request.match_info["id"]
    view = await api.asks.wait(ask_id, wait) if wait > 0 else await api.asks.view(ask_id)
    return web.json_response(view.model_dump(mode="json"))


def _wait_s(request: web.Request) -> float:
    text = request.query.get("wait", "0")
    try:
        wait = float(text)
    except ValueError:
        wait = math.nan
    if not 0 <= wait <= MAX_WAIT_S:  # NaN fails too
        raise InvalidCampaign([Problem(f"wait is a number of seconds from 0 to {MAX_WAIT_S}, "
                                       f"not {text[:20]!r}", loc=("query", "wait"))])
    return wait


async def delete_ask(request: web.Request) -> web.Response:
    """The agent withdraws its question; experts holding it are told it is no longer needed."""
    view = await api_of(request).asks.withdraw(request.match_info["id"])
    return web.json_response(view.model_dump(mode="json"))


async def list_asks(request: web.Request) -> web.Response:
    """Recent asks, newest first; `?status=pending` and `?limit=` narrow it."""
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidCampaign([Problem(f"status is one of {', '.join(STATUSES)}",
                                       loc=("query", "status"))])
    limit = _limit(request.query.get("limit", "100"))
    found = await api_of(request).asks.list(limit, status)
    return web.json_response([view.model_dump(mode="json") for view in found])


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIST:
        raise InvalidCampaign([Problem(f"limit is a whole number from 1 to {MAX_LIST}",
                                       loc=("query", "limit"))])
    return int(text)


async def verify(request: web.Request) -> web.Response:
    """GET /api/provenance/asks/verify seals and checks the asks log, which is no campaign;
    any other id is a campaign's log."""
    if request.match_info["campaign"] != ASKS_LOG:
        return await campaigns.verify(request)
    ledger = api_of(request).ledger
    await ledger.seal(ASKS_LOG)
    verdict = await ledger.verify(ASKS_LOG)
    return web.json_response({**verdict.model_dump(mode="json"), "summary": verdict.line()})
