"""Benchmark: dynamic overlap with senior escalation against a fixed overlap of 3.

Simulated experts answer binary label items through the real `Service` (`next_task`, then
`submit`, which records the answer and claims the expert's next card) on a fresh embedded Redis.
Each item has a hidden truth, one of two labels; an expert answers it with their accuracy, else
the other label. The population is fixed by issue 15: 150 standard experts at 0.80, 40 careless
ones at 0.60 (level standard too) and 10 seniors at 0.95; seed 7. Two arms in one run, on the
same items and truths: `overlap: 3`, and `overlap: {min: 2, max: 5}` with `settle.share: 0.66`
and `escalate_to: senior`. The final label of an item is the majority of its judgments (for the
dynamic arm, once settled or at max). Target: dynamic at least as accurate as fixed 3, with at
least 25% fewer judgments.

Time is simulated (a `SetClock`): experts ask for work in rounds, in a fresh random order each
round, and the clock moves `ROUND_S / experts` per request, so one round is `ROUND_S` seconds.
`escalate_wait_s` is one round: an item asked again waits until every senior has asked once,
then anyone may take it, so seniors see escalations first and nothing waits long.

    .venv/bin/python bench/escalation.py [--items 5000] [--wait 60] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from core.domain.answers import Answer
from core.domain.campaigns import CampaignSpec
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.hard_cases import Level
from core.domain.kinds import Label
from core.domain.timing import SetClock
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items

SEED = 7
LABELS = ["yes", "no"]
POPULATION: list[tuple[str, int, float, Level]] = [  # (name, how many, accuracy, level)
    ("standard", 150, 0.80, "standard"), ("careless", 40, 0.60, "standard"),
    ("senior", 10, 0.95, "senior")]
ROUND_S = 60  # one round of requests: every expert asks once, in a random order
ESCALATE_WAIT_S = ROUND_S  # seniors first for one round, then anyone (`--wait` to vary)
START_MS = 1_795_000_000_000
TARGET_SAVING = 0.25


@dataclass(frozen=True)
class Simulated:
    id: str
    group: str
    accuracy: float
    level: Level


@dataclass
class Arm:
    name: str
    items: int
    judgments: int
    per_item: float
    accuracy: float
    unfinished: int
    escalated: int
    by_group: dict[str, int]
    past_min_by_group: dict[str, int]
    rounds: int
    seconds: float


@dataclass
class Result:
    items: int
    experts: int
    seed: int
    escalate_wait_s: int
    fixed: Arm
    dynamic: Arm
    saving: float
    accuracy_gain: float
    target_saving: float = TARGET_SAVING
    meets: bool = field(init=False)

    def __post_init__(self) -> None:
        self.meets = self.saving >= self.target_saving and self.accuracy_gain >= 0


def population() -> list[Simulated]:
    return [Simulated(f"{group}-{n:03d}", group, accuracy, level)
            for group, count, accuracy, level in POPULATION for n in range(count)]


def spec_for(arm: str, wait_s: int) -> CampaignSpec:
    base: dict[str, Any] = {"id": f"bench-{arm}", "title": "Is the claim true?", "kind": "label",
                            "labels": LABELS, "time_limit_s": 3600}
    if arm == "fixed":
        return CampaignSpec(**base, overlap=3)
    return CampaignSpec(**base, overlap={"min": 2, "max": 5}, settle={"share": 0.66},
                        escalate_to="senior", escalate_wait_s=wait_s)


async def post(coordinator: Coordinator, spec: CampaignSpec, n_items: int,
               experts: list[Simulated]) -> None:
    items: Iterator[dict[str, object]] = (
        {"id": f"i{n:05d}", "prompt": f"Claim {n}: is it true?"} for n in range(n_items))
    spool = spool_items(spec, items)
    try:
        await coordinator.post_campaign(spec, spool)
    finally:
        spool.close()
    for expert in experts:
        await coordinator.add_expert(Expert(id=expert.id, name=expert.id, level=expert.level,
                                            daily_cap=10**9))


async def ask(service: Service, expert: Simulated, truths: dict[str, str],
              rng: random.Random, given: dict[str, list[str]]) -> bool:
    """One request for work: take the card (held or new) and answer it; False when none."""
    card = await service.next_task(expert.id)
    if not isinstance(card, Card):
        return False
    truth = truths[card.item]
    said = truth if rng.random() < expert.accuracy else next(x for x in LABELS if x != truth)
    outcome = await service.submit(Answer(expert=expert.id, lease=card.lease,
                                          decision=Label(labels=[said])))
    if outcome.status != "recorded":
        raise RuntimeError(f"{expert.id} on {card.item}: {outcome.reason}")
    given.setdefault(card.item, []).append(expert.group)
    return True


async def play(service: Service, clock: SetClock, experts: list[Simulated],
               truths: dict[str, str], rng: random.Random) -> tuple[int, dict[str, list[str]]]:
    """Rounds of requests until a whole round finds no work and none waits for a senior."""
    given: dict[str, list[str]] = {}
    tick = ROUND_S / len(experts)
    rounds = idle_rounds = 0
    while idle_rounds < 2:  # a second idle round: anything asked again has waited past the wait
        rounds += 1
        order = experts[:]
        rng.shuffle(order)
        worked = False
        for expert in order:
            worked = await ask(service, expert, truths, rng, given) or worked
            clock.advance(tick)
        idle_rounds = 0 if worked else idle_rounds + 1
    return rounds, given


async def final_labels(store: RedisStore, campaign: str) -> tuple[dict[str, list[str]], int]:
    """Every item's judgments from the log, and how many items were asked again."""
    judged: dict[str, list[str]] = {}
    escalated = 0
    after = 0
    while batch := await store.read_events(campaign, after, 5000):
        for stored in batch:
            event = json.loads(stored.body)
            if event["type"] == "answered":
                judged.setdefault(event["item"], []).extend(event["payload"]["decision"]["labels"])
            escalated += event["type"] == "escalated"
        after = batch[-1].seq
    return judged, escalated


