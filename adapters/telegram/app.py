"""The Telegram channel: a python-telegram-bot Application whose handlers, registered by
pattern, acknowledge, translate the update into core terms, and call the service."""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from html import escape

from pydantic import BaseModel, SecretStr
from telegram import Bot, CallbackQuery, ForceReply, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from adapters.telegram import answers, keyboards
from adapters.telegram.copies import Copies, edit_settled
from adapters.telegram.limits import FloodLimiter, Limits
from adapters.telegram.messenger import TelegramMessenger, hushed
from adapters.telegram.outbox import CHANNEL, TelegramOutbox, undeliverable
from adapters.telegram.transport import AiohttpRequest
from core.answers import Answer
from core.coordinator import Coordinator
from core.delivery import deliver
from core.errors import Conflict
from core.experts import Expert
from core.inbox import SET_ASIDE_TEXT, InboxDrain
from core.service import Service, item_from_body

log = logging.getLogger(__name__)
# When the webhook kept an update: not a Bot API field, so PTB keeps it in `Update.api_kwargs`,
# where every handler can read it (`kept_at`).
KEPT_AT = "expertloop_kept_at"
Context = ContextTypes.DEFAULT_TYPE
HELP = ("/next — your next task\n/pause — stop receiving tasks\n/resume — start again\n"
        "/stats — what you have done and earned\n/help — this message\n\n"
        "Answer with the buttons; for corrections and written answers, reply to my prompt "
        "with the full text.")
NOT_LINKED = ("I don't know you yet. Open the invite link your coordinator sent you "
              "(https://t.me/…?start=…), or ask them for one.")


class TelegramSettings(BaseModel):
    token: SecretStr
    api_url: str = "https://api.telegram.org/bot"  # PTB appends the token
    webhook_secret: SecretStr | None = None
    limits: Limits = Limits()
    poll_timeout_s: int = 10
    update_ttl_s: int = 3600  # a resend later than this runs again (recording stays idempotent)


@dataclass
class Telegram:
    """The Application, the channel whose handlers it runs, and the drain that feeds it the
    updates the webhook kept (unused when polling: the Updater feeds it then)."""

    application: Application  # type: ignore[type-arg]
    channel: TelegramChannel
    drain: InboxDrain = field(init=False)

    def __post_init__(self) -> None:
        self.drain = InboxDrain(self.channel.service.store, CHANNEL, self.handle,
                                set_aside=self.set_aside)

    async def set_aside(self, body: str) -> str | None:
        """An update set aside after its tries: the chat hears it was not saved, and the
        campaign its tap or reply names is returned, for the count."""
        update = Update.de_json(json.loads(body), self.application.bot)
        campaign_id = await self.channel.service.catalog.campaign_for_lease(_lease_of(update))
        if update.effective_chat is not None:
            try:
                await self.application.bot.send_message(update.effective_chat.id, SET_ASIDE_TEXT)
            except TelegramError as exc:  # still counted: Telegram may be what failed
                log.warning("telegram chat not told of an update set aside: %r", exc)
        return campaign_id

    async def handle(self, body: str, kept: int) -> bool:
        """One kept update through the Application; False if a handler failed (try again)."""
        update = Update.de_json({**json.loads(body), KEPT_AT: kept}, self.application.bot)
        try:
            await self.application.process_update(update)
            return update not in self.channel.failed
        finally:
            self.channel.failed.discard(update)


def build_telegram(settings: TelegramSettings, service: Service, coordinator: Coordinator,
                   *, polling: bool = False) -> Telegram:
    builder = (ApplicationBuilder().token(settings.token.get_secret_value())
               .base_url(settings.api_url)
               .rate_limiter(FloodLimiter(service.store, settings.limits))
               .request(AiohttpRequest())
               .get_updates_request(AiohttpRequest(connections=1,
                                                   read_timeout=settings.poll_timeout_s + 5))
               .concurrent_updates(64))
    if not polling:
        builder = builder.updater(None)
    application = builder.build()
    channel = TelegramChannel(service, coordinator, TelegramOutbox(service),
                              update_ttl_ms=settings.update_ttl_s * 1000)
    channel.register(application, polling=polling)
    return Telegram(application, channel)


