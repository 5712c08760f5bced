"""Telegram wiring: settings from the environment, long polling (`expertloop telegram-poll`),
the webhook route on the web process, Telegram for the workers' delivery loop, and invite
links. Off when TELEGRAM_BOT_TOKEN is unset."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web
from telegram.error import TelegramError

from adapters.http.experts import TELEGRAM_INVITE
from adapters.telegram.app import CHANNEL, TelegramBot, TelegramSettings, build_telegram
from adapters.telegram.delivery import TelegramDelivery
from adapters.telegram.links import deep_link, invite_link
from adapters.telegram.polling import run_polling
from adapters.telegram.webhook import add_telegram_webhook
from bots.runtime import Runtime, channel_off, stop_on_signals
from bots.settings import Settings
from core.errors import ChannelDown

log = logging.getLogger(__name__)


def telegram_settings(settings: Settings) -> TelegramSettings | None:
    if settings.telegram_bot_token is None:
        return None
    return TelegramSettings(token=settings.telegram_bot_token, api_url=settings.telegram_api_url,
                            webhook_secret=settings.telegram_webhook_secret)


def build(runtime: Runtime, *, polling: bool = False) -> TelegramBot | None:
    found = telegram_settings(runtime.settings)
    if found is None:
        return None
    return build_telegram(found, runtime.service, runtime.coordinator, runtime.store.roles(),
                          polling=polling, media=runtime.media)


def add_telegram(app: web.Application, runtime: Runtime) -> None:
    """`POST /telegram/webhook` when TELEGRAM_BOT_TOKEN is set; it refuses every request until
    TELEGRAM_WEBHOOK_SECRET is set too."""
    telegram = build(runtime)
    if telegram is None:
        return
    secret = runtime.settings.telegram_webhook_secret
    if secret is None:
        log.warning("TELEGRAM_WEBHOOK_SECRET is unset: the Telegram webhook refuses everything")
    add_telegram_webhook(app, telegram, secret.get_secret_value() if secret else None,
                         runtime.settings.backoff())

    async def invite(token: str) -> str:  # the webhook's bot, initialized once Telegram answers
        try:
            return deep_link(telegram.application.bot, token)
        except RuntimeError:  # getMe has not answered yet: the bot's name is unknown
            health = await runtime.store.channel_health(CHANNEL)
            raise ChannelDown("Telegram is not up yet, so no invite link can be made "
                              f"({health.reason or 'the Bot API has not answered'}); "
                              "ask again once /healthz shows it up") from None

    app[TELEGRAM_INVITE] = invite


def telegram_delivery(runtime: Runtime) -> TelegramDelivery | None:
    """Telegram for the workers' delivery loop, when it is on."""
    telegram = build(runtime)
    if telegram is None:
        return None
    return TelegramDelivery(telegram, round(runtime.settings.telegram_push_interval_s * 1000))


async def poll(runtime: Runtime, args: argparse.Namespace) -> int:
    telegram = build(runtime, polling=True)
    if telegram is None:
        return await channel_off("Telegram", "TELEGRAM_BOT_TOKEN is not set", args)
    await run_polling(telegram, stop_on_signals())
    return 0


async def telegram_invite(runtime: Runtime, expert_id: str) -> str:
    found = telegram_settings(runtime.settings)
    if found is None:
        raise SystemExit("error: TELEGRAM_BOT_TOKEN is not set")
    try:
        return await invite_link(found, await runtime.coordinator.new_invite(expert_id))
    except TelegramError as exc:
        raise SystemExit(f"error: Telegram is not reachable, so no invite link can be made "
                         f"(the bot's name comes from getMe): {exc}") from exc
