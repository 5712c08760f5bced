"""The Telegram Messenger: sends cards and notices to a chat, and shows on the card what became
of an answer (the buttons go, so old ones are visibly dead). One per update: it knows the card
and the callback query the update is about."""

from __future__ import annotations

import io
from html import escape

from telegram import Bot, InlineKeyboardMarkup, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest

from adapters.telegram import keyboards
from core.answers import Outcome
from core.cards import Card
from core.ports import Clock, Delivery

MAX_PARTS = 4  # past this many messages a card goes as a document, with a short message


class TelegramMessenger:
    channel = "telegram"

    def __init__(self, bot: Bot, clock: Clock, *, silent: bool = False,
                 card_message: Message | int | None = None, callback_id: str | None = None,
                 summary: str = "") -> None:
        self.bot = bot
        self.clock = clock
        self.silent = silent  # near the expert's quiet hours: no sound
        self.card_message = card_message  # the card an answer came from, to edit
        self.callback_id = callback_id
        self.summary = summary  # what the expert decided, in a few words

    async def send_card(self, address: str, card: Card) -> Delivery:
        asked = self.clock.now_ms()
        parts = keyboards.card_parts(card)
        markup = keyboards.card_keyboard(keyboards.controls_from_card(card))
        if len(parts) > MAX_PARTS:
            first = await self._document(address, card, parts)
            last = await self.send(address, "The task is in the file above. Your answer:",
                                   markup)
        else:
            first = last = await self.send(address, parts[0], markup if len(parts) == 1 else None)
            for i, part in enumerate(parts[1:], start=2):
                last = await self.send(address, part, markup if i == len(parts) else None)
        return _delivery(first, last, asked)

    async def send_notice(self, address: str, text: str) -> Delivery:
        asked = self.clock.now_ms()
        sent = await self.send(address, escape(text), keyboards.next_keyboard())
        return _delivery(sent, sent, asked)

    async def show_outcome(self, address: str, outcome: Outcome) -> None:
        if outcome.status == "recorded":
            what = self.summary or (outcome.decision or "answer").replace("_", " ")
            seconds = (f" in {outcome.active_seconds:.0f} s"
                       if outcome.active_seconds is not None else "")
            again = " (already saved)" if outcome.replayed else ""
            line, alert = f"✅ Saved: {escape(what)}{seconds}{again}", False
        else:
            line, alert = f"⛔ Not saved: {escape(outcome.reason or '')}", True
        if self.callback_id is not None:
            await self.answer_callback(line.split(" ", 1)[1].replace("&amp;", "&"), alert)
        if outcome.status == "recorded" or outcome.next is not None:
            await self._close_card(address, line)
        elif self.callback_id is None:
            await self.send(address, line)

    async def answer_callback(self, text: str, alert: bool = False) -> None:
        """Telegram keeps the button spinning until the callback is answered, once."""
        if self.callback_id is not None:
            callback_id, self.callback_id = self.callback_id, None
            await self.bot.answer_callback_query(callback_id, text=text[:200], show_alert=alert)

    async def send(self, address: str, html: str,
                   markup: InlineKeyboardMarkup | None = None, **extra: object) -> Message:
        return await self.bot.send_message(
            chat_id=int(address), text=html, parse_mode=ParseMode.HTML, reply_markup=markup,
            disable_notification=self.silent, **extra)  # type: ignore[arg-type]

    async def _document(self, address: str, card: Card, parts: list[str]) -> Message:
        text = "\n\n".join([card.title, card.instructions, "Prompt:", card.prompt,
                            *[f"Draft {d.label}:\n{d.text}" for d in card.drafts]])
        return await self.bot.send_document(
            chat_id=int(address), document=io.BytesIO(text.encode()),
            filename=f"task-{card.item}.txt", caption=escape(card.title)[:1000],
            parse_mode=ParseMode.HTML, disable_notification=self.silent)

    async def _close_card(self, address: str, line: str) -> None:
        """Edit the card to say what was recorded and drop its buttons. A card known only by
        id (a reply answered it) or too full to take the line loses its buttons, and the line
        goes as a new message: nothing on the card is cut to make room."""
        card = self.card_message
        fits = isinstance(card, Message) and card.text is not None and (
            len(card.text) + len(line) + 2 <= keyboards.TEXT_LIMIT)
        try:
            if isinstance(card, Message) and fits:
                await card.edit_text(f"{card.text_html}\n\n{line}", parse_mode=ParseMode.HTML,
                                     reply_markup=None)
                return
            if card is not None:
                message_id = card.message_id if isinstance(card, Message) else card
                await self.bot.edit_message_reply_markup(chat_id=int(address),
                                                         message_id=message_id,
                                                         reply_markup=None)
        except BadRequest:
            pass  # already edited (a double tap) or too old to edit: the line still goes out
        await self.send(address, line)


def _delivery(first: Message, last: Message, asked: int) -> Delivery:
    """Telegram's date has whole seconds; never put the delivery before we asked to send."""
    at = max(int(first.date.timestamp() * 1000), asked)
    return Delivery(message_id=f"{last.chat_id}:{last.message_id}", at=at)
