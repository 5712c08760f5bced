"""What an answered task leaves in Redis (issue 17: at most 1 KiB per task once archived): its
lease folds into one short line, and still reads, records and repeats as before; leases
answered before that layout (a JSON lease with its state, outcome and marks beside it) read
as they always did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.archive.files import LocalSegmentFiles
from adapters.redis import keys as k
from adapters.redis.store import RedisStore
from core.ports import Claimed, HeldItem, Recorded
from core.provenance.events import GENESIS
from core.provenance.ledger import Ledger
from core.provenance.segments import ArchivedEvent, SegmentMeta, segment_name
from tests.test_store_contract import (
    NOW,
    a_claim,
    a_record,
    claimed,
    event,
    open_campaign,
    recorded,
)

PER_LEASE = ("state", "outcomes")


async def kept_beside(store: RedisStore, token: str) -> list[str]:
    """The per-lease entries left outside `leases`: state, first outcome, marks."""
    client = store.client
    found = [name for name in PER_LEASE
             if await client.hexists(k.campaign_key("c1", name), token)]
    for mark in ("delivered", "opened"):
        if await client.hexists(k.campaign_key("c1", "marks"), f"{mark}:{token}"):
            found.append(mark)
    return found


async def test_an_answered_lease_reads_as_before_from_one_short_line(
        any_store: RedisStore) -> None:
    await open_campaign(any_store, "q|1")  # an item id may hold the separator
    lease = (await claimed(any_store, "ann", "k1.a")).lease
    assert await any_store.mark("c1", "k1.a", "delivered", NOW + 5, event("delivered"))
    assert await any_store.mark("c1", "k1.a", "opened", NOW + 7, event("opened"))

    first = await recorded(any_store, a_record("ann", "k1.a"))

    view = await any_store.lease_view("c1", "k1.a")
    assert view is not None
    assert view.lease == lease.model_copy(update={"state": "answered", "delivered_at": NOW + 5,
                                                  "opened_at": NOW + 7})
    assert view.outcome == f"{first.seq}|{NOW + 1000}|{first.active_seconds}|pairwise"
    assert json.loads(view.item_body)["item"] == "q|1"
    assert await kept_beside(any_store, "k1.a") == []
    line = await any_store.client.hget(k.campaign_key("c1", "leases"), "k1.a")
    assert len(line) < 128  # the JSON lease alone was about 250 bytes
    again = await recorded(any_store, a_record("ann", "k1.a", effect="skipped"))
    assert again == first._replace(status="duplicate", day=None)  # as it always said
    assert (await recorded(any_store, a_record("bob", "k1.a"))).status == "gone"
    assert not await any_store.mark("c1", "k1.a", "opened", NOW + 9, event("opened"))


async def test_a_gold_lease_keeps_its_flags_and_a_late_answer_its_word(
        any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1", gold=("g1",))
    gold = (await claimed(any_store, "ann", "k1.g", want_gold=True)).lease
    await claimed(any_store, "bob", "k1.b")
    assert await any_store.expire_due("c1", NOW + 61_000) == 2

    late = await recorded(any_store, a_record("bob", "k1.b", now=NOW + 30_000))
    await recorded(any_store, a_record("ann", "k1.g", now=NOW + 30_000))

    assert late.late
    view = await any_store.lease_view("c1", "k1.b")
    assert view is not None and view.outcome is not None and view.outcome.endswith("|late")
    gold_view = await any_store.lease_view("c1", "k1.g")
    assert gold_view is not None
    assert gold_view.lease == gold.model_copy(update={"state": "answered"})
    repeat = await recorded(any_store, a_record("bob", "k1.b", now=NOW + 30_000))
    assert (repeat.status, repeat.late, repeat.seq) == ("duplicate", True, late.seq)


async def answered_the_old_way(store: RedisStore, token: str, seq: int) -> str:
    """What record.lua wrote before leases folded: the JSON lease stays, `state` says answered,
    `outcomes` holds seq|answered_at|active|decision, the marks stay."""
    client = store.client
    outcome = f"{seq}|{NOW + 1000}|3.0|pairwise"
    await client.hset(k.campaign_key("c1", "state"), token, "answered")
    await client.hset(k.campaign_key("c1", "outcomes"), token, outcome)
    await client.zrem(k.campaign_key("c1", "expiry"), token)
    await client.hdel(k.campaign_key("c1", "active"), "ann")
    return outcome


async def test_a_lease_answered_before_the_fold_still_reads_and_repeats(
        any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1", "q2")
    lease = (await claimed(any_store, "ann", "k1.a")).lease
    assert await any_store.mark("c1", "k1.a", "delivered", NOW + 5, event("delivered"))
    outcome = await answered_the_old_way(any_store, "k1.a", 42)

    view = await any_store.lease_view("c1", "k1.a")
    assert view is not None and view.outcome == outcome
    assert view.lease == lease.model_copy(update={"state": "answered", "delivered_at": NOW + 5})
    repeat = await recorded(any_store, a_record("ann", "k1.a"))
    assert repeat == Recorded("duplicate", 42, NOW + 1000, 3.0, "pairwise", None, None, False)
    assert (await recorded(any_store, a_record("bob", "k1.a"))).status == "gone"
    assert not await any_store.mark("c1", "k1.a", "opened", NOW + 9, event("opened"))
    nxt = await claimed(any_store, "ann", "k1.next")  # the old answer does not hold them
    assert (nxt.lease.token, nxt.lease.item) == ("k1.next", "q2")


@pytest.fixture
def archiving(any_store: RedisStore, tmp_path: Path) -> RedisStore:
    """The same store, its archived segments in a folder of the test's own."""
    return RedisStore(any_store.client, any_store.scripts, files=LocalSegmentFiles(tmp_path))


