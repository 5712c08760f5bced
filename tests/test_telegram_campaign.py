"""Done when, for Telegram: three experts work side by side through the emulated Bot API and the
real webhook on a 30-item campaign of mixed kinds with overlap 2; every answer is in the
provenance log exactly once and the log verifies."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from adapters.redis.store import RedisStore
from adapters.telegram.app import TelegramBot
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import (
    User,
    answer_card,
    answered,
    joined,
    live_copies,
    post_kind,
)

KINDS: list[tuple[str, int, dict[str, Any]]] = [
    ("pairwise", 6, {}), ("rank", 4, {}), ("rate", 4, {"scale": {"min": 1, "max": 5}}),
    ("correct", 4, {}), ("verify", 4, {}), ("label", 4, {"labels": ["ok", "wrong", "unsafe"]}),
    ("write", 4, {}),
]


def watch_for_copies(emulator: TelegramEmulator) -> list[tuple[int, dict[str, list[int]]]]:
    """After every call the bot makes, each chat shows at most one live copy of a task; what
    broke that is collected (chat, copies) for the test to show."""
    seen: list[tuple[int, dict[str, list[int]]]] = []

    def look(chat: int) -> None:
        copies = {lease: ids for lease, ids in live_copies(emulator, chat).items()
                  if len(ids) > 1}
        if copies:
            seen.append((chat, copies))

    emulator.watch = look
    return seen


async def work_until_idle(user: User, again_every: int = 0) -> int:
    """Ask once, then answer each card as it comes; every answer brings a new card or the
    notice that there is nothing left (a message whose only button is "Next task"). With
    `again_every`, every so often the expert asks for the card they hold once more first."""
    await user.say("/next")
    done = 0
    while set(user.emulator.buttons(user.card())) != {"Next task"}:
        if again_every and done % again_every == 0:
            assert await user.say("/next") == 200
        before = user.card()["message_id"]
        await answer_card(user, done)
        done += 1
        assert user.card()["message_id"] != before, "no next card after an answer"
    return done


async def test_three_experts_answer_a_mixed_campaign_with_overlap_two(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore, ledger: Ledger) -> None:
    for kind, n_items, spec in KINDS:
        await post_kind(coordinator, kind, n_items=n_items, campaign_id=f"mix-{kind}",
                        overlap=2, **spec)
    users = [await joined(coordinator, emulator, name, 601 + i)
             for i, name in enumerate(("ana", "ben", "cy"))]
    copies = watch_for_copies(emulator)

    done = await asyncio.gather(*(work_until_idle(user, again_every=5)  # side by side
                                  for user in users))

    assert sum(done) == 2 * sum(n for _, n, _ in KINDS) == 60
    for kind, n_items, _ in KINDS:
        recorded = await answered(store, f"mix-{kind}")
        assert Counter(e["item"] for e in recorded) == {f"q{i}": 2 for i in range(n_items)}, kind
        assert len({(e["item"], e["expert"]) for e in recorded}) == len(recorded)
        assert {e["payload"]["decision"]["type"] for e in recorded} == {kind}
        assert all(e["payload"]["channel"] == "telegram" for e in recorded)
        await ledger.seal(f"mix-{kind}")
        verdict = await ledger.verify(f"mix-{kind}")
        assert verdict.ok and verdict.unsealed == 0, verdict
    for user, count in zip(users, done, strict=True):
        shown = emulator.chat(user.id)  # each answer confirmed once; only the last notice is live
        assert sum("✅ Saved" in (m.get("text") or "") for m in shown) == count
        assert [m["message_id"] for m in shown if "reply_markup" in m] == [
            user.card()["message_id"]]
    assert copies == []
    assert emulator.refused == []


async def test_three_experts_rate_a_campaign_with_overlap_two_one_live_copy_at_a_time(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore, ledger: Ledger) -> None:
    """Done when, for Telegram: a rate campaign through real PTB and the strict emulator,
    three experts, overlap 2, every slot answered exactly once, and no chat ever showing two
    live copies of one task, though the experts ask for their card again now and then."""
    await post_kind(coordinator, "rate", n_items=9, campaign_id="rate-9", overlap=2,
                    scale={"min": 1, "max": 7})
    users = [await joined(coordinator, emulator, name, 701 + i)
             for i, name in enumerate(("ana", "ben", "cy"))]
    copies = watch_for_copies(emulator)

    done = await asyncio.gather(*(work_until_idle(user, again_every=2) for user in users))

    assert sum(done) == 18
    recorded = await answered(store, "rate-9")
    assert Counter(e["item"] for e in recorded) == {f"q{i}": 2 for i in range(9)}
    assert len({(e["item"], e["expert"]) for e in recorded}) == 18
    assert {e["payload"]["decision"]["type"] for e in recorded} == {"rate"}
    await ledger.seal("rate-9")
    assert (await ledger.verify("rate-9")).ok
    assert copies == [] and emulator.refused == []
    for user in users:  # at the end: every card closed, only the "nothing left" notice live
        assert live_copies(emulator, user.id) == {}
        assert [m["message_id"] for m in emulator.live_messages(user.id)] == [
            user.card()["message_id"]]
