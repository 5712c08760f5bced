"""The Telegram side of a fault test: experts who tap buttons through the emulator, the
webhook's answers, and the count check every fault test ends with."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import aiohttp

from adapters.redis.store import RedisStore
from adapters.telegram.answers import tap_from_data
from core.ports import Log
from core.service.coordinator import Coordinator
from tests.emulators.telegram import TelegramEmulator
from tests.faults.processes import Expertloop
from tests.telegram_session import SECRET, User, joined

CHOICE = "A is better"
WRITE = "✍️ Write the answer (reply with text)"
BUTTONS, WRITTEN = "pairwise", "write"  # campaign kinds: answered by a tap, or by a reply


async def telegram_experts(coordinator: Coordinator, emulator: TelegramEmulator,
                           n: int) -> list[User]:
    return [await joined(coordinator, emulator, f"expert{i}", 7000 + i) for i in range(n)]


def use_webhook(emulator: TelegramEmulator, web: Expertloop) -> None:
    """What setWebhook would have told Telegram: where to post updates."""
    emulator.webhook = (f"{web.url}/telegram/webhook", SECRET)


def tap(user: User, button: str = CHOICE) -> dict[str, Any]:
    """The update Telegram sends when the user presses `button` on their newest card."""
    card = user.card()
    return user.emulator.press_update(user.id, card, user.emulator.buttons(card)[button])


async def answer_update(user: User, kind: str) -> dict[str, Any]:
    """The update that answers the user's newest card: a tap on a choice, or (for a written
    answer) the reply to the prompt a tap on Write brings, which is asked for here."""
    if kind == BUTTONS:
        return tap(user)
    await user.emulator.deliver(tap(user, WRITE))
    prompt = next(m for m in reversed(user.emulator.chat(user.id))
                  if "ref: " in (m.get("text") or ""))
    return user.emulator.message_update(user.id, "Ask a pharmacist.", prompt)


def lease_of(update: dict[str, Any]) -> str:
    if "callback_query" in update:
        return tap_from_data(update["callback_query"]["data"]).lease
    ref = update["message"]["reply_to_message"]["text"].split("ref: ", 1)[1]
    return ref.split()[1]  # "ref: <stage> <lease> <card message>"


async def post_once(web: Expertloop, update: dict[str, Any], attempt_s: float = 10
                    ) -> tuple[int, dict[str, str], str]:
    """One delivery attempt, no resend: the status, headers and body Telegram would get."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=attempt_s)) as s, \
            s.post(f"{web.url}/telegram/webhook", json=update,
                   headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as reply:
        return reply.status, dict(reply.headers), await reply.text()


async def answered_leases(store: Log, campaign_id: str) -> Counter[str]:
    """How many `answered` events each lease has in the campaign's log."""
    events = [json.loads(e.body) for e in await store.read_events(campaign_id, 0, 1_000_000)]
    return Counter(str(e["lease"]) for e in events if e["type"] == "answered")


async def assert_exactly_once(store: RedisStore, campaign_id: str, acked: list[str],
                              refused: list[str] = ()) -> None:  # type: ignore[assignment]
    """Every answer the platform was told was saved is in the log once; no refused one is."""
    found = await answered_leases(store, campaign_id)
    assert not [lease for lease, n in found.items() if n > 1], found
    assert sorted(found) == sorted(set(acked)), (sorted(found), sorted(acked))
    assert not set(refused) & set(found)
