"""Telegram as the workers' delivery loop (core/service/delivery.py) sees it: the bot connects with
getMe, pushes go without a sound near an expert's quiet hours, and only a network error or a
long 429 is worth sending again."""

from __future__ import annotations

import asyncio
from html import escape

from adapters.telegram.app import TelegramBot
from adapters.telegram.copies import Copies, retire_message
from adapters.telegram.keyboards import TEXT_LIMIT, card_parts
from adapters.telegram.messenger import MAX_PARTS, TelegramMessenger, near_quiet_hours
from adapters.telegram.outbox import CHANNEL, send_closing, undeliverable
from core.domain.asks import ASKS_LOG
from core.domain.cards import Card
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

    async def retire_ask(self, address: str, token: str, message_ids: list[str],
                         card: Card | None, shown_at: int | None, text: str) -> None:
        """A live ask's card nobody needs to answer any more: each message in the chat that
        shows it (`message_ids`, `<chat>:<id>` as recorded at delivery, and any copy shown
        since) is edited to end with why, and loses its buttons."""
        bot = self.telegram.application.bot
        shown = set(await Copies(bot, self.telegram.stores.leases).showings(ASKS_LOG, token))
        shown |= {m.partition(":")[2] for m in message_ids if m.partition(":")[0] == address}
        html = notice_html(card, shown_at, text)
        for message_id in sorted(shown, key=int):
            await retire_message(bot, address, int(message_id), html)

    async def close(self) -> None:
        await self.telegram.application.shutdown()  # a no-op unless getMe answered
        await self.telegram.application.bot.shutdown()


def notice_html(card: Card | None, shown_at: int | None, text: str) -> str:
    """A live ask's card nobody needs to answer any more, as its message should now read: the
    text its buttons sat under as it was sent (the time left as of then), and why, below; only
    the why when the card is not at hand, went as a document, or the two would not fit."""
    line = f"🚫 {escape(text)}"
    parts = card_parts(card, now_ms=shown_at) if card is not None else []
    last = parts[-1] if 0 < len(parts) <= MAX_PARTS else ""
    return f"{last}\n\n{line}" if last and len(last) + len(line) + 2 <= TEXT_LIMIT else line
