"""The Telegram outbox: a card edit or a next card that Telegram would not take after the
limiter's retries (a network error, a 5xx, a 429 asking to wait longer than we allow) is owed
in Redis and sent by the worker's drainer. One entry per key, so owing twice sends once."""

from __future__ import annotations

import json
import logging
from typing import Any

from telegram import Bot
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from adapters.telegram.copies import Copies
from adapters.telegram.messenger import Closing, TelegramMessenger, hushed
from core.delivery import deliver
from core.service import Service

log = logging.getLogger(__name__)
CHANNEL = "telegram"  # its inbox, outbox and markers in Redis


def undeliverable(exc: BaseException) -> bool:
    """Worth sending again later. A BadRequest is our mistake and would fail the same way."""
    return isinstance(exc, (NetworkError, RetryAfter)) and not isinstance(exc, BadRequest)


class TelegramOutbox:
    def __init__(self, service: Service) -> None:
        self.service = service

    async def owe(self, chat: str, expert_id: str, closing: Closing | None, card: bool) -> None:
        """The card's closing edit (if it did not land) and the expert's live task."""
        store = self.service.store
        if closing is not None:
            entry = {"kind": "close", **closing._asdict()}
            await store.outbox_put(CHANNEL, f"close:{chat}:{closing.message_id}",
                                   json.dumps(entry))
        if card:
            await store.outbox_put(CHANNEL, f"card:{chat}",
                                   json.dumps({"kind": "card", "chat": chat,
                                               "expert": expert_id}))

    async def owed(self) -> bool:
        return bool(await self.service.store.outbox_items(CHANNEL, 1))

    async def drain(self, bot: Bot, limit: int = 100) -> int:
        """Send what is owed, each chat's edits before its card; an entry leaves only once
        Telegram took it, and a chat whose edit failed waits for the next drain, so the
        expert never sees the next card above an unanswered-looking one."""
        store, sent, stuck = self.service.store, 0, set()
        items = await store.outbox_items(CHANNEL, limit)
        for key, owed, entry in sorted(((k, v, json.loads(v.entry)) for k, v in items.items()),
                                       key=lambda kv: _order(kv[2])):
            if entry["chat"] in stuck:
                continue
            try:
                await self._send(bot, entry)
            except TelegramError as exc:
                log.warning("telegram outbox %s not sent yet: %r", key, exc)
                stuck.add(entry["chat"])
                continue
            sent += await store.outbox_done(CHANNEL, key, owed)
        return sent

    async def _send(self, bot: Bot, entry: dict[str, Any]) -> None:
        clock = self.service.clock
        if entry["kind"] == "close":
            fields = {name: entry[name] for name in Closing._fields}
            await TelegramMessenger(bot, clock, silent=True).close(Closing(**fields))
            return
        expert = await self.service.store.load_expert(entry["expert"])
        silent = expert is None or hushed(expert, clock.now_ms())
        task = await self.service.next_task(entry["expert"])  # the live task comes back
        messenger = TelegramMessenger(bot, clock, silent=silent,
                                      copies=Copies(bot, self.service.store))
        await deliver(self.service, messenger, entry["chat"], task)


def _order(entry: dict[str, Any]) -> tuple[int, int]:
    return (0, entry.get("message_id") or 0) if entry["kind"] == "close" else (1, 0)
