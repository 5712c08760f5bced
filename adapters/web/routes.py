"""The web chat's routes on the shared aiohttp app. Each handler resolves the expert from the
link's token, then does what a bot's listener does: translate, call the service, render."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from adapters.web import render
from adapters.web.answers import InvalidForm, answer_from_form
from adapters.web.media import MediaLinks, add_media_route
from adapters.web.messenger import WebMessenger
from core.domain.answers import Answer
from core.domain.asks import decision_words, is_ask_token
from core.domain.experts import Expert
from core.domain.kinds import Approve
from core.domain.media import Media
from core.errors import NotKept
from core.ports import Access
from core.service.delivery import answer, deliver
from core.service.service import Service

STATIC = Path(__file__).with_name("static")
SERVICE = web.AppKey("web_chat_service", Service)
STORE = web.AppKey("web_chat_store", Access)


def add_chat_routes(app: web.Application, service: Service, store: Access,
                    media: Media | None = None) -> None:
    """`store` keeps the secret every process signs the forms' CSRF tokens and the image links
    with; `media` holds the images' bytes (without it, no image is served)."""
    app[SERVICE] = service
    app[STORE] = store
    if media is not None:
        add_media_route(app, media, store, service.clock)
    app.router.add_static("/chat/static", STATIC)
    app.router.add_get("/chat/{token}", show_chat)
    app.router.add_post("/chat/{token}/answer", post_answer)
    app.router.add_post("/chat/{token}/opened", post_opened)
    app.router.add_post("/chat/{token}/pause", post_pause)
    app.router.add_post("/chat/{token}/resume", post_resume)
    app.router.add_get("/chat/{token}/stats", get_stats)


async def show_chat(request: web.Request) -> web.Response:
    session = await _session(request)
    expert, messenger = session.expert, session.messenger(request)
    service = request.app[SERVICE]
    await deliver(service, messenger, expert.id, await service.next_task(expert.id))
    return _html(render.page(expert, session.token, session.csrf, messenger.current))


async def post_answer(request: web.Request) -> web.Response:
    """A resubmitted form or a double click carries the same lease: the core records it once
    and this returns what was recorded the first time."""
    session = await _session(request, check_csrf=True)
    expert, service = session.expert, request.app[SERVICE]
    form = await request.post()
    try:
        given = answer_from_form(expert.id, {k: str(v) for k, v in form.items()},
                                 [str(v) for v in form.getall("labels", [])])
    except InvalidForm as exc:
        raise web.HTTPUnprocessableEntity(text=f"Not saved: {exc}") from exc
    messenger = session.messenger(request, await _said(service, given))
    try:
        outcome = await answer(service, messenger, expert.id, given)
    except NotKept as exc:  # nothing acknowledged: the expert sends it again
        raise web.HTTPServiceUnavailable(text=f"Not saved, please try again: {exc}") from exc
    if outcome.status == "refused" and outcome.next is None:  # the card stays to fix and resend
        await deliver(service, messenger, expert.id, await service.next_task(expert.id))
    if request.headers.get("X-Requested-With") != "fetch":  # a plain form post, no script
        raise web.HTTPSeeOther(f"/chat/{session.token}")
    return _fragments(messenger)


async def _said(service: Service, given: Answer) -> str:
    """A live ask's decision in words; an edit names the arguments it changed, against the
    proposal as the card showed it (read before the answer ends the card)."""
    if not is_ask_token(given.lease):
        return ""
    before = None
    if isinstance(given.decision, Approve) and given.decision.verdict == "edited":
        card = await service.asks.card(given.lease)
        before = card.ask.args if card is not None and card.ask is not None else None
    return decision_words(given.decision, before)


async def post_opened(request: web.Request) -> web.Response:
    expert = (await _session(request, check_csrf=True)).expert
    lease = str((await request.post()).get("lease", ""))
    await request.app[SERVICE].opened(lease, expert.id)
    return web.Response(status=204)


async def post_pause(request: web.Request) -> web.Response:
    return await _set_paused(request, True)


async def post_resume(request: web.Request) -> web.Response:
    return await _set_paused(request, False)


async def _set_paused(request: web.Request, paused: bool) -> web.Response:
    session = await _session(request, check_csrf=True)
    expert, messenger = session.expert, session.messenger(request)
    service = request.app[SERVICE]
    await service.set_paused(expert.id, paused)
    await deliver(service, messenger, expert.id, await service.next_task(expert.id))
    return _fragments(messenger)


async def get_stats(request: web.Request) -> web.Response:
    expert = (await _session(request)).expert
    return _html(render.stats(await request.app[SERVICE].stats(expert.id)))


@dataclass(frozen=True)
class Session:
    """The expert behind a chat link, the CSRF token their forms must carry back, and the
    shared secret their cards' image links are signed under."""

    expert: Expert
    token: str
    csrf: str
    secret: str

    def messenger(self, request: web.Request, said: str = "") -> WebMessenger:
        service = request.app[SERVICE]
        return WebMessenger(service.clock, self.token, self.csrf, MediaLinks(self.secret), said)


async def _session(request: web.Request, check_csrf: bool = False) -> Session:
    token = request.match_info["token"]
    expert = await request.app[SERVICE].web_chat_expert(token)
    if expert is None:
        raise web.HTTPNotFound(text=render.invalid_link(), content_type="text/html")
    secret = await request.app[STORE].shared_secret()
    csrf = hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
    if check_csrf:
        sent = str((await request.post()).get("csrf", "")) or request.headers.get("X-CSRF", "")
        if not hmac.compare_digest(sent, csrf):
            raise web.HTTPForbidden(text="This form is stale or not from expertloop.")
    return Session(expert, token, csrf, secret)


def _fragments(messenger: WebMessenger) -> web.Response:
    return web.json_response({"log": messenger.log, "current": messenger.current})


def _html(body: str) -> web.Response:
    return web.Response(text=body, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
