"""Redis Cluster failover with real processes (bench/failover.py runs the same and prints the
figures): 3 masters with a replica each, two `expertloop serve` and two `expertloop worker`,
experts answering through the web chat. The campaign's replica falls behind (its link cut, the
replica paused) while answers go on, then its master is killed and the replica takes over.

With `EXPERTLOOP_REPLICA_ACKS=1` no answer an expert was told was saved is missing afterwards;
without it, those acknowledged while the replica lagged are gone (docs/deploy.md, "Failover").
Either way the log left behind verifies: a failover rolls it back to a consistent prefix."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis

from adapters.redis.store import RedisStore
from bench.failover import failover
from core.provenance.chain import START, ChainChecker, ChainHead, StoredEvent, seal_events
from core.provenance.ledger import Ledger


async def test_with_replica_acks_no_acknowledged_answer_is_lost(tmp_path: Path) -> None:
    run = await failover(tmp_path, acks=1, lagging=True)

    assert run.missing == [], f"{len(run.missing)} acknowledged answers lost"
    assert run.refused_meanwhile > 0  # not acknowledged while no replica could confirm them
    assert run.told_meanwhile > 0  # and the expert read "Not saved, please try again"
    assert run.acked_after > 0  # answering goes on once the old master is back as a replica
    assert run.verify_rc == 0, run.verify


async def test_without_replica_acks_answers_acknowledged_while_the_replica_lagged_are_lost(
        tmp_path: Path) -> None:
    run = await failover(tmp_path, acks=0, lagging=True)

    assert run.missing, "the lagging replica should have missed acknowledged answers"
    assert run.acked_after > 0
    # The log is the replica's prefix and goes on from there: no gap, so verify passes; the
    # loss shows only against a signed checkpoint taken before it (provenance verify
    # --checkpoints), or as cards shown again.
    assert run.verify_rc == 0, run.verify


def test_a_seal_past_an_unsealed_event_is_a_sealer_moving_on_not_a_change() -> None:
    """verify reads events and seals batch by batch while the workers seal: a batch may find
    the next batch's first events sealed after its own tail was read as unsealed."""
    events = [StoredEvent(seq, f'{{"type": "answered", "n": {seq}}}') for seq in range(1, 7)]
    seals = dict(seal_events(START, events))
    checker = ChainChecker("c1", sealed_up_to=2)
    assert checker.feed(events[:4], {s: seals[s] for s in (1, 2)})  # 3, 4 not yet sealed
    assert checker.feed(events[4:], seals)  # by now a sealer reached 6
    verdict = checker.finish()
    assert verdict.ok and (verdict.checked, verdict.unsealed) == (6, 4), verdict


def test_a_missing_event_is_reported_not_passed_over() -> None:
    events = [StoredEvent(seq, f'{{"n": {seq}}}') for seq in (1, 2, 4)]
    checker = ChainChecker("c1", sealed_up_to=0)
    checker.feed(events, {})
    assert checker.finish().line() == ("c1: chain broken at seq 3: event 3 is missing (removed); "
                                       "the log jumps to 4")


async def test_a_sealer_never_seals_past_a_gap(store: RedisStore) -> None:
    """A sealer that read the head on the old master and the events on the new one (a failover
    between its reads) would save seals above events it never saw, and the chain would stay
    broken below them for good; the store refuses, and the next pass seals from the head."""
    for n in range(6):
        await store.append_event("c1", f'{{"type": "note", "n": {n}}}')
    events = await store.read_events("c1", 0, 10)
    seals = seal_events(START, events)
    await store.save_seals("c1", seals[:2])

    await store.save_seals("c1", seals[4:])  # computed from a head at 4 that this log never had

    assert (await store.chain_head("c1")).seq == 2
    assert await Ledger(store).seal("c1") == 4
    assert (await Ledger(store).verify("c1")).ok


class OldMasterHead(RedisStore):
    """The head as a sealer read it from the master that then failed over: 4, where the new
    master's log was sealed only to 2."""

    async def chain_head(self, campaign_id: str) -> ChainHead:
        found = await super().chain_head(campaign_id)
        if self.stale is not None:
            found, self.stale = self.stale, None
        return found

    stale: ChainHead | None = None


async def test_a_sealer_whose_save_is_refused_ends_its_pass_and_the_next_seals_all(
        client: aioredis.Redis) -> None:  # type: ignore[type-arg]
    """A worker died of this in a failover (the refusal raised); now the pass ends quietly."""
    store = OldMasterHead(client)
    for n in range(6):
        await store.append_event("c1", f'{{"type": "note", "n": {n}}}')
    await store.save_seals("c1", seal_events(START, await store.read_events("c1", 0, 2)))
    store.stale = ChainHead(4, "ab" * 32)

    assert await Ledger(store).seal("c1") == 0  # refused above the gap, nothing claimed
    assert (await store.chain_head("c1")).seq == 2
    assert await Ledger(store).seal("c1") == 4
    assert (await Ledger(store).verify("c1")).ok
