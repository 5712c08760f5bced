"""Work offered unasked: the worker gives each idle Telegram expert a card, on the core's rules
(`Service.may_push`), one card at a time, and quietly near their quiet hours."""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import TelegramError

from adapters.telegram.copies import Copies
from adapters.telegram.messenger import TelegramMessenger, hushed
from adapters.telegram.outbox import CHANNEL, TelegramOutbox, undeliverable
from core.cards import Card
from core.delivery import deliver
from core.service import Service

log = logging.getLogger(__name__)
PUSH_INTERVAL_MS = 30_000  # an expert is looked at by one worker at most this often


class TelegramPusher:
    def __init__(self, service: Service, outbox: TelegramOutbox,
                 interval_ms: int = PUSH_INTERVAL_MS) -> None:
        self.service = service
        self.outbox = outbox
        self.interval_ms = interval_ms

    async def push_idle(self, bot: Bot) -> int:
        """A card to every linked expert free for one; any number of workers may call this
        each tick. Returns how many cards went out."""
        store = self.service.store
        campaigns = await store.list_campaigns()
        owed = {key.split(":", 1)[1] for key in await store.outbox_items(CHANNEL, 10_000)
                if key.startswith("card:")}
        pushed = 0
        for chat, expert_id in sorted((await store.identities_on(CHANNEL)).items()):
            if chat in owed:
                continue  # the drain sends their live card
            try:
                pushed += await self.push(bot, chat, expert_id, campaigns)
            except Exception:  # Telegram or Redis away for this one: the next tick tries again
                log.warning("could not push to %s", expert_id, exc_info=True)
        return pushed

    async def push(self, bot: Bot, chat: str, expert_id: str, campaigns: list[str]) -> bool:
        """Never to a paused expert, in quiet hours, past the cap or on top of a card still
        waiting; the turn on `push:telegram:<expert>` keeps two workers from both pushing."""
        service = self.service
        expert = await service.may_push(expert_id, campaigns)
        if expert is None or not await service.store.take_turn(f"push:telegram:{expert_id}",
                                                               self.interval_ms):
            return False
        task = await service.next_task(expert_id, pushed=True)
        if not isinstance(task, Card) or task.resumed:  # taken since we looked: shown by them
            return False
        silent = hushed(expert, service.clock.now_ms())
        try:
            messenger = TelegramMessenger(bot, service.clock, silent=silent,
                                          copies=Copies(bot, service.store))
            await deliver(service, messenger, chat, task)
        except TelegramError as exc:  # leased but maybe not shown: owed, and the drain resends
            if undeliverable(exc):
                await self.outbox.owe(chat, expert_id, None, card=True)
            raise
        return True
