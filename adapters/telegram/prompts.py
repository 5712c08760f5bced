"""Corrections, written answers and overrides: the bot asks with a ForceReply prompt whose last
line is `ref: <stage> <lease> <card message id>`, and the expert's reply to it is the answer (an
override asks for the reason first, and carries it in the second prompt)."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import ForceReply, Message, Update
from telegram.constants import ParseMode

from adapters.telegram import answers, keyboards
from adapters.telegram.ask_prompts import ASK_STAGES, AskPrompts
from adapters.telegram.chats import Chats, Context, Why, chat_of, html, kept_at, nothing
from adapters.telegram.commands import HELP
from core.domain.experts import Expert

ASKS = {"correct": "Reply to this message with the full corrected text of draft A.",
        "write": "Reply to this message with your full answer.",
        "reason": "Why override draft A? Reply to this message with your reason.",
        "override": "Now reply to this message with the full replacement text.",
        "why": "One line on why, please: reply to this message. Your answer is saved with it.",
        "more": "Saved. Add one line on why? Reply to this message (optional).",
        "reject": "Why reject this call? Reply to this message with your reason.",
        "edit": "Reply to this message with the arguments as one JSON object: copy the one "
                "below and change what you need."}
PLACEHOLDERS = {"why": "One line on why", "more": "Why (optional)", "reason": "Your reason",
                "reject": "Your reason", "edit": "{...}"}
TEXT_STAGES = {"e": "correct", "w": "write"}  # a `why` asked before a text answer
QUOTE_LIMIT = 3000  # a longer draft goes first, whole, in parts, and the prompt quotes nothing


@dataclass
class ReplyPrompts:
    chats: Chats

    async def ask(self, update: Update, context: Context, expert: Expert, stage: str,
                  lease: str, card: int, draft: str | None, reason: str | None = None,
                  tap: answers.Tap | None = None, summary: str = "") -> None:
        """Sends the prompt for `stage`, quoting `draft` (the text to correct or override);
        a `why` prompt holds the tapped choice (`tap`) until its reason arrives."""
        messenger = self.chats.messenger(context, expert)
        chat = chat_of(update)
        quoted = f"\n<pre>{html(draft)}</pre>" if draft else ""
        if draft and len(quoted) > QUOTE_LIMIT:
            for part in keyboards.split_escaped(draft, 4000):
                await messenger.send(chat, part)
            quoted = ""
        said = f"\nYour answer: {html(summary)}" if summary else ""
        text = f"✏️ {ASKS[stage]}{said}{quoted}\nref: {stage} {lease} {card}"
        if tap is not None:
            text += f"\ntap: {tap.action}|{tap.arg}"
        if reason is not None:
            text += f"\n{answers.REASON_MARK}{html(reason)}"
        await context.bot.send_message(
            chat_id=int(chat), text=text, parse_mode=ParseMode.HTML,
            reply_markup=ForceReply(selective=True,
                                    input_field_placeholder=PLACEHOLDERS.get(stage, "Full text")),
            disable_notification=messenger.silent)

    async def on_reply(self, update: Update, context: Context) -> None:
        """A reply to one of the bot's prompts; a reply to anything else gets the help."""
        message = update.effective_message
        assert message is not None
        expert = await self.chats.known(update, context)
        if expert is None:
            return
        try:
            prompt = answers.prompt_from_reply(message, context.bot.id)
        except answers.InvalidTap:
            await self.chats.messenger(context).send(chat_of(update), html(HELP))
            return
        if prompt.stage in ASK_STAGES.values():  # a live ask's Reject or Edit
            await AskPrompts(self).on_reply(update, context, expert, prompt, message)
        elif prompt.stage == "reason" or (prompt.tap and prompt.tap.action in TEXT_STAGES):
            await self._then_text(update, context, expert, prompt, message.text or "")
        elif prompt.stage == "more":
            await self._add_reason(update, context, expert, prompt, message)
        elif prompt.stage == "why":
            await self._with_reason(update, context, expert, prompt, message)
        else:
            given = answers.answer_from_reply(message, prompt, expert.id, kept_at(update))
            optional = await self.chats.offers_why(given.lease)
            await self.chats.submit(update, context, expert, given,
                                    keyboards.describe(given.decision),
                                    card_message=prompt.card_message,
                                    why=self.why(update, context, expert, given.lease,
                                                 prompt.card_message, optional=optional))

    async def _with_reason(self, update: Update, context: Context, expert: Expert,
                           prompt: answers.Prompt, message: Message) -> None:
        """The reason for a tap that waited for it: the tap's choice is recorded with it."""
        try:
            given = answers.answer_from_why(message, prompt, expert.id,
                                            await self.chats.labels(prompt.lease),
                                            kept_at(update))
        except answers.InvalidTap as exc:
            await self.chats.messenger(context).send(chat_of(update), html(str(exc)))
            return
        await self.chats.submit(update, context, expert, given,
                                keyboards.describe(given.decision),
                                card_message=prompt.card_message)

    async def _then_text(self, update: Update, context: Context, expert: Expert,
                         prompt: answers.Prompt, reason: str) -> None:
        """The reason came first (an override, or a text answer that needs one): now the
        prompt for the text, carrying the reason."""
        stage = "override" if prompt.stage == "reason" or prompt.tap is None \
            else TEXT_STAGES[prompt.tap.action]
        draft = await self.chats.service.shown_draft(prompt.lease, expert.id)
        await self.ask(update, context, expert, stage, prompt.lease, prompt.card_message,
                       draft if stage != "write" else None, reason=reason)

    async def _add_reason(self, update: Update, context: Context, expert: Expert,
                          prompt: answers.Prompt, message: Message) -> None:
        """The optional line of why, after the answer was recorded: beside it in the log."""
        added = await self.chats.service.add_rationale(
            expert.id, prompt.lease, message.text or "", "telegram",
            f"tg:msg:{message.chat_id}:{message.message_id}")
        await self.chats.messenger(context, expert).send(
            chat_of(update), "✅ Reason saved." if added else
            "⛔ Not saved: that answer is not yours, was not recorded, or has its line already.")

    def why(self, update: Update, context: Context, expert: Expert, lease: str, card: int,
            tap: answers.Tap | None = None, summary: str = "",
            optional: bool = False) -> Why:
        """How to ask for a line of why about this answer: with the tap held until it comes
        (`needed`; a typed text cannot be held, so its reason is asked first instead), or,
        when the campaign makes it `optional`, after the answer is saved."""
        async def needed() -> None:
            await self.ask(update, context, expert, "why", lease, card, None, tap=tap,
                           summary=summary)

        async def offered() -> None:
            await self.ask(update, context, expert, "more", lease, card, None)

        return Why(needed if tap is not None else None, offered if optional else nothing)
