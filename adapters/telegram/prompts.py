"""Corrections, written answers and overrides: the bot asks with a ForceReply prompt whose last
line is `ref: <stage> <lease> <card message id>`, and the expert's reply to it is the answer (an
override asks for the reason first, and carries it in the second prompt)."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import ForceReply, Update
from telegram.constants import ParseMode

from adapters.telegram import answers, keyboards
from adapters.telegram.chats import Chats, Context, chat_of, html, kept_at
from adapters.telegram.commands import HELP
from core.domain.experts import Expert

ASKS = {"correct": "Reply to this message with the full corrected text of draft A.",
        "write": "Reply to this message with your full answer.",
        "reason": "Why override draft A? Reply to this message with your reason.",
        "override": "Now reply to this message with the full replacement text."}
QUOTE_LIMIT = 3000  # a longer draft goes first, whole, in parts, and the prompt quotes nothing


@dataclass
class ReplyPrompts:
    chats: Chats

    async def ask(self, update: Update, context: Context, expert: Expert, stage: str,
                  lease: str, card: int, draft: str | None, reason: str | None = None) -> None:
        """Sends the prompt for `stage`, quoting `draft` (the text to correct or override)."""
        messenger = self.chats.messenger(context, expert)
        chat = chat_of(update)
        quoted = f"\n<pre>{html(draft)}</pre>" if draft else ""
        if draft and len(quoted) > QUOTE_LIMIT:
            for part in keyboards.split_escaped(draft, 4000):
                await messenger.send(chat, part)
            quoted = ""
        text = f"✏️ {ASKS[stage]}{quoted}\nref: {stage} {lease} {card}"
        if reason is not None:
            text += f"\n{answers.REASON_MARK}{html(reason)}"
        await context.bot.send_message(
            chat_id=int(chat), text=text, parse_mode=ParseMode.HTML,
            reply_markup=ForceReply(selective=True, input_field_placeholder="Full text"),
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
        if prompt.stage == "reason":
            draft = await self.chats.service.shown_draft(prompt.lease, expert.id)
            await self.ask(update, context, expert, "override", prompt.lease,
                           prompt.card_message, draft, reason=message.text or "")
            return
        given = answers.answer_from_reply(message, prompt, expert.id, kept_at(update))
        await self.chats.submit(update, context, expert, given,
                                keyboards.describe(given.decision),
                                card_message=prompt.card_message)
