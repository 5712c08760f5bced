"""Telegram wiring: settings from the environment, long polling (`expertloop telegram-poll`),
the webhook route on the web process, and invite links. Off when TELEGRAM_BOT_TOKEN is unset."""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web
from telegram import Bot
from telegram.error import TelegramError

from adapters.http.experts import TELEGRAM_INVITE
from adapters.telegram.app import CHANNEL, Telegram, TelegramSettings, build_telegram
from adapters.telegram.links import deep_link, invite_link
from adapters.telegram.polling import run_polling
from adapters.telegram.pushes import TelegramPusher
from adapters.telegram.webhook import add_telegram_webhook
from bots.runtime import Runtime, channel_off, stop_on_signals
from bots.settings import Settings
from core.errors import ChannelDown
from core.health import Backoff, wait_until_up

log = logging.getLogger(__name__)


def telegram_settings(settings: Settings) -> TelegramSettings | None:
    if settings.telegram_bot_token is None:
        return None
    return TelegramSettings(token=settings.telegram_bot_token, api_url=settings.telegram_api_url,
                            webhook_secret=settings.telegram_webhook_secret)


def build(runtime: Runtime, *, polling: bool = False) -> Telegram | None:
    found = telegram_settings(runtime.settings)
    if found is None:
        return None
    return build_telegram(found, runtime.service, runtime.coordinator, polling=polling)


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


class TelegramWorker:
    """The worker's share of Telegram: handle the updates the webhook kept, send what the
    outbox owes, and offer idle experts a card. The bot connects (getMe) on first need and
    stays connected; a Telegram outage waits for the next tick."""

    def __init__(self, telegram: Telegram, pusher: TelegramPusher,
                 backoff: Backoff | None = None) -> None:
        self.telegram = telegram
        self.pusher = pusher
        self.backoff = backoff or Backoff()
        self.waiting = False  # for Telegram to answer: the outbox and pushes wait with us

    async def handle_kept(self, stop: asyncio.Event) -> None:
        """Until `stop`: the kept updates through the Application, which needs getMe first: an
        unreachable Telegram is tried again with backoff (the channel degraded in /healthz
        meanwhile), and the updates are safe in Redis."""
        application, self.waiting = self.telegram.application, True
        up = await wait_until_up(self.telegram.channel.service.store, CHANNEL,
                                 application.initialize, self.backoff, stop)
        self.waiting = False
        if not up:
            return
        try:
            await self.telegram.drain.run_until(stop)
        finally:
            await application.shutdown()

    async def drain(self) -> int:
        outbox = self.telegram.channel.outbox
        if self.waiting or not await outbox.owed():
            return 0
        try:
            return await outbox.drain(await self._bot())
        except TelegramError as exc:
            log.warning("telegram outbox not drained: %r", exc)
            return 0

    async def push_idle(self) -> int:
        if self.waiting:  # Telegram is down: each tick would wait out getMe's tries for nothing
            return 0
        try:
            return await self.pusher.push_idle(await self._bot())
        except TelegramError as exc:
            log.warning("no telegram pushes this tick: %r", exc)
            return 0

    async def close(self) -> None:
        await self.telegram.application.bot.shutdown()

    async def _bot(self) -> Bot:
        bot = self.telegram.application.bot
        await bot.initialize()  # once: a no-op when it is already
        return bot


def worker_share(runtime: Runtime) -> TelegramWorker | None:
    telegram = build(runtime)
    if telegram is None:
        return None
    pusher = TelegramPusher(runtime.service, telegram.channel.outbox,
                            round(runtime.settings.telegram_push_interval_s * 1000))
    return TelegramWorker(telegram, pusher, runtime.settings.backoff())


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