async def run_arm(client: aioredis.Redis, arm: str, n_items: int, truths: dict[str, str],
                  experts: list[Simulated], wait_s: int) -> Arm:
    await client.flushall()
    store, clock = RedisStore(client), SetClock(START_MS)
    rng = random.Random(f"{SEED}-{arm}")
    service = Service(store.roles(), clock, rng=random.Random(rng.getrandbits(32)))
    spec = spec_for(arm, wait_s)
    await post(Coordinator(store.roles(), clock, service.catalog), spec, n_items, experts)
    began = time.perf_counter()
    rounds, given = await play(service, clock, experts, truths, rng)
    seconds = time.perf_counter() - began
    judged, escalated = await final_labels(store, spec.id or arm)
    return score(arm, truths, judged, given, escalated, spec, rounds, seconds)


def score(arm: str, truths: dict[str, str], judged: dict[str, list[str]],
          given: dict[str, list[str]], escalated: int, spec: CampaignSpec, rounds: int,
          seconds: float) -> Arm:
    """Accuracy of the majority label against the truth; an item never judged counts wrong.
    Binary labels with 3 judgments always have a majority; the dynamic arm stops at a majority
    of at least 0.66, so a tie can only be an item left unfinished."""
    right = 0
    for item, truth in truths.items():
        top = Counter(judged.get(item, [])).most_common(2)
        right += bool(top) and top[0][0] == truth and (len(top) == 1 or top[1][1] < top[0][1])
    total = sum(len(v) for v in judged.values())
    unfinished = sum(1 for item in truths if len(judged.get(item, [])) < spec.overlap_min)
    later = Counter(groups[i] for groups in given.values() for i in range(spec.overlap_min,
                                                                          len(groups)))
    return Arm(arm, len(truths), total, round(total / len(truths), 4),
               round(right / len(truths), 4), unfinished, escalated,
               dict(Counter(g for groups in given.values() for g in groups)), dict(later),
               rounds, round(seconds, 1))


async def measure(url: str, n_items: int, wait_s: int) -> Result:
    rng = random.Random(SEED)
    truths = {f"i{n:05d}": rng.choice(LABELS) for n in range(n_items)}
    experts = population()
    client = aioredis.from_url(url, decode_responses=True)
    try:
        fixed = await run_arm(client, "fixed", n_items, truths, experts, wait_s)
        dynamic = await run_arm(client, "dynamic", n_items, truths, experts, wait_s)
    finally:
        await client.aclose()
    return Result(n_items, len(experts), SEED, wait_s, fixed, dynamic,
                  round(1 - dynamic.judgments / fixed.judgments, 4),
                  round(dynamic.accuracy - fixed.accuracy, 4))


async def with_server(work: Path, job: Callable[[str], Awaitable[Result]]) -> Result:
    server = EmbeddedRedis(work / "redis")
    await server.start()
    try:
        return await job(server.url())
    finally:
        await server.stop()


def report(r: Result) -> None:
    print(f"{r.items:,} binary label items, {r.experts} experts "
          f"(150 at 0.80, 40 at 0.60, 10 seniors at 0.95), seed {r.seed}")
    for arm, label in ((r.fixed, "fixed overlap 3"),
                       (r.dynamic, f"dynamic 2..5, seniors first for {r.escalate_wait_s} s")):
        print(f"{label:>36}: {arm.judgments:,} judgments, {arm.per_item:.3f} per item, "
              f"accuracy {arm.accuracy:.2%}, {arm.escalated:,} asked again, "
              f"{arm.unfinished} unfinished ({arm.rounds} rounds, {arm.seconds:.0f} s)")
        print(f"{'':>36}  judgments by group {arm.by_group}"
              + (f"; past min by {arm.past_min_by_group}" if arm.past_min_by_group else ""))
    verdict = "meets" if r.meets else "MISSES"
    print(f"saving {r.saving:.1%} of the judgments (target >= {r.target_saving:.0%}), "
          f"accuracy {r.accuracy_gain:+.2%} against fixed 3 (target >= 0): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=(
        "Prints judgments per item and the accuracy of the final labels for a fixed overlap "
        "of 3 and for dynamic overlap 2..5 with senior escalation, and the saving in "
        f"judgments (target: >= {TARGET_SAVING:.0%} fewer at no loss of accuracy)."))
    parser.add_argument("--items", type=int, default=5000, help="binary label items (5000)")
    parser.add_argument("--wait", type=int, default=ESCALATE_WAIT_S,
                        help=f"escalate_wait_s of the dynamic arm ({ESCALATE_WAIT_S}: one round; "
                             "0 gives seniors no head start)")
    parser.add_argument("--json", action="store_true", help="print one machine-readable line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="el-bench-escalation-") as work:
        result = asyncio.run(with_server(Path(work), lambda url: measure(url, args.items,
                                                                         args.wait)))
    if args.json:
        print(json.dumps({"bench": "escalation", **asdict(result)}))
    else:
        report(result)


if __name__ == "__main__":
    main()