@dataclass
class TelegramChannel:
    service: Service
    coordinator: Coordinator
    outbox: TelegramOutbox
    update_ttl_ms: int = 3_600_000  # how long a resent update is recognised
    experts: dict[int, str] = field(default_factory=dict)  # telegram user id -> expert id
    # Kept updates a handler failed on, noted by `on_error` for `Telegram.handle` to return.
    failed: set[Update] = field(default_factory=set)

    def register(self, app: Application, *, polling: bool = False) -> None:  # type: ignore[type-arg]
        if polling:  # the webhook's inbox already keeps each update once
            app.add_handler(TypeHandler(Update, self.once), group=-1)
        for name, callback in (("start", self.start), ("next", self.next), ("pause", self.pause),
                               ("resume", self.resume), ("stats", self.stats),
                               ("help", self.help)):
            app.add_handler(CommandHandler(name, callback))
        for pattern, callback in ((r"^[prvlKFsn]\|", self.on_answer), (r"^[kmfx]\|", self.on_step),
                                  (r"^[ewo]\|", self.on_prompt), (r"^next\|", self.on_next)):
            app.add_handler(CallbackQueryHandler(callback, pattern=pattern))
        app.add_handler(CallbackQueryHandler(self.on_unknown))
        app.add_handler(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND,
                                       self.on_reply))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self.help))
        app.add_error_handler(self.on_error)

    async def once(self, update: Update, context: Context) -> None:
        """Polling: getUpdates may hand an update over again (a restart before its offset was
        confirmed); a Redis marker lets it run once, and is forgotten if its handling failed
        (`on_error`), so the next fetch runs it again."""
        if not await self.service.store.take_delivery(CHANNEL, str(update.update_id),
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
            await self.service.store.forget_delivery(CHANNEL, str(update.update_id))
        if update.callback_query is not None:
            with suppress(TelegramError):  # it may be what failed
                await update.callback_query.answer("Not saved: please tap again.",
                                                   show_alert=True)

    # who is writing

    async def expert(self, update: Update) -> Expert | None:
        user = update.effective_user
        if user is None:
            return None
        identity, store = f"telegram:{user.id}", self.service.store
        cached = self.experts.get(user.id)
        expert = await store.load_expert(cached) if cached else None
        if expert is not None and identity in expert.identities:
            return expert  # the profile still names this account: the memo holds
        expert_id = await store.expert_for_identity(identity)  # linked anew, elsewhere, or gone
        if expert_id is None:
            self.experts.pop(user.id, None)
            return None
        self.experts[user.id] = expert_id
        return await store.load_expert(expert_id)

    def messenger(self, context: Context, expert: Expert | None = None,
                  query: CallbackQuery | None = None, *, summary: str = "",
                  card: int | None = None) -> TelegramMessenger:
        """`card`: the card's message id, when the update is a reply, not a tap on the card."""
        silent = expert is not None and hushed(expert, self.service.clock.now_ms())
        return TelegramMessenger(context.bot, self.service.clock, silent=silent,
                                 card_message=_message(query) if card is None else card,
                                 callback_id=query.id if query else None, summary=summary,
                                 copies=Copies(context.bot, self.service.store))

    # commands

    async def start(self, update: Update, context: Context) -> None:
        chat, user = _chat(update), update.effective_user
        token = context.args[0] if context.args else ""
        expert = None
        if token and user is not None:
            try:
                expert = await self.coordinator.redeem_invite(token, f"telegram:{user.id}")
            except Conflict as exc:
                await self.messenger(context).send(chat, f"Not linked: {exc}")
                return
        expert = expert or await self.expert(update)
        if expert is None:
            await self.messenger(context).send(
                chat, "This invite is not valid: it was used, has expired or was mistyped. "
                      "Ask your coordinator for a new link.")
            return
        await self.messenger(context, expert).send(
            chat, f"Welcome, {_html(expert.name)}! You will get your tasks here.\n\n{HELP}")
        await self._deliver_next(update, context, expert)

    async def next(self, update: Update, context: Context) -> None:
        if expert := await self._known(update, context):
            await self._deliver_next(update, context, expert)

    async def pause(self, update: Update, context: Context) -> None:
        if expert := await self._known(update, context):
            await self.service.set_paused(expert.id, True)
            await self.messenger(context, expert).send(
                _chat(update), "Paused: no tasks until you send /resume.")

    async def resume(self, update: Update, context: Context) -> None:
        if expert := await self._known(update, context):
            expert = await self.service.set_paused(expert.id, False)
            await self._deliver_next(update, context, expert)

    async def stats(self, update: Update, context: Context) -> None:
        if expert := await self._known(update, context):
            figures = await self.service.stats(expert.id)
            rows = [f"{label}: {value}" for label, value in figures.lines()]
            await self.messenger(context, expert).send(_chat(update), _html(
                "\n".join(rows) + ("\nYou are paused." if figures.paused else "")))

    async def help(self, update: Update, context: Context) -> None:
        await self.messenger(context).send(_chat(update), _html(HELP))

    async def _known(self, update: Update, context: Context) -> Expert | None:
        expert = await self.expert(update)
        if expert is None:
            await self.messenger(context).send(_chat(update), _html(NOT_LINKED))
        return expert

    async def _deliver_next(self, update: Update, context: Context, expert: Expert) -> None:
        task = await self.service.next_task(expert.id)
        await deliver(self.service, self.messenger(context, expert), _chat(update), task)

    # buttons

    async def on_answer(self, update: Update, context: Context) -> None:
        tapped = await self._tap(update, context)
        if tapped is None:
            return
        query, expert, tap = tapped
        labels = await self._labels(tap.lease)
        try:
            given = answers.answer_from_callback_query(query, tap, expert.id, labels,
                                                       kept_at(update))
        except answers.InvalidTap as exc:
            await query.answer(str(exc), show_alert=True)
            return
        # not `opened`: the answering tap is not a first look, and would zero the time spent
        await self._submit(update, context, expert, given, keyboards.describe(given.decision))

    async def _submit(self, update: Update, context: Context, expert: Expert,
                      given: Answer, summary: str, card_message: int | None = None) -> None:
        messenger = self.messenger(context, expert, update.callback_query, summary=summary,
                                   card=card_message)
        outcome = await self.service.submit(given)
        chat, card = _chat(update), outcome.next is not None and not outcome.replayed
        if outcome.status == "recorded":  # every other copy of the card loses its buttons
            await self._retire(messenger, chat, given.lease)
        closing = messenger.outcome_closing(chat, outcome)
        try:
            await messenger.show_outcome(chat, outcome)
            closing = None
            if card and outcome.next is not None:
                await deliver(self.service, messenger, chat, outcome.next)
        except TelegramError as exc:
            if not undeliverable(exc):
                raise
            # recorded, but Telegram would not take the rest even after retries: owe it
            log.warning("telegram send failed after the answer; owed: %r", exc)
            await self.outbox.owe(chat, expert.id, closing, card)

    async def _retire(self, messenger: TelegramMessenger, chat: str, lease: str) -> None:
        campaign_id = await self.service.catalog.campaign_for_lease(lease)
        if campaign_id is not None and messenger.copies is not None:
            card = messenger.card_message
            keep = card.message_id if isinstance(card, Message) else card
            await messenger.copies.retire(chat, campaign_id, lease, keep=keep)

    async def on_step(self, update: Update, context: Context) -> None:
        """A tap that changes the card's buttons, not the record: rank picks, undo, label
        toggles, the flag menu. The state rides in the buttons."""
        tapped = await self._tap(update, context)
        if tapped is None:
            return
        query, expert, tap = tapped
        controls = await self._controls(tap, expert.id, context.bot, _message(query))
        if isinstance(controls, str):
            await query.answer(controls, show_alert=True)
            return
        await self.service.opened(tap.lease, expert.id, kept_at(update))
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
        """Corrections, written answers and overrides come as a reply to a ForceReply prompt."""
        tapped = await self._tap(update, context)
        if tapped is None:
            return
        query, expert, tap = tapped
        draft = await self._draft(tap.lease, expert.id)
        if draft is None:
            await query.answer("This task is no longer yours; nothing was recorded.",
                               show_alert=True)
            return
        await self.service.opened(tap.lease, expert.id, kept_at(update))
        await query.answer()
        stage = {"e": "correct", "w": "write", "o": "reason"}[tap.action]
        card = _message(query)
        await self._ask(update, context, expert, stage, tap.lease,
                        card.message_id if card else 0, draft if stage == "correct" else None)

    async def _ask(self, update: Update, context: Context, expert: Expert, stage: str,
                   lease: str, card: int, draft: str | None, reason: str | None = None) -> None:
        asks = {"correct": "Reply to this message with the full corrected text of draft A.",
                "write": "Reply to this message with your full answer.",
                "reason": "Why override draft A? Reply to this message with your reason.",
                "override": "Now reply to this message with the full replacement text."}
        messenger = self.messenger(context, expert)
        chat = _chat(update)
        quoted = f"\n<pre>{_html(draft)}</pre>" if draft else ""
        if draft and len(quoted) > 3000:  # the draft goes first, whole, in parts
            for part in keyboards.split_escaped(draft, 4000):
                await messenger.send(chat, part)
            quoted = ""
        text = f"✏️ {asks[stage]}{quoted}\nref: {stage} {lease} {card}"
        if reason is not None:
            text += f"\n{answers.REASON_MARK}{_html(reason)}"
        await context.bot.send_message(
            chat_id=int(chat), text=text, parse_mode=ParseMode.HTML,
            reply_markup=ForceReply(selective=True, input_field_placeholder="Full text"),
            disable_notification=messenger.silent)

    async def on_reply(self, update: Update, context: Context) -> None:
        message = update.effective_message
        assert message is not None
        expert = await self._known(update, context)
        if expert is None:
            return
        try:
            prompt = answers.prompt_from_reply(message, context.bot.id)
        except answers.InvalidTap:
            await self.help(update, context)
            return
        if prompt.stage == "reason":
            draft = await self._draft(prompt.lease, expert.id)
            await self._ask(update, context, expert, "override", prompt.lease,
                            prompt.card_message, draft, reason=message.text or "")
            return
        given = answers.answer_from_reply(message, prompt, expert.id, kept_at(update))
        await self._submit(update, context, expert, given, keyboards.describe(given.decision),
                           card_message=prompt.card_message)

    async def on_next(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        expert = await self._tapper(update, context)
        if expert is not None:
            await query.answer()
            await self._deliver_next(update, context, expert)

    async def on_unknown(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("This button is from an older version; send /next.", show_alert=True)

    async def _tap(self, update: Update, context: Context
                   ) -> tuple[CallbackQuery, Expert, answers.Tap] | None:
        """The button press, its expert (None, answered, for a stranger) and its parsed data."""
        query = update.callback_query
        assert query is not None
        expert = await self._tapper(update, context)
        return None if expert is None else (query, expert, answers.tap_from_data(query.data))

    async def _tapper(self, update: Update, context: Context) -> Expert | None:
        expert = await self.expert(update)
        if expert is None and update.callback_query is not None:
            await update.callback_query.answer(NOT_LINKED, show_alert=True)
        return expert

    async def _controls(self, tap: answers.Tap, expert_id: str, bot: Bot,
                        card: Message | None) -> keyboards.Controls | str:
        """The card's controls for a step tap, or why the tap may not change the card."""
        service = self.service
        campaign_id = await service.catalog.campaign_for_lease(tap.lease)
        if campaign_id is None:
            return "This task is no longer open; nothing was recorded."
        held = await service.store.held_leases(expert_id, [campaign_id], service.clock.now_ms())
        if tap.lease not in held:
            return "This task is not yours to answer, or no longer open; nothing was recorded."
        if card is not None and not await Copies(bot, service.store).current(
                campaign_id, tap.lease, card.message_id):
            return "This task was shown again further down: answer it there."
        spec = (await service.catalog.campaign(campaign_id)).spec
        n = int(tap.arg[0], 36) if tap.action in "kfx" and tap.arg[:1].isalnum() else 0
        return keyboards.Controls(tap.lease, spec.options(), n)

    async def _labels(self, lease: str) -> list[str]:
        campaign_id = await self.service.catalog.campaign_for_lease(lease)
        if campaign_id is None:
            return []
        return list((await self.service.catalog.campaign(campaign_id)).spec.labels)

    async def _draft(self, lease: str, expert_id: str) -> str | None:
        """Draft A as this expert was shown it; None if the lease is not theirs."""
        campaign_id = await self.service.catalog.campaign_for_lease(lease)
        view = (await self.service.store.lease_view(campaign_id, lease)
                if campaign_id else None)
        if view is None or view.lease.expert != expert_id or view.lease.state != "live":
            return None
        drafts = item_from_body(view.item_body).drafts
        return drafts[view.lease.order[0]].text if view.lease.order else ""


def kept_at(update: Update) -> int | None:
    """When the expert acted on an update the webhook kept; None for a polled one (now)."""
    kept = update.api_kwargs.get(KEPT_AT)
    return kept if isinstance(kept, int) else None


def _lease_of(update: Update) -> str:
    """The lease a tapped button or a reply to a prompt names; empty when none."""
    query, message = update.callback_query, update.effective_message
    if query is not None:
        return query.data.split("|")[1] if query.data and query.data.count("|") == 2 else ""
    prompt = message.reply_to_message if message is not None else None
    found = answers.REF.search(prompt.text or "") if prompt is not None else None
    return found[2] if found else ""


def _chat(update: Update) -> str:
    chat = update.effective_chat
    assert chat is not None
    return str(chat.id)


def _message(query: CallbackQuery | None) -> Message | None:
    """The card a button sits on; Telegram sends a stub for messages too old to show."""
    message = query.message if query is not None else None
    return message if isinstance(message, Message) else None


def _html(text: str) -> str:
    return escape(text, quote=False)
