"""The dashboard's routes on the shared aiohttp app, behind the API's token: a login form sets
an HttpOnly, SameSite=Strict cookie, or `?token=` does once and is dropped from the URL. With
no token configured the dashboard is open, like the API (which then serves only 127.0.0.1).
Its one action, sending an item to adjudication, needs the same cookie and the form's key (an
HMAC of the store's shared secret that only a page this dashboard drew carries), so another
site's form cannot act for a signed-in coordinator, nor for anyone when the dashboard is open.
The page sends no referrer, so Chromium's Origin on its forms is `null`: no use to check."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from aiohttp import web

from adapters.dashboard import render
from adapters.dashboard.asks import SHOWN, RecentAsks, live_asks
from adapters.dashboard.panels import Panels
from core.errors import ExpertloopError
from core.ports import History
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator

STATIC = Path(__file__).with_name("static")
COOKIE = "expertloop_dashboard"
COOKIE_MAX_AGE = 12 * 3600


class Dashboard:
    def __init__(self, panels: Panels, token: str | None, asks: RecentAsks | None = None
                 ) -> None:
        self.panels = panels
        self.token = token
        self.asks = asks
        self.lock = asyncio.Lock()  # one rebuild at a time; a second viewer waits for it

    def cookie_value(self) -> str:
        """The cookie holds a digest of the token, not the token, so it cannot call the API."""
        assert self.token is not None
        return hmac.new(self.token.encode(), b"expertloop dashboard", hashlib.sha256).hexdigest()

    def token_ok(self, sent: str) -> bool:
        return self.token is not None and hmac.compare_digest(sent.encode(), self.token.encode())

    def cookie_ok(self, request: web.Request) -> bool:
        sent = request.cookies.get(COOKIE, "")
        return self.token is None or hmac.compare_digest(sent.encode(),
                                                         self.cookie_value().encode())


DASHBOARD = web.AppKey("dashboard", Dashboard)


def add_dashboard_routes(app: web.Application, coordinator: Coordinator, ledger: Ledger,
                         token: str | None, asks: RecentAsks | None = None,
                         history: History | None = None) -> None:
    """`history`: what panels read the log through (the plain reader of `ledger` when None)."""
    app[DASHBOARD] = Dashboard(Panels(coordinator, ledger, history=history), token, asks)
    app.router.add_static("/dashboard/static", STATIC)
    app.router.add_get("/", show_dashboard)
    app.router.add_post("/login", post_login)
    app.router.add_post("/logout", post_logout)
    app.router.add_post("/campaigns/{id}/adjudicate", post_adjudicate)
    app.on_cleanup.append(stop_builds)


async def stop_builds(app: web.Application) -> None:
    """Panels still being read when the server stops are dropped, not left running."""
    await app[DASHBOARD].panels.stop()


async def show_dashboard(request: web.Request) -> web.StreamResponse:
    board = request.app[DASHBOARD]
    if "token" in request.query:
        return _sign_in(board, request, str(request.query["token"]))
    if not board.cookie_ok(request):
        return _html(render.login(), status=401)
    started = time.perf_counter()
    async with board.lock:
        shown = await board.panels.all()
    live = live_asks(await board.asks.list(SHOWN)) if board.asks else ""
    return _html(render.page(shown, signed_in=board.token is not None, live=live,
                             built_seconds=time.perf_counter() - started,
                             notice=_notice(request), form_key=await _form_key(board)))


async def post_adjudicate(request: web.Request) -> web.StreamResponse:
    """The form's item goes to an adjudicator; the page then says what happened."""
    board = request.app[DASHBOARD]
    form = await request.post()
    sent_key = str(form.get("key", ""))
    if not board.cookie_ok(request) or not hmac.compare_digest(
            sent_key.encode(), (await _form_key(board)).encode()):
        return _html(render.login("Sign in to send items to adjudication."), status=401)
    campaign_id = request.match_info["id"]
    item = str(form.get("item", "")).strip()
    try:
        if not item:
            raise ExpertloopError("give the id of the item to adjudicate")
        queued = await board.panels.coordinator.adjudicate(campaign_id, item, "dashboard")
    except ExpertloopError as exc:
        return _redirect({"error": str(exc)}, campaign_id)
    said = "sent to adjudication" if queued else "already waits for an adjudicator"
    return _redirect({"done": f"{campaign_id}: item {item} {said}"}, campaign_id)


async def _form_key(board: Dashboard) -> str:
    secret = await board.panels.coordinator.access.shared_secret()
    return hmac.new(secret.encode(), b"expertloop dashboard form", hashlib.sha256).hexdigest()


def _notice(request: web.Request) -> tuple[str, str] | None:
    for tone in ("error", "done"):
        if tone in request.query:
            return tone, str(request.query[tone])[:300]
    return None


async def post_login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    return _sign_in(request.app[DASHBOARD], request, str(form.get("token", "")))


async def post_logout(request: web.Request) -> web.StreamResponse:
    response = _redirect()
    response.del_cookie(COOKIE, path="/")
    return response


def _sign_in(board: Dashboard, request: web.Request, sent: str) -> web.StreamResponse:
    """A right token sets the cookie and redirects to `/`, so the token leaves the URL (and the
    browser's history keeps no copy of a `?token=` page that rendered)."""
    if board.token is None:
        return _redirect()
    if not board.token_ok(sent):
        return _html(render.login("That token is not right."), status=401)
    response = _redirect()
    response.set_cookie(COOKIE, board.cookie_value(), max_age=COOKIE_MAX_AGE, path="/",
                        httponly=True, samesite="Strict", secure=request.secure)
    return response


def _redirect(query: dict[str, str] | None = None, anchor: str = "") -> web.Response:
    where = "/" + (f"?{urlencode(query)}" if query else "")
    where += f"#c-{quote(anchor)}" if anchor else ""
    return web.Response(status=303, headers={"Location": where, "Cache-Control": "no-store"})


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
