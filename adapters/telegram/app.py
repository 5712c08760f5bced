"""The Telegram bot: a python-telegram-bot Application with the handlers registered by pattern
(commands.py, buttons.py, prompts.py), and the drain that hands it the updates the webhook kept.
A handler's failure is the drain's to try again (webhook) or the next fetch's (polling)."""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from dataclasses import dataclass, field

from pydantic import BaseModel, SecretStr
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from adapters.telegram import answers
from adapters.telegram.buttons import Buttons
from adapters.telegram.chats import KEPT_AT, Chats, Context, kept_at
from adapters.telegram.commands import Commands
from adapters.telegram.images import Pictures
from adapters.telegram.limits import FloodLimiter, Limits
from adapters.telegram.outbox import CHANNEL, TelegramOutbox
from adapters.telegram.prompts import ReplyPrompts
from adapters.telegram.transport import AiohttpRequest
from core.domain.media import Media
from core.ports import Stores
from core.service.coordinator import Coordinator
from core.service.inbox import SET_ASIDE_TEXT, InboxDrain
from core.service.service import Service

log = logging.getLogger(__name__)


class TelegramSettings(BaseModel):
    token: SecretStr
    api_url: str = "https://api.telegram.org/bot"  # PTB appends the token
    webhook_secret: SecretStr | None = None
    limits: Limits = Limits()
    poll_timeout_s: int = 10
    update_ttl_s: int = 3600  # a resend later than this runs again (recording stays idempotent)


@dataclass
class TelegramBot:
    """The Application (its handlers registered) and the drain that feeds it the updates the
    webhook kept (unused when polling: the Updater feeds it then)."""

    application: Application  # type: ignore[type-arg]
    service: Service
    stores: Stores  # the inbox the webhook keeps updates in, copies, polling markers
    update_ttl_ms: int = 3_600_000  # how long a resent update is recognised
    pictures: Pictures | None = None  # a card's images (None: no media store wired)
    # Kept updates a handler failed on, noted by `on_error` for `handle` to return.
    failed: set[Update] = field(default_factory=set)
    drain: InboxDrain = field(init=False)

    def __post_init__(self) -> None:
        self.drain = InboxDrain(self.stores.inbox, self.stores.health, CHANNEL, self.handle,
                                set_aside=self.set_aside)

    async def handle(self, body: str, kept: int) -> bool:
        """One kept update through the Application; False if a handler failed (try again)."""
        update = Update.de_json({**json.loads(body), KEPT_AT: kept}, self.application.bot)
        try:
            await self.application.process_update(update)
            return update not in self.failed
        finally:
            self.failed.discard(update)

    async def set_aside(self, body: str) -> str | None:
        """An update set aside after its tries: the chat hears it was not saved, and the
        campaign its tap or reply names is returned, for the count."""
        update = Update.de_json(json.loads(body), self.application.bot)
        campaign_id = await self.service.campaign_for_lease(_lease_of(update))
        if update.effective_chat is not None:
            try:
                await self.application.bot.send_message(update.effective_chat.id, SET_ASIDE_TEXT)
            except TelegramError as exc:  # still counted: Telegram may be what failed
                log.warning("telegram chat not told of an update set aside: %r", exc)
        return campaign_id

    async def skip_repeat(self, update: Update, context: Context) -> None:
        """Polling: getUpdates may hand an update over again (a restart before its offset was
        confirmed); a Redis marker lets it run once, and is forgotten if its handling failed
        (`on_error`), so the next fetch runs it again."""
        if not await self.stores.inbox.take_delivery(CHANNEL, str(update.update_id),
                                              self.update_ttl_ms):
            raise ApplicationHandlerStop

    async def on_error(self, update: object, context: Context) -> None:
        log.warning("telegram update failed: %r", context.error, exc_info=context.error)
        if not isinstance(update, Update):
            return
        if kept_at(update) is not None:  # kept in the inbox: the drain tries it again by itself
            self.failed.add(update)
            return
        with suppress(Exception):  # polled: let a refetch run (Redis may be what failed)
            await self.stores.inbox.forget_delivery(CHANNEL, str(update.update_id))
        if update.callback_query is not None:
            with suppress(TelegramError):  # it may be what failed
                await update.callback_query.answer("Not saved: please tap again.",
                                                   show_alert=True)


def build_telegram(settings: TelegramSettings, service: Service, coordinator: Coordinator,
                   stores: Stores, *, polling: bool = False,
                   media: Media | None = None) -> TelegramBot:
    """`media`: where a card's images are read from; without it, a card with images is
    refused (its task goes back to the pool) rather than shown without them."""
    application = _application(settings, stores, polling)
    pictures = Pictures(media, service) if media is not None else None
    bot = TelegramBot(application, service, stores, update_ttl_ms=settings.update_ttl_s * 1000,
                      pictures=pictures)
    if polling:  # the webhook's inbox already keeps each update once
        application.add_handler(TypeHandler(Update, bot.skip_repeat), group=-1)
    chats = Chats(service, stores.leases, TelegramOutbox(stores.outbox), pictures=pictures)
    prompts = ReplyPrompts(chats)
    register(application, Commands(chats, coordinator), Buttons(chats, prompts), prompts)
    application.add_error_handler(bot.on_error)
    return bot


def _application(settings: TelegramSettings, stores: Stores,
                 polling: bool) -> Application:  # type: ignore[type-arg]
    builder = (ApplicationBuilder().token(settings.token.get_secret_value())
               .base_url(settings.api_url)
               .rate_limiter(FloodLimiter(stores.turns, settings.limits))
               .request(AiohttpRequest())
               .get_updates_request(AiohttpRequest(connections=1,
                                                   read_timeout=settings.poll_timeout_s + 5))
               .concurrent_updates(64))
    if not polling:
        builder = builder.updater(None)
    return builder.build()


def register(app: Application, commands: Commands, buttons: Buttons,  # type: ignore[type-arg]
             prompts: ReplyPrompts) -> None:
    """Dispatch by registration: a command by name, a button by its action letter, a text by
    whether it replies to a prompt."""
    for name, callback in (("start", commands.start), ("next", commands.next),
                           ("pause", commands.pause), ("resume", commands.resume),
                           ("stats", commands.stats), ("help", commands.help)):
        app.add_handler(CommandHandler(name, callback))
    for pattern, callback in ((r"^[prvlKFsna]\|", buttons.on_answer),
                              (r"^[kmfx]\|", buttons.on_step), (r"^[ewo]\|", buttons.on_prompt),
                              (r"^[jd]\|", buttons.on_ask_prompt), (r"^next\|", buttons.on_next)):
        app.add_handler(CallbackQueryHandler(callback, pattern=pattern))
    app.add_handler(CallbackQueryHandler(buttons.on_unknown))
    app.add_handler(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND,
                                   prompts.on_reply))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, commands.help))


def _lease_of(update: Update) -> str:
    """The lease a tapped button or a reply to a prompt names; empty when none."""
    query, message = update.callback_query, update.effective_message
    if query is not None:
        return query.data.split("|")[1] if query.data and query.data.count("|") == 2 else ""
    prompt = message.reply_to_message if message is not None else None
    found = answers.REF.search(prompt.text or "") if prompt is not None else None
    return found[2] if found else ""
