"""A live ask's Reject and Edit: the tap sends a ForceReply prompt (the reason; the arguments as
JSON, to copy and change), and the reply is the answer. A reply that is not what the prompt asks
for (an empty reason, an Edit that is not one JSON object) records nothing: the expert reads
why, and the prompt comes again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from telegram import CallbackQuery, Message, Update

from adapters.telegram import answers
from adapters.telegram.ask_cards import args_json
from adapters.telegram.chats import Context, chat_of, html, kept_at, message_of
from core.domain.asks import decision_words as said
from core.domain.cards import Card
from core.domain.experts import Expert

if TYPE_CHECKING:
    from adapters.telegram.prompts import ReplyPrompts

ASK_STAGES = {"j": "reject", "d": "edit"}  # a button's action -> the prompt it sends
GONE = "This ask is no longer yours to answer; nothing was recorded."


@dataclass
class AskPrompts:
    prompts: ReplyPrompts

    async def on_tap(self, update: Update, context: Context, query: CallbackQuery,
                     expert: Expert, tap: answers.Tap) -> None:
        """Reject… or Edit… on an ask card: the prompt for the reply that answers it."""
        card = await self._card(expert.id, tap.lease)
        if card is None:
            await query.answer(GONE, show_alert=True)
            return
        service = self.prompts.chats.service
        await service.opened(tap.lease, expert.id, kept_at(update))
        await query.answer()
        shown = message_of(query)
        await self._ask(update, context, expert, ASK_STAGES[tap.action], card,
                        shown.message_id if shown else 0)

    async def on_reply(self, update: Update, context: Context, expert: Expert,
                       prompt: answers.Prompt, message: Message) -> None:
        try:
            given = answers.answer_from_ask_reply(message, prompt, expert.id, kept_at(update))
        except answers.InvalidTap as exc:
            await self._again(update, context, expert, prompt, str(exc))
            return
        card = await self.prompts.chats.service.asks.card(prompt.lease)
        before = card.ask.args if card is not None and card.ask is not None else None
        await self.prompts.chats.submit(update, context, expert, given,
                                        said(given.decision, before),
                                        card_message=prompt.card_message)

    async def _again(self, update: Update, context: Context, expert: Expert,
                     prompt: answers.Prompt, why: str) -> None:
        """Nothing recorded: the expert reads why, and gets the prompt again to reply to."""
        await self.prompts.chats.messenger(context, expert).send(
            chat_of(update), f"⛔ Not saved: {html(why)}. Nothing was recorded; "
                             "reply to the prompt below.")
        card = await self._card(expert.id, prompt.lease)
        if card is not None:
            await self._ask(update, context, expert, prompt.stage, card, prompt.card_message)

    async def _ask(self, update: Update, context: Context, expert: Expert, stage: str,
                   card: Card, card_message: int) -> None:
        await self.prompts.ask(update, context, expert, stage, card.lease, card_message,
                               args_json(card) if stage == "edit" else None)

    async def _card(self, expert_id: str, lease: str) -> Card | None:
        """The ask's card while it is this expert's to answer (a token names one expert)."""
        service = self.prompts.chats.service
        if not await service.holds_lease(expert_id, lease):
            return None
        return await service.asks.card(lease)
