"""A Telegram test session: the emulated Bot API, the real PTB Application behind the real
webhook route on a real HTTP server, and a user who types and taps."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.redis.store import RedisStore
from adapters.telegram.app import CHANNEL, TelegramBot, TelegramSettings, build_telegram
from adapters.telegram.limits import Limits
from adapters.telegram.webhook import add_telegram_webhook
from core.domain.campaigns import CampaignSpec
from core.domain.experts import Expert
from core.service.coordinator import Coordinator
from core.service.inbox import settled
from core.service.service import Service
from core.service.staging import spool_items
from tests.emulators.telegram import TelegramEmulator

SECRET = "webhook-secret-1"
FAST = Limits(per_second=1000, per_chat_per_second=1000, chat_burst=1000)
DRAFTS = ["Take it with food.", "Never take it.", "Ask your doctor first."]


def settings(emulator: TelegramEmulator, limits: Limits = FAST) -> TelegramSettings:
    return TelegramSettings(token=emulator.token, api_url=emulator.base_url,
                            webhook_secret=SECRET, limits=limits, poll_timeout_s=1)


@asynccontextmanager
async def webhook_bot(emulator: TelegramEmulator, service: Service, coordinator: Coordinator,
                      limits: Limits = FAST, handling: bool = True) -> AsyncIterator[TelegramBot]:
    """The webhook on a real HTTP server and, unless `handling` is off, a drain handling what
    it keeps (the worker's share, in this process)."""
    telegram = build_telegram(settings(emulator, limits), service, coordinator, service.stores)
    app = web.Application()
    add_telegram_webhook(app, telegram, SECRET)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        await telegram.application.bot.set_webhook(str(server.make_url("/telegram/webhook")),
                                                   secret_token=SECRET)
        if not handling:
            yield telegram
            return
        emulator.handled = partial(settled, service.stores.inbox, CHANNEL)
        stop = asyncio.Event()
        drain = asyncio.create_task(telegram.drain.run_until(stop))
        try:
            yield telegram
        finally:
            stop.set()
            await drain
    finally:
        emulator.handled = None
        await server.close()


async def post_kind(coordinator: Coordinator, kind: str, n_items: int = 2,
                    drafts: list[str] | None = None, campaign_id: str = "c1",
                    **spec: Any) -> CampaignSpec:
    count = {"pairwise": 2, "rank": 3, "write": 0}.get(kind, 1)
    texts = drafts if drafts is not None else DRAFTS[:count]
    made = CampaignSpec(id=campaign_id, title="Which is right?", kind=kind,
                        instructions="Be careful <and> precise & kind.", **spec)
    items = [{"id": f"q{i}", "prompt": f"Question {i}: ibuprofen & <warfarin>?",
              "drafts": [{"text": t, "model": "m", "model_version": "1"} for t in texts]}
             for i in range(n_items)]
    spool = spool_items(made, items)
    try:
        await coordinator.post_campaign(made, spool)
    finally:
        spool.close()
    return made


class User:
    """A Telegram user: what they send goes through the emulator to the bot."""

    def __init__(self, emulator: TelegramEmulator, user_id: int) -> None:
        self.emulator, self.id = emulator, user_id

    async def say(self, text: str) -> int:
        return await self.emulator.send(self.emulator.message_update(self.id, text))

    async def reply(self, text: str) -> int:
        """Answer the newest ForceReply prompt."""
        prompt = next(m for m in reversed(self.emulator.chat(self.id))
                      if "ref: " in (m.get("text") or ""))
        return await self.emulator.send(self.emulator.message_update(self.id, text, prompt))

    def card(self) -> dict[str, Any]:
        return self.emulator.last(self.id, with_buttons=True)

    async def press(self, button: str, message: dict[str, Any] | None = None) -> int:
        message = message or self.card()
        data = self.emulator.buttons(message)[button]
        return await self.emulator.send(self.emulator.press_update(self.id, message, data))

    def texts(self) -> str:
        return "\n".join(self.emulator.texts(self.id))

    def callback_texts(self) -> list[str]:
        return [a.get("text", "") for a in self.emulator.callback_answers]


async def joined(coordinator: Coordinator, emulator: TelegramEmulator, expert_id: str,
                 user_id: int, **profile: Any) -> User:
    await coordinator.add_expert(Expert(id=expert_id, name=expert_id.title(), **profile))
    await coordinator.link(expert_id, f"telegram:{user_id}")
    return User(emulator, user_id)


async def asked(coordinator: Coordinator, emulator: TelegramEmulator, expert_id: str = "ann",
                user_id: int = 501) -> User:
    """A pairwise campaign, an expert joined on Telegram, and their first card asked for."""
    await post_kind(coordinator, "pairwise")
    user = await joined(coordinator, emulator, expert_id, user_id)
    await user.say("/next")
    return user


async def answered(store: RedisStore, campaign_id: str = "c1") -> list[dict[str, Any]]:
    found = [json.loads(e.body) for e in await store.read_events(campaign_id, 0, 100_000)]
    return [e for e in found if e["type"] == "answered"]


EVERY_CARD = {"Skip", "None acceptable", "Flag…"}
CORRECT = "✏️ Correct draft A (reply with text)"
WRITE = "✍️ Write the answer (reply with text)"


async def answer_card(user: User, turn: int) -> None:
    """Answer the user's current card as a person would on its kind, varying a little."""
    buttons = user.emulator.buttons(user.card())
    own = [text for text in buttons if text not in EVERY_CARD]
    if CORRECT in buttons or WRITE in buttons:
        await user.press(CORRECT if CORRECT in buttons else WRITE)
        assert await user.reply(f"User{user.id} text {turn} & <more>") == 200
    elif "Override…" in buttons and turn % 2:
        await user.press("Override…")
        await user.reply(f"Reason {turn}")
        assert await user.reply(f"Replacement {turn}") == 200
    elif "Accept" in buttons:
        assert await user.press("Accept") == 200
    elif any(text.startswith("Order: ") for text in buttons):
        drafts = sorted(text for text in own if len(text) == 1)
        for label in reversed(drafts) if turn % 2 else drafts:
            await user.press(label)
        assert await user.press("Confirm") == 200
    else:  # pairwise, rate, label: one tap
        assert await user.press(own[turn % len(own)]) == 200


def lease_of(message: dict[str, Any]) -> str | None:
    """The lease a card's buttons carry (`<action>|<lease>|<arg>`); None for other messages."""
    for data in TelegramEmulator.buttons(message).values():
        parts = data.split("|")
        if len(parts) == 3 and parts[1] != "-":
            return parts[1]
    return None


def live_copies(emulator: TelegramEmulator, chat: int) -> dict[str, list[int]]:
    """Per lease, the messages in the chat whose buttons for it are live."""
    found: dict[str, list[int]] = {}
    for message in emulator.live_messages(chat):
        lease = lease_of(message)
        if lease is not None:
            found.setdefault(lease, []).append(message["message_id"])
    return found
