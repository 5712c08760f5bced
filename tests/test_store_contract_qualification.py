"""The store's part in qualification, on every store (single Redis and the Cluster): its items
sit in their own queue, each expert gets each once (again only after a lease ran out), nothing
counts against the campaign's items, and a result is kept once, until a requalify."""

from __future__ import annotations

import json

from adapters.redis.store import RedisStore
from core.domain.qualification import QualificationResult
from core.ports import QualificationClaim
from core.provenance.events import open_body
from tests.test_store_contract import NOW, a_claim, a_record, event, open_campaign, staged


async def qualify_campaign(store: RedisStore) -> None:
    await open_campaign(store, "real")
    prefix = open_body("c1", "qualification_item_added", NOW, "coordinator")
    assert await store.add_qualification_items("c1", [staged("qa", True), staged("qb", True)],
                                               prefix) == 2


async def take(store: RedisStore, expert: str, token: str, now: int = NOW) -> QualificationClaim:
    return await store.claim_qualification(a_claim(expert, token, now=now))


async def test_each_expert_answers_each_qualification_item_once(any_store: RedisStore) -> None:
    await qualify_campaign(any_store)
    answered = []
    for n, item in enumerate(("qa", "qb")):
        found = await take(any_store, "ann", f"k1.ann{n}")
        assert (found.status, found.position, found.total) == ("lease", n + 1, 2)
        assert found.claimed is not None and found.claimed.lease.item == item
        assert found.claimed.lease.gold
        recorded, _ = await any_store.record(a_record("ann", f"k1.ann{n}"))
        answered.append(recorded.seq)

    complete = await take(any_store, "ann", "k1.ann9")

    assert complete.status == "complete"
    assert [(a.item, a.answer_seq) for a in complete.answers] == [("qa", answered[0]),
                                                                   ("qb", answered[1])]
    assert (await take(any_store, "bob", "k1.bob0")).claimed.lease.item == "qa"  # type: ignore
    status = await any_store.status(*await _campaign_and_state(any_store))
    assert (status.answers, status.items, status.done) == (0, 1, 0)


async def test_a_live_or_expired_qualification_lease(any_store: RedisStore) -> None:
    await qualify_campaign(any_store)
    first = await take(any_store, "ann", "k1.ann0")
    held = await take(any_store, "ann", "k1.ann1", now=NOW + 10)
    later = await take(any_store, "ann", "k1.ann2", now=NOW + 61_000)

    assert held.claimed.lease.token == "k1.ann0"  # type: ignore[union-attr]
    assert (later.claimed.lease.item, later.claimed.lease.token) == ("qa", "k1.ann2")  # type: ignore[union-attr]
    assert first.claimed is not None


async def test_a_result_is_kept_once_until_requalify(any_store: RedisStore) -> None:
    await qualify_campaign(any_store)
    await take(any_store, "ann", "k1.ann0")
    passed = QualificationResult(expert="ann", state="failed", right=0, answers=2, share=0.0)

    assert await any_store.decide_qualification("c1", passed, event("qualified"))
    assert not await any_store.decide_qualification("c1", passed, event("qualified"))
    assert (await take(any_store, "ann", "k1.ann1")).status == "failed"
    assert await any_store.qualification_results("c1") == [passed]

    assert await any_store.requalify("c1", "ann", event("requalified"))
    assert not await any_store.requalify("c1", "ann", event("requalified"))
    assert await any_store.qualification_results("c1") == []
    events = [json.loads(e.body)["type"] for e in await any_store.read_events("c1", 0, 100)]
    assert events.count("qualified") == 1 and events.count("requalified") == 1


async def _campaign_and_state(store: RedisStore):  # type: ignore[no-untyped-def]
    campaign = await store.load_campaign("c1")
    return campaign, await store.campaign_state("c1")
