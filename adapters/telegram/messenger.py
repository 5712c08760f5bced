"""The Telegram Messenger: sends cards and notices to a chat, and shows on the card what became
of an answer (the buttons go, so old ones are visibly dead). One per update: it knows the card
and the callback query the update is about."""

from __future__ import annotations

import io
import logging
from html import escape
from typing import NamedTuple

from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden

from adapters.telegram import ask_cards, keyboards
from adapters.telegram.copies import Copies
from adapters.telegram.images import Pictures, Shown, replying_to
from core.domain.answers import Outcome
from core.domain.asks import is_ask_token
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.items import prompt_text
from core.errors import CardRefused
from core.ports import Clock, Delivery

log = logging.getLogger(__name__)

MAX_PARTS = 4  # past this many messages a card goes as a document, with a short message
QUIET_MARGIN_MS = 30 * 60 * 1000  # "near" quiet hours: half an hour either side


def near_quiet_hours(expert: Expert, now: int) -> bool:
    """Anything sent in or near the expert's quiet hours goes without a sound."""
    return any(expert.in_quiet_hours(now + d) for d in (-QUIET_MARGIN_MS, 0, QUIET_MARGIN_MS))


class TelegramMessenger:
    channel = "telegram"

    def __init__(self, bot: Bot, clock: Clock, *, silent: bool = False,
                 card_message: Message | int | None = None, callback_id: str | None = None,
                 summary: str = "", copies: Copies | None = None,
                 pictures: Pictures | None = None) -> None:
        self.bot = bot
        self.clock = clock
        self.silent = silent  # near the expert's quiet hours: no sound
        self.card_message = card_message  # the card an answer came from, to edit
        self.callback_id = callback_id
        self.summary = summary  # what the expert decided, in a few words
        self.copies = copies  # which messages show a lease, kept so one at most has buttons
        self.pictures = pictures  # a card's images: their bytes and how each went

    async def send_card(self, address: str, card: Card) -> Delivery:
        """Telegram's 400 (Bad Request) and 403 (Forbidden: the bot was blocked) would come
        back the same on every try: raised as CardRefused, so the core gives the task back at
        once (https://core.telegram.org/bots/api#making-requests)."""
        try:
            return await self._send_card(address, card)
        except (BadRequest, Forbidden) as exc:
            raise CardRefused(f"{type(exc).__name__}: {exc.message}") from exc

    async def _send_card(self, address: str, card: Card) -> Delivery:
        asked = self.clock.now_ms()
        if card.resumed and self.copies is not None:  # shown before: that copy's buttons go first
            await self.copies.retire(address, card.campaign, card.lease)
        shown = await self._images(address, card)
        parts = keyboards.card_parts(card, now_ms=asked)
        markup = keyboards.card_keyboard(keyboards.controls_from_card(card))
        reply = replying_to(shown)
        if len(parts) > MAX_PARTS:
            first = await self._document(address, card, parts, reply)
            last = await self.send(address, "The task is in the file above. Your answer:",
                                   markup)
        else:
            first = last = await self.send(address, parts[0], markup if len(parts) == 1 else None,
                                           reply_parameters=reply)
            for i, part in enumerate(parts[1:], start=2):
                last = await self.send(address, part, markup if i == len(parts) else None)
        if self.copies is not None:  # the buttons ride on the last message
            await self.copies.shown(address, card.campaign, card.lease, last.message_id)
        landed = _delivery(shown.first if shown else first, last, asked)
        return landed._replace(images=tuple(shown.went)) if shown is not None else landed

    async def _images(self, address: str, card: Card) -> Shown | None:
        """The card's images, before its text; a card whose images cannot be read is refused
        (an expert must not judge without the image), so its task goes back to the pool."""
        if not card.images:
            return None
        if self.pictures is None:
            raise CardRefused("this Telegram bot has no media store to read the images from")
        try:
            return await self.pictures.send(self.bot, int(address), card, self.silent)
        except FileNotFoundError as exc:
            raise CardRefused(f"an image of item {card.item} is not in the media store: "
                              f"{exc}") from exc

    async def send_notice(self, address: str, text: str) -> Delivery:
        asked = self.clock.now_ms()
        sent = await self.send(address, escape(text), keyboards.next_keyboard())
        return _delivery(sent, sent, asked)

    async def show_outcome(self, address: str, outcome: Outcome) -> None:
        line, alert = self.outcome_line(outcome)
        if self.callback_id is not None:
            await self.answer_callback(line.split(" ", 1)[1].replace("&amp;", "&"), alert)
        closing = self.outcome_closing(address, outcome)
        if closing is not None:
            await self.close(closing)
        elif self.callback_id is None:
            await self.send(address, line)

    def outcome_closing(self, address: str, outcome: Outcome) -> Closing | None:
        """The card is closed when the answer was recorded or another task replaces it."""
        if outcome.status == "recorded" or outcome.next is not None:
            return self.closing(address, self.outcome_line(outcome)[0])
        return None

    def outcome_line(self, outcome: Outcome) -> tuple[str, bool]:
        """What became of an answer, in one line, and whether it deserves an alert."""
        if outcome.status != "recorded":
            return f"⛔ Not saved: {escape(outcome.reason or '')}", True
        if is_ask_token(outcome.lease):  # the decision itself, and what the service adds
            return ask_cards.outcome_line(outcome, self.summary), False
        what = self.summary or (outcome.decision or "answer").replace("_", " ")
        seconds = (f" in {outcome.active_seconds:.0f} s"
                   if outcome.active_seconds is not None else "")
        again = " (already saved)" if outcome.replayed else ""
        return f"✅ Saved: {escape(what)}{seconds}{again}", False

    async def answer_callback(self, text: str, alert: bool = False) -> None:
        """Telegram keeps the button spinning until the callback is answered, once. A resent
        update's query may be answered already (or too old): Telegram refuses that with a
        Bad Request, which must not fail the update, or every resend would fail the same way
        and the answer would never be recorded."""
        if self.callback_id is not None:
            callback_id, self.callback_id = self.callback_id, None
            try:
                await self.bot.answer_callback_query(callback_id, text=text[:200],
                                                     show_alert=alert)
            except BadRequest as exc:
                log.info("callback query not answered: %s", exc)

    async def send(self, address: str, html: str,
                   markup: InlineKeyboardMarkup | None = None, **extra: object) -> Message:
        return await self.bot.send_message(
            chat_id=int(address), text=html, parse_mode=ParseMode.HTML, reply_markup=markup,
            disable_notification=self.silent, **extra)  # type: ignore[arg-type]

    async def _document(self, address: str, card: Card, parts: list[str],
                        reply: ReplyParameters | None) -> Message:
        text = "\n\n".join([card.title, card.instructions, "Prompt:", prompt_text(card.prompt),
                            *[f"Draft {d.label}:\n{d.text}" for d in card.drafts]])
        return await self.bot.send_document(
            chat_id=int(address), document=io.BytesIO(text.encode()),
            filename=f"task-{card.item}.txt", caption=escape(card.title)[:1000],
            parse_mode=ParseMode.HTML, disable_notification=self.silent, reply_parameters=reply)

    def closing(self, address: str, line: str) -> Closing:
        """How the card shows what was recorded: the line appended and the buttons gone. A card
        known only by id (a reply answered it) or too full to take the line loses its buttons,
        and the line goes as a new message: nothing on the card is cut to make room."""
        card = self.card_message
        if isinstance(card, Message) and card.text is not None and (
                len(card.text) + len(line) + 2 <= keyboards.TEXT_LIMIT):
            return Closing(address, card.message_id, f"{card.text_html}\n\n{line}", line)
        message_id = card.message_id if isinstance(card, Message) else card
        return Closing(address, message_id, None, line)

    async def close(self, closing: Closing) -> None:
        chat, message_id, html, line = closing
        try:
            if message_id is not None and html is not None:
                await self.bot.edit_message_text(html, chat_id=int(chat), message_id=message_id,
                                                 parse_mode=ParseMode.HTML, reply_markup=None)
                return
            if message_id is not None:
                await self.bot.edit_message_reply_markup(chat_id=int(chat),
                                                         message_id=message_id,
                                                         reply_markup=None)
        except BadRequest as exc:
            if html is not None and "not modified" in str(exc):
                return  # it already shows the line: a resend after a lost response
            # already edited (a double tap) or too old to edit: the line still goes out
        await self.send(chat, line)


class Closing(NamedTuple):
    """A card's last edit, kept whole so the outbox can make it again."""

    chat: str
    message_id: int | None
    html: str | None  # the card's new text, or None: drop the buttons and send `line`
    line: str


def _delivery(first: Message, last: Message, asked: int) -> Delivery:
    """Telegram's date has whole seconds; never put the delivery before we asked to send."""
    at = max(int(first.date.timestamp() * 1000), asked)
    return Delivery(message_id=f"{last.chat_id}:{last.message_id}", at=at)
