"""Done when, for Telegram: three experts work side by side through the emulated Bot API and the
real webhook on a 30-item campaign of mixed kinds with overlap 2; every answer is in the
provenance log exactly once and the log verifies."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from adapters.redis.store import RedisStore
from adapters.telegram.app import Telegram
from core.coordinator import Coordinator
from core.ledger import Ledger
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import User, answer_card, answered, joined, post_kind

KINDS: list[tuple[str, int, dict[str, Any]]] = [
    ("pairwise", 6, {}), ("rank", 4, {}), ("rate", 4, {"scale": {"min": 1, "max": 5}}),
    ("correct", 4, {}), ("verify", 4, {}), ("label", 4, {"labels": ["ok", "wrong", "unsafe"]}),
    ("write", 4, {}),
]
async def work_until_idle(user: User) -> int:
    """Ask once, then answer each card as it comes; every answer brings a new card or the
    notice that there is nothing left (a message whose only button is "Next task")."""
    await user.say("/next")
    done = 0
    while set(user.emulator.buttons(user.card())) != {"Next task"}:
        before = user.card()["message_id"]
        await answer_card(user, done)
        done += 1
        assert user.card()["message_id"] != before, "no next card after an answer"
    return done


async def test_three_experts_answer_a_mixed_campaign_with_overlap_two(
        bot: Telegram, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore, ledger: Ledger) -> None:
    for kind, n_items, spec in KINDS:
        await post_kind(coordinator, kind, n_items=n_items, campaign_id=f"mix-{kind}",
                        overlap=2, **spec)
    users = [await joined(coordinator, emulator, name, 601 + i)
             for i, name in enumerate(("ana", "ben", "cy"))]

    done = await asyncio.gather(*(work_until_idle(user) for user in users))  # side by side

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
