"""Button presses (callback queries), by action letter: an answer, a step that changes only the
card's buttons, a tap that opens a reply prompt, "next task", and buttons of an older bot."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Bot, CallbackQuery, Message, Update
from telegram.error import BadRequest

from adapters.telegram import answers, keyboards
from adapters.telegram.ask_prompts import AskPrompts
from adapters.telegram.chats import NOT_LINKED, Chats, Context, kept_at, message_of
from adapters.telegram.copies import Copies, edit_settled
from adapters.telegram.prompts import ReplyPrompts
from core.domain.experts import Expert

STAGES = {"e": "correct", "w": "write", "o": "reason"}  # a prompt button's action -> its prompt


@dataclass
class Buttons:
    chats: Chats
    prompts: ReplyPrompts

    async def on_answer(self, update: Update, context: Context) -> None:
        tapped = await self._tap(update)
        if tapped is None:
            return
        query, expert, tap = tapped
        labels = await self.chats.labels(tap.lease)
        try:
            given = answers.answer_from_callback_query(query, tap, expert.id, labels,
                                                       kept_at(update))
        except answers.InvalidTap as exc:
            await query.answer(str(exc), show_alert=True)
            return
        card = message_of(query)
        summary = keyboards.describe(given.decision)
        why = self.prompts.why(update, context, expert, tap.lease,
                               card.message_id if card else 0, tap, summary,
                               optional=await self.chats.offers_why(tap.lease))
        # not `opened`: the answering tap is not a first look, and would zero the time spent
        await self.chats.submit(update, context, expert, given, summary, why=why)

    async def on_step(self, update: Update, context: Context) -> None:
        """A tap that changes the card's buttons, not the record: rank picks, undo, label
        toggles, the flag menu. The state rides in the buttons."""
        tapped = await self._tap(update)
        if tapped is None:
            return
        query, expert, tap = tapped
        controls = await self._controls(tap, expert.id, context.bot, message_of(query))
        if isinstance(controls, str):
            await query.answer(controls, show_alert=True)
            return
        await self.chats.service.opened(tap.lease, expert.id, kept_at(update))
        if tap.action == "f":
            markup = keyboards.flag_keyboard(controls)
        elif tap.action == "k":
            markup = keyboards.card_keyboard(controls, rank=tap.arg[1:])
        else:
            markup = keyboards.card_keyboard(controls, chosen=tap.arg.strip("-"))
        await query.answer()
        try:
            await query.edit_message_reply_markup(markup)
        except BadRequest as exc:  # deleted meanwhile, or a repeat of this tap: nothing to do
            if not edit_settled(exc):
                raise

    async def on_prompt(self, update: Update, context: Context) -> None:
        """Correct, write or override: the answer comes as a reply to the prompt this sends."""
        tapped = await self._tap(update)
        if tapped is None:
            return
        query, expert, tap = tapped
        draft = await self.chats.service.shown_draft(tap.lease, expert.id)
        if draft is None:
            await query.answer("This task is no longer yours; nothing was recorded.",
                               show_alert=True)
            return
        await self.chats.service.opened(tap.lease, expert.id, kept_at(update))
        await query.answer()
        stage, card = STAGES[tap.action], message_of(query)
        if tap.arg == "why":  # a text answer that needs a reason: the reason first
            stage, draft = "why", None
        await self.prompts.ask(update, context, expert, stage, tap.lease,
                               card.message_id if card else 0,
                               draft if stage == "correct" else None,
                               tap=tap if stage == "why" else None)

    async def on_ask_prompt(self, update: Update, context: Context) -> None:
        """A live ask's Reject… or Edit…: the answer comes as a reply to the prompt it sends."""
        tapped = await self._tap(update)
        if tapped is not None:
            await AskPrompts(self.prompts).on_tap(update, context, *tapped)

    async def on_next(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        expert = await self._presser(update)
        if expert is not None:
            await query.answer()
            await self.chats.deliver_next(update, context, expert)

    async def on_unknown(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("This button is from an older version; send /next.", show_alert=True)

    async def _tap(self, update: Update) -> tuple[CallbackQuery, Expert, answers.Tap] | None:
        """The button press, its expert (None, answered, for a stranger) and its parsed data."""
        query = update.callback_query
        assert query is not None
        expert = await self._presser(update)
        return None if expert is None else (query, expert, answers.tap_from_data(query.data))

    async def _presser(self, update: Update) -> Expert | None:
        """Who pressed the button; a stranger's press is answered with how to join."""
        expert = await self.chats.expert(update)
        if expert is None and update.callback_query is not None:
            await update.callback_query.answer(NOT_LINKED, show_alert=True)
        return expert

    async def _controls(self, tap: answers.Tap, expert_id: str, bot: Bot,
                        card: Message | None) -> keyboards.Controls | str:
        """The card's controls for a step tap, or why the tap may not change the card."""
        campaign = await self.chats.service.campaign_of_lease(tap.lease)
        if campaign is None:
            return "This task is no longer open; nothing was recorded."
        if not await self.chats.service.holds_lease(expert_id, tap.lease):
            return "This task is not yours to answer, or no longer open; nothing was recorded."
        if card is not None and not await Copies(bot, self.chats.store).current(
                campaign.id, tap.lease, card.message_id):
            return "This task was shown again further down: answer it there."
        n = int(tap.arg[0], 36) if tap.action in "kfx" and tap.arg[:1].isalnum() else 0
        return keyboards.Controls(tap.lease, campaign.spec.options(), n)
