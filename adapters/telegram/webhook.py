"""`POST /telegram/webhook` on the shared aiohttp app: the PTB Application processes each update
in the request, without a web server of its own. Telegram resends an update until it gets a
2xx, so an update whose handling failed answers 500 (recording is idempotent)."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator

from aiohttp import web
from telegram import Update

from adapters.telegram.app import Telegram

TELEGRAM = web.AppKey("telegram", Telegram)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # https://core.telegram.org/bots/api#setwebhook


def add_telegram_webhook(app: web.Application, telegram: Telegram, secret: str | None) -> None:
    """Without a secret every request is refused: an open webhook lets anyone answer tasks."""

    async def receive(request: web.Request) -> web.Response:
        sent = request.headers.get(SECRET_HEADER, "")
        if not secret or not hmac.compare_digest(sent.encode(), secret.encode()):
            raise web.HTTPForbidden(text="bad secret token")
        try:
            update = Update.de_json(await request.json(), telegram.application.bot)
        except (json.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
            raise web.HTTPBadRequest(text="not a Telegram update") from exc
        await telegram.application.process_update(update)
        outcome = await telegram.channel.handled(update.update_id)
        if outcome == "failed":
            raise web.HTTPInternalServerError(text="not recorded; send it again")
        if outcome == "busy":
            raise web.HTTPServiceUnavailable(text="being handled; send it again",
                                             headers={"Retry-After": "1"})
        return web.Response(status=200)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with telegram.application:
            yield

    app[TELEGRAM] = telegram
    app.router.add_post("/telegram/webhook", receive)
    app.cleanup_ctx.append(lifecycle)
