"""The Archived role, on every store (single Redis and the Cluster): a sealed segment leaves
Redis only in order, only once, only as sealed; the log then reads as one (archive + tail), and
claims still find the items whose events left the stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.archive.files import LocalSegmentFiles
from adapters.redis import keys as k
from adapters.redis.store import RedisStore
from core.ports import Claimed, HeldItem
from core.provenance.events import GENESIS, open_body
from core.provenance.ledger import Ledger
from core.provenance.segments import ArchivedEvent, SegmentMeta, segment_name
from tests.test_store_contract import NOW, a_claim, event, open_campaign, staged


@pytest.fixture
def archiving(any_store: RedisStore, tmp_path: Path) -> RedisStore:
    """The same store, reading archived segments from a folder of the test's own."""
    return RedisStore(any_store.client, any_store.scripts, files=LocalSegmentFiles(tmp_path))


async def logged(store: RedisStore, n: int) -> None:
    for i in range(n):
        await store.append_event("c1", event("note", i=i))
    await Ledger(store).seal("c1")


async def segment_of(store: RedisStore, first: int, last: int, prev: str) -> SegmentMeta:
    """Write events first..last to the archive as they are in Redis now; the meta to trim."""
    stored = await store.read_events("c1", first - 1, last - first + 1)
    seals = await store.read_seals("c1", [e.seq for e in stored])
    events = [ArchivedEvent(seq=e.seq, hash=seals[e.seq], body=e.body) for e in stored]
    meta = SegmentMeta(campaign="c1", name=segment_name(first, last), first_seq=first,
                       last_seq=last, prev=prev, last_hash=events[-1].hash, events=len(events),
                       archived_at=NOW)
    assert store.files is not None
    return store.files.write_segment(meta, events)


async def in_redis(store: RedisStore) -> tuple[int, int]:
    return (await store.client.xlen(k.campaign_key("c1", "log")),
            await store.client.hlen(k.campaign_key("c1", "hashes")))


async def test_a_trimmed_segment_leaves_redis_and_the_log_reads_as_one(
        archiving: RedisStore) -> None:
    await logged(archiving, 10)
    whole = await archiving.read_events("c1", 0, 100)
    seals = await archiving.read_seals("c1", list(range(1, 11)))
    meta = await segment_of(archiving, 1, 6, GENESIS)

    assert await archiving.trim_archived("c1", meta)

    assert await archiving.segments("c1") == [meta]
    assert await in_redis(archiving) == (4, 4)
    assert await archiving.read_events("c1", 0, 100) == whole
    assert await archiving.read_events("c1", 4, 4) == whole[4:8]
    assert await archiving.read_events("c1", 6, 2) == whole[6:8]
    assert await archiving.read_events_at("c1", [8, 2, 6]) == [whole[7], whole[1], whole[5]]
    assert await archiving.read_seals("c1", list(range(1, 11))) == seals
    assert (await Ledger(archiving).verify("c1")).ok


async def test_segments_follow_one_another_and_each_is_trimmed_once(
        archiving: RedisStore) -> None:
    await logged(archiving, 10)
    first = await segment_of(archiving, 1, 4, GENESIS)
    second = await segment_of(archiving, 5, 8, first.last_hash)

    assert not await archiving.trim_archived("c1", second)  # does not start the log
    assert await archiving.trim_archived("c1", first)
    assert not await archiving.trim_archived("c1", first)  # already there
    assert await archiving.trim_archived("c1", second)

    assert [meta.name for meta in await archiving.segments("c1")] == [
        "000000000001-000000000004.parquet", "000000000005-000000000008.parquet"]
    assert await in_redis(archiving) == (2, 2)


async def test_a_segment_that_does_not_match_the_seals_changes_nothing(
        archiving: RedisStore) -> None:
    await logged(archiving, 6)
    meta = await segment_of(archiving, 1, 4, GENESIS)
    await archiving.append_event("c1", event("unsealed"))

    for wrong in (meta.model_copy(update={"last_hash": "f" * 64}),
                  meta.model_copy(update={"prev": "f" * 64}),
                  meta.model_copy(update={"last_seq": 7, "name": segment_name(1, 7)})):
        assert not await archiving.trim_archived("c1", wrong)

    assert await archiving.segments("c1") == []
    assert await in_redis(archiving) == (7, 6)


async def test_claims_still_read_items_whose_events_were_archived(
        archiving: RedisStore) -> None:
    await open_campaign(archiving, "q1", "q2")  # seqs: posted 1, q1 2, q2 3, active 4
    await Ledger(archiving).seal("c1")
    meta = await segment_of(archiving, 1, 3, GENESIS)
    assert await archiving.trim_archived("c1", meta, [HeldItem(2, "q1"), HeldItem(3, "q2")])

    first = await archiving.claim(a_claim("ann", "k1.ann"))
    again = await archiving.claim(a_claim("ann", "k1.ann"))  # the held lease, read once more
    other = await archiving.claim(a_claim("bob", "k1.bob"))
    view = await archiving.lease_view("c1", "k1.ann")

    assert isinstance(first, Claimed) and isinstance(again, Claimed)
    assert isinstance(other, Claimed)
    assert '"id": "q1"' in first.item_body and again.item_body == first.item_body
    assert view is not None and view.item_body == first.item_body


async def test_qualification_claims_read_archived_items_too(archiving: RedisStore) -> None:
    await open_campaign(archiving, "real")
    prefix = open_body("c1", "qualification_item_added", NOW, "coordinator")
    await archiving.add_qualification_items("c1", [staged("qa", True)], prefix)
    await Ledger(archiving).seal("c1")
    head = (await archiving.chain_head("c1")).seq
    meta = await segment_of(archiving, 1, head, GENESIS)
    assert await archiving.trim_archived("c1", meta, [HeldItem(head, "qa")])

    found = await archiving.claim_qualification(a_claim("ann", "k1.ann"))

    assert found.claimed is not None and '"id": "qa"' in found.claimed.item_body


async def test_a_reader_that_knew_an_older_archive_reads_a_newer_one(
        archiving: RedisStore) -> None:
    await logged(archiving, 12)
    whole = await archiving.read_events("c1", 0, 100)
    first = await segment_of(archiving, 1, 4, GENESIS)
    assert await archiving.trim_archived("c1", first)
    reader = RedisStore(archiving.client, archiving.scripts, files=archiving.files)
    assert await reader.read_events("c1", 0, 100) == whole  # it now knows seqs 1..4 left

    second = await segment_of(archiving, 5, 9, first.last_hash)
    assert await archiving.trim_archived("c1", second)  # by another process

    assert await reader.read_events("c1", 4, 3) == whole[4:7]
    assert await reader.read_events("c1", 0, 100) == whole
    assert await reader.read_events_at("c1", [10, 6, 3]) == [whole[9], whole[5], whole[2]]
