"""The Telegram outbox: a card's closing edit or a next card that Telegram would not take after
the limiter's retries (a network error, a 5xx, a 429 asking to wait longer than we allow) is
owed in Redis and sent by the workers' delivery loop (core/service/delivery.py). One entry per
key, so owing twice sends once."""

from __future__ import annotations

import json

from telegram import Bot
from telegram.error import BadRequest, NetworkError, RetryAfter

from adapters.telegram.messenger import Closing, TelegramMessenger
from core.ports import Clock, Outbox
from core.service.delivery import owe_card

CHANNEL = "telegram"  # its inbox, outbox and markers in Redis


def undeliverable(exc: BaseException) -> bool:
    """Worth sending again later. A BadRequest is our mistake and would fail the same way."""
    return isinstance(exc, (NetworkError, RetryAfter)) and not isinstance(exc, BadRequest)


class TelegramOutbox:
    def __init__(self, store: Outbox) -> None:
        self.store = store  # where owed edits and cards wait

    async def owe(self, chat: str, expert_id: str, closing: Closing | None, card: bool) -> None:
        """The card's closing edit (if it did not land) and the expert's live task. The edit's
        key ends in its message id: the loop sends a chat's edits oldest first, then its card."""
        store = self.store
        if closing is not None:
            entry = {"kind": "close", **closing._asdict()}
            await store.outbox_put(CHANNEL, f"close:{chat}:{closing.message_id}",
                                   json.dumps(entry))
        if card:
            await owe_card(store, CHANNEL, chat, expert_id)


async def send_closing(bot: Bot, clock: Clock, entry: str) -> None:
    """An owed closing edit, made again as `owe` wrote it."""
    fields = json.loads(entry)
    closing = Closing(**{name: fields[name] for name in Closing._fields})
    await TelegramMessenger(bot, clock, silent=True).close(closing)