async def archive_all(store: RedisStore, items: list[HeldItem]) -> None:
    """Seal the log and move all of it to one segment, as the archiver does."""
    await Ledger(store).seal("c1")
    head = (await store.chain_head("c1")).seq
    stored = await store.read_events("c1", 0, head)
    seals = await store.read_seals("c1", [e.seq for e in stored])
    events = [ArchivedEvent(seq=e.seq, hash=seals[e.seq], body=e.body) for e in stored]
    meta = SegmentMeta(campaign="c1", name=segment_name(1, head), first_seq=1, last_seq=head,
                       prev=GENESIS, last_hash=events[-1].hash, events=len(events),
                       archived_at=NOW)
    assert store.files is not None
    assert await store.trim_archived("c1", store.files.write_segment(meta, events), items)


async def bodies_kept(store: RedisStore) -> list[int]:
    return sorted(map(int, await store.client.hkeys(k.archived_items_key("c1"))))


async def test_a_finished_items_body_leaves_redis_and_still_shows_from_the_archive(
        archiving: RedisStore) -> None:
    await open_campaign(archiving, "q1", "q2", "q3", overlap=1)  # items at seqs 2, 3, 4
    await claimed(archiving, "ann", "k1.a", overlap=1)
    await recorded(archiving, a_record("ann", "k1.a", overlap=1))  # q1 finished
    await claimed(archiving, "bob", "k1.b", overlap=1)  # q2 held

    await archive_all(archiving, [HeldItem(2, "q1"), HeldItem(3, "q2"), HeldItem(4, "q3")])
    assert await bodies_kept(archiving) == [3, 4]  # held, open
    await recorded(archiving, a_record("bob", "k1.b", overlap=1))
    assert await bodies_kept(archiving) == [4]

    view = await archiving.lease_view("c1", "k1.b")
    assert view is not None and json.loads(view.item_body)["item"] == "q2"
    assert await archiving.to_adjudication("c1", "q1", NOW + 2000, event("to_adjudication"))
    claim = a_claim("cat", "k1.c", overlap=1)._replace(adjudicator=True)
    final = await archiving.claim(claim)
    assert isinstance(final, Claimed) and final.lease.adjudicate
    assert json.loads(final.item_body)["item"] == "q1"
    assert await bodies_kept(archiving) == [2, 4]  # in play again, until it is answered
