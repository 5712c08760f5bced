"""At most one message per lease with live buttons. Which messages show a lease is kept in Redis
(`Leases.swap_showings`), since any web process or worker may show a card again or record its
answer; an earlier copy loses its keyboard as soon as a newer copy, or the answer, replaces it."""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from core.ports import Leases

log = logging.getLogger(__name__)
SHOWN_TTL_MS = 8 * 24 * 3600 * 1000  # outlives any lease; set again at every showing
# https://core.telegram.org/bots/api#editmessagereplymarkup: the texts Telegram answers when an
# edit has nothing left to do (Telegram documents no error texts; these are its wording).
SETTLED = ("message to edit not found", "message is not modified", "message can't be edited")


def edit_settled(exc: BadRequest) -> bool:
    """Telegram refused an edit because nothing is left to do: the expert deleted the message,
    it already shows this, or it is too old to change. Done, not a failure to retry."""
    return any(words in str(exc).lower() for words in SETTLED)


async def retire_message(bot: Bot, chat: str, message_id: int, html: str) -> None:
    """A card nobody needs to answer any more: its text replaced by `html`, and, as
    editMessageText is sent without a reply_markup, its buttons gone
    (https://core.telegram.org/bots/api#editmessagetext). A message the expert deleted, or
    one that shows this already, is done."""
    try:
        await bot.edit_message_text(html, chat_id=int(chat), message_id=message_id,
                                    parse_mode=ParseMode.HTML, reply_markup=None)
    except BadRequest as exc:
        if not edit_settled(exc):
            raise


class Copies:
    def __init__(self, bot: Bot, store: Leases) -> None:
        self.bot = bot
        self.store = store

    async def shown(self, chat: str, campaign: str, lease: str, message_id: int) -> None:
        """This message now shows the lease: any other copy loses its buttons."""
        replaced = await self.store.swap_showings(campaign, lease, str(message_id),
                                                  SHOWN_TTL_MS)
        await self._strip(chat, replaced)

    async def retire(self, chat: str, campaign: str, lease: str, keep: int | None = None) -> None:
        """No message shows the lease any more; `keep` is edited by the caller itself."""
        replaced = await self.store.swap_showings(campaign, lease, None, SHOWN_TTL_MS)
        await self._strip(chat, [m for m in replaced if m != str(keep)])

    async def showings(self, campaign: str, lease: str) -> list[str]:
        """The messages showing the lease now (their ids)."""
        return await self.store.showings(campaign, lease)

    async def current(self, campaign: str, lease: str, message_id: int) -> bool:
        """False only for a copy a newer one replaced; a card shown before copies were kept
        is nobody's copy, so it counts as current."""
        shown = await self.store.showings(campaign, lease)
        return not shown or str(message_id) in shown

    async def _strip(self, chat: str, message_ids: list[str]) -> None:
        for message_id in message_ids:
            try:
                await self.bot.edit_message_reply_markup(chat_id=int(chat),
                                                         message_id=int(message_id),
                                                         reply_markup=None)
            except BadRequest as exc:
                if not edit_settled(exc):
                    log.warning("copy %s:%s keeps its buttons: %s", chat, message_id, exc)
            except TelegramError as exc:  # the limiter's retries are spent: a stale copy
                log.warning("copy %s:%s keeps its buttons for now: %r", chat, message_id, exc)
