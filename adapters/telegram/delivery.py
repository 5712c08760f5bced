"""Telegram as the workers' delivery loop (core/service/delivery.py) sees it: the bot connects with
getMe, pushes go without a sound near an expert's quiet hours, and only a network error or a
long 429 is worth sending again."""

from __future__ import annotations

import asyncio

from adapters.telegram.app import TelegramBot
from adapters.telegram.copies import Copies
from adapters.telegram.messenger import TelegramMessenger, near_quiet_hours
from adapters.telegram.outbox import CHANNEL, send_closing, undeliverable
from core.domain.experts import Expert

PUSH_INTERVAL_MS = 30_000  # an expert is looked at by one worker at most this often


class TelegramDelivery:
    name = CHANNEL

    def __init__(self, telegram: TelegramBot, push_interval_ms: int = PUSH_INTERVAL_MS) -> None:
        self.telegram = telegram
        self.push_interval_ms = push_interval_ms

    async def probe(self) -> None:
        """getMe, once: the Application needs the bot's name before its first handler."""
        await self.telegram.application.initialize()

    async def handle_kept(self, stop: asyncio.Event) -> None:
        """The updates the webhook kept, through the Application's handlers."""
        await self.telegram.drain.run_until(stop)

    def messenger_for(self, expert: Expert | None) -> TelegramMessenger:
        clock, bot = self.telegram.service.clock, self.telegram.application.bot
        silent = expert is None or near_quiet_hours(expert, clock.now_ms())
        copies = Copies(bot, self.telegram.stores.leases)
        return TelegramMessenger(bot, clock, silent=silent, copies=copies,
                                 pictures=self.telegram.pictures)

    async def may_disturb(self, address: str) -> bool:
        return True  # Telegram has no do-not-disturb a bot can read; quiet hours go silent

    async def send_edit(self, entry: str) -> None:
        await send_closing(self.telegram.application.bot, self.telegram.service.clock, entry)

    def worth_retrying(self, exc: Exception) -> bool:
        return undeliverable(exc)

    async def close(self) -> None:
        await self.telegram.application.shutdown()  # a no-op unless getMe answered
        await self.telegram.application.bot.shutdown()
