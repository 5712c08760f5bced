"""DESIGN.md's invariants under many concurrent experts on the real (embedded) Redis: whatever
they do and however time moves, no expert answers an item twice, no item gets more than
`overlap` accepted answers, every recorded outcome is in the log exactly once, the sealed chain
verifies, and the progress counts agree with the log."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.redis.store import RedisStore
from core.domain.answers import Answer, Outcome
from core.domain.campaigns import CampaignSpec, CampaignStatus
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import Choose, Decision, Flag, NoneAcceptable, Rate, Skip
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import REFUSALS, Service
from core.service.staging import spool_items

NOW = 1_795_000_000_000
TIME_LIMIT_S = 60
DECISIONS = ("answered", "skipped", "flagged")
MOVES = ["answer"] * 8 + ["none", "skip", "skip", "flag", "double", "double", "late", "wander",
                          "abandon", "worker", "invalid", "steal", "kept", "kept_skip"]


@dataclass
class Scenario:
    """What the experts did and what the service told them."""

    service: Service
    clock: SetClock
    outcomes: list[tuple[str, Outcome]] = field(default_factory=list)  # (move, outcome)
    live: dict[str, str] = field(default_factory=dict)  # lease token -> expert holding it


def decision_for(move: str, rng: random.Random) -> Decision:
    if move == "none":
        return NoneAcceptable(note="both wrong")
    if move in ("skip", "kept_skip"):
        return Skip()
    if move == "flag":
        return Flag(reason=rng.choice(["harmful", "unsure", "broken"]))
    if move == "invalid":
        return Rate(score=3)  # a rate answer to a pairwise task
    return Choose(choice=rng.choice(["A", "B", "tie"]))


async def submit(world: Scenario, move: str, expert: str, lease: str,
                 decision: Decision, acted_at: int | None = None) -> Outcome:
    outcome = await world.service.submit(Answer(expert=expert, lease=lease, decision=decision,
                                                acted_at=acted_at))
    world.outcomes.append((move, outcome))
    return outcome


async def play(world: Scenario, expert: str, rng: random.Random, steps: int) -> None:
    """One expert working through tasks, making the choices a real one might."""
    for _ in range(steps):
        task = await world.service.next_task(expert)
        if not isinstance(task, Card):
            return
        world.live[task.lease] = expert
        move = rng.choice(MOVES)
        if move == "abandon":
            return
        if move == "worker":
            await world.service.expire_leases("c1")
            continue
        if move == "steal":
            theirs = [t for t, owner in world.live.items() if owner != expert]
            if theirs:
                await submit(world, move, expert, rng.choice(theirs), Choose(choice="A"))
            continue
        if move == "late":
            world.clock.advance(TIME_LIMIT_S + 1)
        if move.startswith("kept"):  # tapped now, kept in an inbox past the worker's expiry pass
            tapped = world.clock.now_ms()
            world.clock.advance(TIME_LIMIT_S + 1)
            await world.service.expire_leases("c1")
            await submit(world, move, expert, task.lease, decision_for(move, rng), tapped)
            continue
        if move == "wander":
            world.clock.advance(rng.uniform(0, TIME_LIMIT_S / 2))
        decision = decision_for(move, rng)
        if move == "double":
            await asyncio.gather(*(submit(world, move, expert, task.lease, decision)
                                   for _ in range(2)))
        else:
            await submit(world, move, expert, task.lease, decision)
        if move == "invalid":
            await submit(world, "answer", expert, task.lease, Choose(choice="tie"))


async def run_scenario(client: aioredis.Redis, rnd: random.Random, overlap: int, n_items: int,
                       n_gold: int, gold_rate: float, n_experts: int
                       ) -> tuple[Scenario, CampaignSpec, RedisStore]:
    await client.flushall()
    store, clock = RedisStore(client), SetClock(NOW)
    service = Service(store.roles(), clock, rng=random.Random(rnd.getrandbits(32)))
    coordinator = Coordinator(store.roles(), clock, service.catalog)
    spec = CampaignSpec(id="c1", title="Better?", kind="pairwise", overlap=overlap,
                        time_limit_s=TIME_LIMIT_S, gold_rate=gold_rate)
    drafts = [{"text": "yes", "model": "m1"}, {"text": "no", "model": "m2"}]
    items: list[dict[str, Any]] = [{"id": f"q{i}", "prompt": "?", "drafts": drafts}
                                   for i in range(n_items)]
    items += [{"id": f"g{i}", "prompt": "?", "drafts": drafts, "gold": 0} for i in range(n_gold)]
    spool = spool_items(spec, items)
    await coordinator.post_campaign(spec, spool)
    spool.close()
    experts = [f"e{n}" for n in range(n_experts)]
    for expert in experts:
        await coordinator.add_expert(Expert(id=expert, name=expert))

    world = Scenario(service, clock)
    # Draw every choice before making coroutines: Hypothesis may stop an example mid-draw.
    plans = [(e, random.Random(rnd.getrandbits(32)), rnd.randint(1, 8)) for e in experts]
    await asyncio.gather(*(play(world, e, rng, steps) for e, rng, steps in plans))
    return world, spec, store


async def logged(store: RedisStore) -> list[dict[str, Any]]:
    return [{"seq": e.seq, **json.loads(e.body)} for e in await store.read_events("c1", 0, 10**6)]


def check_no_expert_gets_an_item_twice(log: list[dict[str, Any]]) -> None:
    for type_ in ("assigned", "answered"):
        pairs = Counter((e["expert"], e["item"]) for e in log if e["type"] == type_)
        assert max(pairs.values(), default=1) == 1, (type_, pairs.most_common(3))


def check_overlap(log: list[dict[str, Any]], overlap: int) -> None:
    accepted = Counter(e["item"] for e in log
                       if e["type"] == "answered" and not e["payload"]["gold"])
    assert max(accepted.values(), default=0) <= overlap, accepted
    assert all(e["item"].startswith("g") == e["payload"]["gold"]
               for e in log if e["type"] == "answered")


def check_outcomes_against_log(world: Scenario, log: list[dict[str, Any]]) -> None:
    by_seq = {e["seq"]: e for e in log}
    decisions = [e for e in log if e["type"] in ("answered", "skipped", "flagged")]
    firsts = [o for _, o in world.outcomes if o.status == "recorded" and not o.replayed]
    assert sorted(o.seq for o in firsts) == sorted(e["seq"] for e in decisions)
    assert len({o.lease for o in firsts}) == len(firsts)
    for _, outcome in world.outcomes:
        if outcome.status == "recorded":
            event = by_seq[outcome.seq]
            assert event["lease"] == outcome.lease
            assert event["payload"]["decision"]["type"] == outcome.decision
    answered = {e["lease"] for e in decisions}
    for move, outcome in world.outcomes:
        assert (outcome.status == "refused") == (outcome.seq is None)
        if outcome.reason in (REFUSALS["expired"], REFUSALS["taken"]):
            assert outcome.lease not in answered
        if outcome.seq is not None:
            assert outcome.late == bool(by_seq[outcome.seq]["payload"].get("late"))
        if move == "steal":
            assert outcome.status == "refused"


def check_one_end_per_lease(log: list[dict[str, Any]]) -> None:
    """One decision or one expiry per lease; both only when the decision came late, after."""
    assigned = {e["lease"] for e in log if e["type"] == "assigned"}
    expired = {e["lease"]: e["seq"] for e in log if e["type"] == "lease_expired"}
    decided = [e for e in log if e["type"] in DECISIONS]
    ends = Counter(e["lease"] for e in log if e["type"] in (*DECISIONS, "lease_expired"))
    assert set(ends) <= assigned
    assert len(expired) == sum(e["type"] == "lease_expired" for e in log)
    assert len({e["lease"] for e in decided}) == len(decided)
    for event in decided:
        late = bool(event["payload"].get("late"))
        assert late == (event["lease"] in expired), event
        assert not late or expired[event["lease"]] < event["seq"]


def status_from_log(log: list[dict[str, Any]], overlap: int) -> dict[str, int]:
    types = Counter(e["type"] for e in log)
    answered = [e for e in log if e["type"] == "answered"]
    accepted = Counter(e["item"] for e in answered if not e["payload"]["gold"])
    late = sum(bool(e["payload"].get("late")) for e in log if e["type"] in DECISIONS)
    expired = types["lease_expired"] - late  # a lease answered late ended as answered
    ended = types["answered"] + types["skipped"] + types["flagged"] + expired
    return {
        "items": types["item_added"], "answers": len(answered),
        "in_progress": types["assigned"] - ended,
        "done": sum(1 for n in accepted.values() if n == overlap),
        "skipped": types["skipped"], "flagged": types["flagged"],
        "none_acceptable": sum(e["payload"]["decision"]["type"] == "none_acceptable"
                               for e in answered),
        "expired": expired,
        "dead_requests": 0,  # no inbox here: every request is handled as it comes
        "awaiting_adjudication": types["adjudication_needed"] + types["sent_to_adjudication"]
        - types["adjudicated"],
        "adjudicated": types["adjudicated"],
    }


def counts(status: CampaignStatus) -> dict[str, int]:
    return status.model_dump(exclude={"id", "title", "kind", "state"})


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rnd=st.randoms(use_true_random=False), overlap=st.integers(1, 3),
       n_items=st.integers(1, 15), n_gold=st.integers(0, 3),
       gold_rate=st.sampled_from([0.0, 0.3, 1.0]), n_experts=st.integers(10, 30))
async def test_invariants_hold_under_concurrent_experts(
        client: aioredis.Redis, rnd: random.Random, overlap: int, n_items: int, n_gold: int,
        gold_rate: float, n_experts: int) -> None:
    world, spec, store = await run_scenario(client, rnd, overlap, n_items, n_gold, gold_rate,
                                            n_experts)
    log = await logged(store)

    check_no_expert_gets_an_item_twice(log)
    check_overlap(log, overlap)
    check_outcomes_against_log(world, log)
    check_one_end_per_lease(log)
    status = await Coordinator(store.roles(), world.clock).status("c1")
    assert counts(status) == status_from_log(log, overlap)

    ledger = Ledger(store)
    assert await ledger.seal("c1") == len(log)
    verdict = await ledger.verify("c1")
    assert verdict.ok, verdict.line()
    assert (verdict.checked, verdict.unsealed) == (len(log), 0)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rnd=st.randoms(use_true_random=False), n_experts=st.integers(10, 30))
async def test_sealing_while_experts_work_still_verifies(client: aioredis.Redis,
                                                         rnd: random.Random,
                                                         n_experts: int) -> None:
    """Sealers run beside the hot path and each other; the chain is a function of the log."""
    await client.flushall()
    store = RedisStore(client)
    ledger = Ledger(store)
    sealing = True

    async def seal_repeatedly() -> None:
        while sealing:
            await ledger.seal("c1")
            await asyncio.sleep(0)

    sealers = [asyncio.create_task(seal_repeatedly()) for _ in range(3)]
    try:
        await run_scenario(client, rnd, 2, 10, 1, 0.3, n_experts)
    finally:
        sealing = False
        await asyncio.gather(*sealers)
    await ledger.seal("c1")

    verdict = await ledger.verify("c1")
    assert verdict.ok and verdict.unsealed == 0, verdict.line()
    assert verdict.checked == await store.last_seq("c1")
