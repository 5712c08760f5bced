"""What every Telegram handler shares: who is writing, the messenger that answers them, their next
card, and an answer recorded with its card closed (or owed, when Telegram would not take it)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html import escape
from typing import NamedTuple

from telegram import CallbackQuery, Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from adapters.telegram.copies import Copies
from adapters.telegram.images import Pictures
from adapters.telegram.messenger import TelegramMessenger, near_quiet_hours
from adapters.telegram.outbox import TelegramOutbox, undeliverable
from core.domain.answers import Answer, Outcome
from core.domain.experts import Expert
from core.ports import Leases
from core.service.delivery import deliver
from core.service.service import REFUSALS, Service

log = logging.getLogger(__name__)
# When the webhook kept an update: not a Bot API field, so PTB keeps it in `Update.api_kwargs`,
# where every handler can read it (`kept_at`).
KEPT_AT = "expertloop_kept_at"
Context = ContextTypes.DEFAULT_TYPE
NOT_LINKED = ("I don't know you yet. Open the invite link your coordinator sent you "
              "(https://t.me/…?start=…), or ask them for one.")


@dataclass
class Chats:
    """The handlers' common ground (commands.py, buttons.py, prompts.py)."""

    service: Service
    store: Leases  # which messages show a lease (copies.py)
    outbox: TelegramOutbox
    experts: dict[int, str] = field(default_factory=dict)  # telegram user id -> expert id
    pictures: Pictures | None = None  # a card's images: bytes, and how each went

    async def expert(self, update: Update) -> Expert | None:
        """Who is writing; the memo saves an index read while their profile names the account."""
        user = update.effective_user
        if user is None:
            return None
        expert = await self.service.expert_for_account(f"telegram:{user.id}",
                                                       self.experts.get(user.id))
        if expert is None:
            self.experts.pop(user.id, None)
        else:
            self.experts[user.id] = expert.id
        return expert

    async def known(self, update: Update, context: Context) -> Expert | None:
        """Who is writing; a stranger is told how to join."""
        expert = await self.expert(update)
        if expert is None:
            await self.messenger(context).send(chat_of(update), html(NOT_LINKED))
        return expert

    def messenger(self, context: Context, expert: Expert | None = None,
                  query: CallbackQuery | None = None, *, summary: str = "",
                  card: int | None = None) -> TelegramMessenger:
        """`card`: the card's message id, when the update is a reply, not a tap on the card."""
        silent = expert is not None and near_quiet_hours(expert, self.service.clock.now_ms())
        return TelegramMessenger(context.bot, self.service.clock, silent=silent,
                                 card_message=message_of(query) if card is None else card,
                                 callback_id=query.id if query else None, summary=summary,
                                 copies=Copies(context.bot, self.store), pictures=self.pictures)

    async def deliver_next(self, update: Update, context: Context, expert: Expert) -> None:
        task = await self.service.next_task(expert.id)
        await deliver(self.service, self.messenger(context, expert), chat_of(update), task)

    async def submit(self, update: Update, context: Context, expert: Expert,
                     given: Answer, summary: str, card_message: int | None = None,
                     why: Why | None = None) -> None:
        """Records the answer, closes its card and sends the next; what Telegram still refuses
        after the limiter's retries is owed (outbox.py), since the answer is recorded. `why`:
        how to ask for a line of why, before recording (needed) or after it (optional)."""
        messenger = self.messenger(context, expert, update.callback_query, summary=summary,
                                   card=card_message)
        outcome = await self.service.submit(given)
        if why is not None and why.needed is not None and needs_reason(outcome, given):
            # nothing was recorded: the tap waits in the prompt for its reason
            await messenger.answer_callback("One line on why, please: reply to my message.")
            await why.needed()
            return
        chat, card = chat_of(update), outcome.next is not None and not outcome.replayed
        if outcome.status == "recorded":  # every other copy of the card loses its buttons
            await self._retire(messenger, chat, given.lease)
        closing = messenger.outcome_closing(chat, outcome)
        try:
            await messenger.show_outcome(chat, outcome)
            closing = None
            if why is not None and _judged(outcome):
                await why.offered()  # before the next card, so the reply box is for it
            if card and outcome.next is not None:
                await deliver(self.service, messenger, chat, outcome.next)
        except TelegramError as exc:
            if not undeliverable(exc):
                raise
            log.warning("telegram send failed after the answer; owed: %r", exc)
            await self.outbox.owe(chat, expert.id, closing, card)

    async def labels(self, lease: str) -> list[str]:
        """The campaign's labels, which a label button names by index."""
        campaign = await self.service.campaign_of_lease(lease)
        return [] if campaign is None else list(campaign.spec.labels)

    async def offers_why(self, lease: str) -> bool:
        """Whether a recorded answer is followed by the optional prompt for a line of why."""
        campaign = await self.service.campaign_of_lease(lease)
        return campaign is not None and campaign.spec.rationale == "optional"

    async def _retire(self, messenger: TelegramMessenger, chat: str, lease: str) -> None:
        campaign_id = await self.service.campaign_for_lease(lease)
        if campaign_id is not None and messenger.copies is not None:
            card = messenger.card_message
            keep = card.message_id if isinstance(card, Message) else card
            await messenger.copies.retire(chat, campaign_id, lease, keep=keep)


class Why(NamedTuple):
    """Asking for a line of why: `needed` before an answer is recorded, `offered` after."""

    needed: Callable[[], Awaitable[None]] | None
    offered: Callable[[], Awaitable[None]]


async def nothing() -> None:
    """Nothing to offer: the campaign asks for no reason."""


def needs_reason(outcome: Outcome, given: Answer) -> bool:
    """The core refused the answer for want of its reason (a final call, a `required`
    campaign, an item asked again): nothing was recorded, and the tap can wait for it."""
    return (outcome.status == "refused" and outcome.reason == REFUSALS["reason_needed"]
            and given.rationale is None)


def _judged(outcome: Outcome) -> bool:
    """A decision newly recorded that a line of why may explain (not a skip or a flag)."""
    return outcome.status == "recorded" and not outcome.replayed \
        and outcome.decision not in ("skip", "flag")


def kept_at(update: Update) -> int | None:
    """When the expert acted on an update the webhook kept; None for a polled one (now)."""
    kept = update.api_kwargs.get(KEPT_AT)
    return kept if isinstance(kept, int) else None


def chat_of(update: Update) -> str:
    chat = update.effective_chat
    assert chat is not None
    return str(chat.id)


def message_of(query: CallbackQuery | None) -> Message | None:
    """The card a button sits on; Telegram sends a stub for messages too old to show."""
    message = query.message if query is not None else None
    return message if isinstance(message, Message) else None


def html(text: str) -> str:
    return escape(text, quote=False)
