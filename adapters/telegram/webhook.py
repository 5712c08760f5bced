"""`POST /telegram/webhook` on the shared aiohttp app. Telegram resends an update until it gets a
2xx, and holds back the bot's next updates while it waits: so the route only keeps the update
in the Redis inbox (a resend is kept once) and says 200 at once; the workers' inbox drains
hand kept updates to the PTB Application (`TelegramBot.handle`, core/service/inbox.py)."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from adapters.telegram.app import TelegramBot
from adapters.telegram.outbox import CHANNEL
from core.service.health import Backoff, watched

TELEGRAM = web.AppKey("telegram", TelegramBot)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # https://core.telegram.org/bots/api#setwebhook


def add_telegram_webhook(app: web.Application, telegram: TelegramBot, secret: str | None,
                         backoff: Backoff | None = None) -> None:
    """Without a secret every request is refused: an open webhook lets anyone answer tasks."""
    stores, clock, ttl_ms = telegram.stores, telegram.service.clock, telegram.update_ttl_ms

    async def receive(request: web.Request) -> web.Response:
        sent = request.headers.get(SECRET_HEADER, "")
        if not secret or not hmac.compare_digest(sent.encode(), secret.encode()):
            raise web.HTTPForbidden(text="bad secret token")
        body = (await request.read()).decode("utf-8", "replace")
        update_id, lane = _address(body)
        await stores.inbox.inbox_put(CHANNEL, str(update_id), lane, body, ttl_ms,
                                     clock.now_ms())
        return web.Response(status=200)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        """getMe (the bot's name, for invite links) at start; an unreachable Bot API is tried
        again in the background while the process serves everything else."""
        try:
            async with watched(stores.health, CHANNEL, telegram.application.initialize,
                               backoff or Backoff()):
                yield
        finally:
            await telegram.application.shutdown()  # a no-op unless it came up
            await telegram.application.bot.shutdown()  # a try that failed half-way

    app[TELEGRAM] = telegram
    app.router.add_post("/telegram/webhook", receive)
    app.cleanup_ctx.append(lifecycle)


def _address(body: str) -> tuple[int, str]:
    """The update's id (resends share it) and its lane: the user it comes from, whose updates
    are handled in order. Only what the inbox needs is read here; PTB reads the rest later."""
    try:
        update: Any = json.loads(body)
        update_id = update["update_id"]
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise web.HTTPBadRequest(text="not a Telegram update") from exc
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise web.HTTPBadRequest(text="not a Telegram update: update_id is not an integer")
    for part in update.values():
        if isinstance(part, dict) and isinstance(sender := part.get("from"), dict):
            return update_id, str(sender.get("id", update_id))
    return update_id, str(update_id)
