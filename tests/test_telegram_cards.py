"""A card too long for a few messages goes as a document (multipart upload through the bot's
aiohttp transport), whole, with a short message that carries the buttons; and every card of
every kind, in every state, is one the strict emulator (Telegram's rules) accepts."""

from __future__ import annotations

import pytest

from adapters.redis.store import RedisStore
from adapters.telegram.app import TelegramBot
from core.service.coordinator import Coordinator
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import answer_card, answered, joined, lease_of, live_copies, post_kind


async def test_a_very_long_card_arrives_as_a_document_and_is_answered(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    drafts = [f"Draft {n}: " + "ibuprofen & <warfarin> ünïcode " * 300 for n in range(3)]
    await post_kind(coordinator, "rank", drafts=drafts)
    ann = await joined(coordinator, emulator, "ann", 501)

    assert await ann.say("/next") == 200

    [document] = emulator.documents
    text = document["data"].decode()
    assert all(draft in text for draft in drafts)  # every draft whole, unescaped
    assert document["filename"].endswith(".txt")
    assert "file above" in ann.card()["text"]
    for label in ("B", "A", "C", "Confirm"):
        assert await ann.press(label) == 200
    [event] = await answered(store)
    assert event["payload"]["decision"] == {"type": "rank", "order": ["B", "A", "C"]}


KINDS: list[tuple[str, dict[str, object]]] = [
    ("pairwise", {}), ("rank", {}), ("rate", {"scale": {"min": 1, "max": 10}}), ("correct", {}),
    ("verify", {}), ("label", {"labels": ["ok", "wrong", "unsafe"]}), ("write", {}),
]
SIZES = {"short": 40, "parts": 4_000, "document": 30_000}  # characters of drafts in all


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize(("kind", "spec"), KINDS, ids=[kind for kind, _ in KINDS])
async def test_every_card_in_every_state_is_accepted_by_the_strict_emulator(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore, kind: str, spec: dict[str, object], size: str) -> None:
    """First sent, sent again, answered (the card edited, or its buttons dropped and the line
    sent below), in one message, several, or as a document: Telegram refuses none of it, and
    only the next task is left with live buttons."""
    count = {"pairwise": 2, "rank": 3, "write": 0}.get(kind, 1)
    length = SIZES[size] // max(count, 1)
    text = ("Draft & <text> ünï " * length)[:length]
    await post_kind(coordinator, kind, drafts=[f"{n}: {text}" for n in range(count)], **spec)
    ann = await joined(coordinator, emulator, "ann", 501)

    assert await ann.say("/next") == 200  # first send
    first = dict(ann.card())
    assert await ann.say("/next") == 200  # sent again
    again = dict(ann.card())
    await answer_card(ann, 1)  # answered: edited

    assert emulator.refused == []
    assert len(await answered(store)) == 1
    lease = lease_of(first)
    assert lease is not None and lease_of(again) == lease
    assert lease not in live_copies(emulator, 501)
    assert len(live_copies(emulator, 501)) == 1  # the next task
    assert "✅ Saved" in ann.texts()
    shown = [m.get("text") or "" for m in emulator.chat(501)]
    first_showing = shown[shown.index("/next") + 1:shown.index("/next", 1)]
    if size == "document" and count:  # a file, then a short message with the buttons
        assert len(first_showing) == 2 and "file above" in first_showing[-1]
    elif size == "parts" and count:
        assert len(first_showing) >= 2 and not emulator.documents
    else:
        assert len(first_showing) == 1
