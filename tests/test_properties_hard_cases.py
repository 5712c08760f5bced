"""Issue 15's invariants of dynamic overlap, under many concurrent experts on the real (embedded)
Redis, through `Service`: no item gets more than `max` judgments and no expert answers an item
twice; an item is asked again only when its answers so far do not settle it, and one that
settled is never asked again; with `escalate_to`, an item asked again goes to senior enough
experts at once and to anyone else only after `escalate_wait_s`, and nothing waits forever.
The log is checked against a model of the rule written here, not against the store's code."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.redis.store import RedisStore
from core.domain.answers import Answer
from core.domain.campaigns import CampaignSpec
from core.domain.cards import Card, Idle
from core.domain.experts import Expert
from core.domain.hard_cases import Settle, settled
from core.domain.kinds import Choose, Decision, Label, NoneAcceptable, Rate, Skip
from core.domain.timing import SetClock
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items

NOW = 1_795_000_000_000
LABELS = ["a", "b", "c"]  # in sorted order, so a vote's label indexes are sorted too
RANKS = ("junior", "standard", "senior")
DRAFTS = [{"text": "yes", "model": "m1"}, {"text": "no", "model": "m2"}]
SLOW = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                  HealthCheck.too_slow])
Log = list[dict[str, Any]]


@dataclass
class World:
    service: Service
    coordinator: Coordinator
    store: RedisStore
    clock: SetClock
    spec: CampaignSpec
    levels: dict[str, str] = field(default_factory=dict)
    idle_at: list[tuple[str, int, int]] = field(default_factory=list)  # (expert, now, last seq)
    holding: dict[str, Card] = field(default_factory=dict)  # the card an answer handed back


async def open_world(client: aioredis.Redis, spec: CampaignSpec, n_items: int, n_gold: int,
                     levels: dict[str, str], seed: int) -> World:
    await client.flushall()
    store, clock = RedisStore(client), SetClock(NOW)
    service = Service(store.roles(), clock, rng=random.Random(seed))
    coordinator = Coordinator(store.roles(), clock, service.catalog)
    drafts = [] if spec.kind == "label" else DRAFTS[:2 if spec.kind == "pairwise" else 1]
    items: list[dict[str, Any]] = [{"id": f"q{i}", "prompt": "?", "drafts": drafts}
                                   for i in range(n_items)]
    items += [{"id": f"g{i}", "prompt": "?", "drafts": drafts, "gold": gold_of(spec)}
              for i in range(n_gold)]
    spool = spool_items(spec, items)
    await coordinator.post_campaign(spec, spool)
    spool.close()
    for expert, level in levels.items():
        await coordinator.add_expert(Expert(id=expert, name=expert, level=level))
    return World(service, coordinator, store, clock, spec, levels)


def gold_of(spec: CampaignSpec) -> object:
    return {"pairwise": 0, "label": "a", "rate": 3}[spec.kind]


def decision_for(kind: str, rng: random.Random, lean: float, skips: bool = True) -> Decision:
    """A random answer of the kind; `lean` is how often the expert picks the common one, so
    some items agree at once and others need more judgments."""
    common = rng.random() < lean
    if skips and rng.random() < 0.08:
        return Skip()
    if kind == "pairwise":
        if rng.random() < 0.05:
            return NoneAcceptable()
        return Choose(choice="A" if common else rng.choice(["B", "tie"]))
    if kind == "label":
        if rng.random() < 0.05:
            return NoneAcceptable()
        return Label(labels=["a"] if common else rng.choice([["b"], ["c"], ["b", "c"]]))
    if rng.random() < 0.05:
        return NoneAcceptable()
    return Rate(score=3 if common else rng.randint(1, 5))


async def work(world: World, expert: str, rng: random.Random, steps: int, lean: float,
               skips: bool = True) -> bool:
    """One expert answering tasks as a channel has them do: the card each answer hands back
    is the next one. Whether they answered any."""
    for step in range(steps):
        card = world.holding.pop(expert, None) or await world.service.next_task(expert)
        if not isinstance(card, Card):
            await idle(world, expert, card)
            return step > 0
        decision = decision_for(world.spec.kind, rng, lean, skips)
        outcome = await world.service.submit(Answer(expert=expert, lease=card.lease,
                                                    decision=decision))
        assert outcome.status == "recorded", outcome.reason
        if isinstance(outcome.next, Card):
            world.holding[expert] = outcome.next
        else:
            await idle(world, expert, outcome.next)
    return True


async def idle(world: World, expert: str, told: Idle | None) -> None:
    """Note when an expert was told there is no task, and how far the log was then."""
    if told is not None and told.reason == "no_tasks":
        world.idle_at.append((expert, world.clock.now_ms(), await world.store.last_seq("c1")))


async def logged(store: RedisStore) -> Log:
    return [{"seq": e.seq, **json.loads(e.body)} for e in await store.read_events("c1", 0, 10**6)]


def vote_of(spec: CampaignSpec, event: dict[str, Any]) -> str:
    """The vote an answer casts on its item, in the file's terms (issue 15's table)."""
    decision, order = event["payload"]["decision"], event["payload"]["order"]
    if decision["type"] == "none_acceptable":  # a rating's is its scale's lowest score
        return "1" if spec.kind == "rate" else "none"
    if spec.kind == "pairwise":
        choice = decision["choice"]
        return choice if choice == "tie" else str(order["AB".index(choice)])
    if spec.kind == "label":
        return "+".join(str(LABELS.index(label)) for label in sorted(decision["labels"]))
    return str(decision["score"])


def judged(log: Log) -> Log:
    return [e for e in log if e["type"] == "answered" and not e["payload"]["gold"]]


def check_judgments_per_item(log: Log, most: int) -> None:
    per_item = Counter(e["item"] for e in judged(log))
    assert max(per_item.values(), default=0) <= most, per_item.most_common(3)
    for type_ in ("assigned", "answered"):
        pairs = Counter((e["expert"], e["item"]) for e in log if e["type"] == type_)
        assert max(pairs.values(), default=1) == 1, (type_, pairs.most_common(3))


def check_escalations(log: Log, spec: CampaignSpec) -> set[str]:
    """Replay the settle rule over the answers in log order: each item is asked again exactly
    when its answers so far fill its target without settling it, below `max`."""
    rated = spec.kind == "rate"
    targets: dict[str, int] = {}
    votes: dict[str, list[tuple[int, str]]] = {}
    owed: dict[str, dict[str, Any]] = {}  # item -> the escalated event its last answer calls for
    closed: set[str] = set()
    for event in log:
        item = event.get("item") or ""
        if event["type"] == "escalated":
            assert owed.pop(item, None) == {"answers": event["payload"]["answers"],
                                            "votes": event["payload"]["votes"],
                                            "target": event["payload"]["target"]}, event
            tally = [vote for vote, n in event["payload"]["votes"].items() for _ in range(n)]
            assert not settled(tally, spec.settle, rated)[0], event
            continue
        if event["type"] != "answered" or event["payload"]["gold"]:
            continue
        assert item not in closed and item not in owed, f"{item} answered after it closed"
        votes.setdefault(item, []).append((event["seq"], vote_of(spec, event)))
        target = targets.setdefault(item, spec.overlap_min)
        if len(votes[item]) < target:
            continue
        cast = [vote for _, vote in votes[item]]
        if settled(cast, spec.settle, rated)[0] or target == spec.overlap_max:
            closed.add(item)
            continue
        targets[item] = target + 1
        owed[item] = {"answers": [seq for seq, _ in votes[item]], "votes": dict(Counter(cast)),
                      "target": target + 1}
    assert not owed, f"asked again without an escalated event: {owed}"
    return closed  # the items settled, or at their most


@st.composite
def hard_campaigns(draw: st.DrawFn) -> CampaignSpec:
    kind = draw(st.sampled_from(["pairwise", "label", "rate"]))
    least = draw(st.sampled_from([1, 2, 2, 3]))  # one answer always settles: mostly more
    most = least + draw(st.integers(0, 3))
    options: dict[str, Any] = {"labels": LABELS, "multi": True} if kind == "label" else {}
    return CampaignSpec(
        id="c1", title="Hard?", kind=kind, overlap={"min": least, "max": most},
        settle=Settle(share=draw(st.sampled_from([0.5, 0.6, 0.66, 0.67, 0.75, 1.0])),
                      max_spread=draw(st.integers(0, 2))),
        escalate_to=draw(st.sampled_from([None, "senior"])), escalate_wait_s=600,
        gold_rate=draw(st.sampled_from([0.0, 0.3])), time_limit_s=3600, **options)


@settings(max_examples=60, **SLOW)  # type: ignore[arg-type]
@given(spec=hard_campaigns(), rnd=st.randoms(use_true_random=False),
       n_items=st.integers(1, 12), n_gold=st.integers(0, 2), n_experts=st.integers(4, 30),
       lean=st.sampled_from([0.3, 0.6, 0.9]))
async def test_no_item_over_max_and_asked_again_only_while_unsettled(
        client: aioredis.Redis, spec: CampaignSpec, rnd: random.Random, n_items: int,
        n_gold: int, n_experts: int, lean: float) -> None:
    levels = {f"e{n}": rnd.choice(RANKS) for n in range(n_experts)}
    # Draw every choice before making coroutines: Hypothesis may stop an example mid-draw.
    plans = [(e, random.Random(rnd.getrandbits(32)), rnd.randint(1, 10)) for e in levels]
    world = await open_world(client, spec, n_items, n_gold, levels, rnd.getrandbits(32))
    await asyncio.gather(*(work(world, e, rng, steps, lean) for e, rng, steps in plans))
    log = await logged(world.store)

    check_judgments_per_item(log, spec.overlap_max)
    check_escalations(log, spec)


def at_ms(event: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(event["at"].replace("Z", "+00:00")).timestamp() * 1000)


def check_senior_first(world: World, log: Log) -> dict[str, int]:
    """Replay the log: a slot asked again is taken by a senior enough expert, or by anyone once
    it waited `escalate_wait_s`; no expert was handed other work, or nothing, while such a slot
    was open to them. Returns the slots still waiting at the end."""
    spec, wait_ms = world.spec, world.spec.escalate_wait_s * 1000
    first = RANKS.index(spec.escalate_to or "junior")
    waiting: dict[str, int] = {}  # item -> since when its slot asked again waits
    asked_again: dict[str, int] = {}  # item -> when it was last asked again
    on_slot: set[str] = set()  # leases on a slot asked again: a skip gives it back
    seen: dict[str, set[str]] = {}

    def open_to(expert: str, now: int) -> list[str]:
        senior = RANKS.index(world.levels[expert]) >= first
        return [item for item, since in waiting.items()
                if item not in seen.get(expert, set()) and (senior or now >= since + wait_ms)]

    idle = sorted(world.idle_at, key=lambda x: x[2])
    for event in log:
        while idle and idle[0][2] < event["seq"]:
            expert, now, _ = idle.pop(0)
            assert open_to(expert, now) == [], f"{expert} idle while an item waited for them"
        item = event.get("item") or ""
        if event["type"] == "escalated":
            waiting[item] = asked_again[item] = at_ms(event)
        elif event["type"] == "skipped" and event["lease"] in on_slot:
            waiting[item] = asked_again[item]
        elif event["type"] == "assigned":
            expert = event["expert"]
            now = event["payload"]["expires_at"] - spec.time_limit_s * 1000
            if item in waiting:
                assert item in open_to(expert, now), (expert, world.levels[expert], item)
                del waiting[item]
                on_slot.add(event["lease"])
            else:
                assert open_to(expert, now) == [], f"{expert} got {item} while one waited"
            seen.setdefault(expert, set()).add(item)
    for expert, now, _ in idle:
        assert open_to(expert, now) == [], f"{expert} idle while an item waited for them"
    return waiting


async def finish(world: World, main: list[str], below: list[str], rng: random.Random) -> None:
    """The experts who worked so far answer the cards they hold and stop; then experts below
    the escalation level take whatever is left, the clock moving past the wait each round."""
    for expert in main:
        await world.service.set_paused(expert, True)
        if expert in world.holding:
            await work(world, expert, rng, 1, 0.5, skips=False)
    for _ in range(20):
        world.clock.advance(world.spec.escalate_wait_s)
        found = [await work(world, expert, rng, 10, 0.5, skips=False) for expert in below]
        if not any(found) and not world.holding:
            return


@settings(max_examples=60, **SLOW)  # type: ignore[arg-type]
@given(rnd=st.randoms(use_true_random=False), n_items=st.integers(1, 6),
       least=st.integers(2, 3), extra=st.integers(1, 2), wait_s=st.integers(1, 1200),
       to=st.sampled_from(["standard", "senior"]), n_experts=st.integers(3, 12),
       steps=st.integers(5, 40))
async def test_asked_again_goes_to_seniors_at_once_and_to_others_after_the_wait(
        client: aioredis.Redis, rnd: random.Random, n_items: int, least: int, extra: int,
        wait_s: int, to: str, n_experts: int, steps: int) -> None:
    spec = CampaignSpec(id="c1", title="Hard?", kind="label", labels=LABELS, multi=True,
                        overlap={"min": least, "max": least + extra},
                        escalate_to=to, escalate_wait_s=wait_s,
                        time_limit_s=86_400)  # the clock moves less than that: no expiries
    main = [f"e{n}" for n in range(n_experts)]
    below = [f"late{n}" for n in range(least + extra + 1)]  # enough to finish any item alone
    levels = {expert: rnd.choice(RANKS) for expert in main} | {e: "junior" for e in below}
    moves = [(rnd.choice(main), rnd.uniform(0, wait_s * 1.5)) for _ in range(steps)]
    world = await open_world(client, spec, n_items, 0, levels, rnd.getrandbits(32))
    answers = random.Random(rnd.getrandbits(32))
    for expert, pause in moves:  # one at a time, so each claim sees the clock it is checked at
        await work(world, expert, answers, 1, 0.5)
        world.clock.advance(pause)
    await finish(world, main, below, answers)
    log = await logged(world.store)

    assert check_senior_first(world, log) == {}, "an item asked again was left waiting"
    assert check_escalations(log, spec) == {f"q{i}" for i in range(n_items)}, "not all settled"


async def test_a_none_acceptable_on_a_rate_item_with_room_to_grow_is_recorded(
        client: aioredis.Redis) -> None:
    """record.lua's spread rule reads every vote of a rate item as a score; before 487a826 a
    "none" vote stopped the script with a Lua error after it had written the answer."""
    spec = CampaignSpec(id="c1", title="How good?", kind="rate",
                        overlap={"min": 2, "max": 3})
    world = await open_world(client, spec, 1, 0, {"ann": "standard", "bob": "standard"}, 1)
    said: list[Decision] = [Rate(score=2), NoneAcceptable(note="both wrong")]
    for expert, decision in zip(["ann", "bob"], said, strict=True):
        card = await world.service.next_task(expert)
        assert isinstance(card, Card)
        outcome = await world.service.submit(Answer(expert=expert, lease=card.lease,
                                                    decision=decision))
        assert outcome.status == "recorded", outcome.reason

    assert len(judged(await logged(world.store))) == 2
    assert (await world.coordinator.status("c1")).answers == 2
