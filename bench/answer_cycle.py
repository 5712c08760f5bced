"""Benchmark: the expert answer cycle (next task + submit) under concurrent experts.

On a fresh embedded Redis, posts a pairwise campaign, adds the experts, then runs one asyncio
task per expert for a fixed time: take the first task with `Service.next_task`, then answer
with `Service.submit`, which records the answer and hands back the next task, as a channel
does (`--ask-each-time` calls next_task before every submit instead).
Baseline in the same run: a bare Lua script doing one HSET + one XADD per call (registered with
register_script), called by as many concurrent tasks for the same time. Target: ours >= 30%.

    .venv/bin/python bench/answer_cycle.py [--experts 50] [--seconds 10] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import redis.asyncio as aioredis

from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from core.domain.answers import Answer
from core.domain.campaigns import CampaignSpec
from core.domain.cards import Card, NextTask
from core.domain.experts import Expert
from core.domain.kinds import Choose
from core.domain.timing import SystemClock
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items

TARGET_RATIO = 0.3
CAMPAIGN = "bench-answers"
BARE_LUA = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XADD', KEYS[2], '*', 'e', ARGV[3])
"""
FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " * 6


@dataclass
class Timed:
    count: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def percentile(self, q: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        return statistics.quantiles(self.latencies_ms, n=100)[q - 1]


@dataclass
class Result:
    experts: int
    seconds: float
    items: int
    follow_next: bool
    cycles: int
    cycles_per_s: float
    p50_ms: float
    p99_ms: float
    idle_experts: int
    bare_calls: int
    bare_calls_per_s: float
    bare_p50_ms: float
    bare_p99_ms: float
    ratio: float
    target: float


def make_item(rng: random.Random, number: int) -> dict[str, object]:
    def draft(model: str) -> dict[str, object]:
        start = rng.randrange(len(FILLER) - 300)
        return {"text": FILLER[start:start + 300], "model": model, "model_version": "2024-01",
                "params": {"temperature": round(rng.uniform(0, 1), 2)}}

    return {"id": f"q{number:07d}", "prompt": FILLER[:150],
            "drafts": [draft("model-a"), draft("model-b")]}


async def setup(service: Service, coordinator: Coordinator, experts: int, items: int) -> list[str]:
    """A pairwise campaign with one slot per item, and experts with no daily cap to hit."""
    rng = random.Random(11)
    spec = CampaignSpec(id=CAMPAIGN, title="Which answer is better?", kind="pairwise", overlap=1)
    spool = spool_items(spec, (make_item(rng, n) for n in range(items)))
    try:
        await coordinator.post_campaign(spec, spool)
    finally:
        spool.close()
    ids = [f"expert-{n:03d}" for n in range(experts)]
    for expert_id in ids:
        await coordinator.add_expert(Expert(id=expert_id, name=expert_id, daily_cap=10**9))
    return ids


async def expert_loop(service: Service, expert_id: str, deadline: float,
                      latencies: list[float], follow_next: bool = False) -> bool:
    """Take and answer tasks until the deadline; False when the expert ran out of tasks.
    With `follow_next`, answer the card that submit returned instead of asking again."""
    rng = random.Random(expert_id)
    handed: NextTask | None = None
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        card = handed if follow_next and handed is not None else await service.next_task(expert_id)
        if not isinstance(card, Card):
            return False
        choice = rng.choice(("A", "B", "tie"))
        outcome = await service.submit(Answer(expert=expert_id, lease=card.lease,
                                              decision=Choose(choice=choice)))
        if outcome.status != "recorded":
            raise RuntimeError(f"{expert_id}: {outcome.reason}")
        handed = outcome.next
        latencies.append((time.perf_counter() - start) * 1000)
    return True


async def run_ours(service: Service, experts: list[str], seconds: float,
                   follow_next: bool = False) -> tuple[Timed, int]:
    latencies: list[float] = []
    start = time.perf_counter()
    done = await asyncio.gather(*(expert_loop(service, e, start + seconds, latencies, follow_next)
                                  for e in experts))
    elapsed = time.perf_counter() - start
    return Timed(len(latencies), elapsed, latencies), done.count(False)


async def run_bare(client: aioredis.Redis, tasks: int, seconds: float) -> Timed:
    """The floor of one atomic answer: one script call writing a hash field and a log entry."""
    script = client.register_script(BARE_LUA)
    body = json.dumps({"type": "answered", "payload": {"text": FILLER[:500]}})
    latencies: list[float] = []

    async def caller(n: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            i += 1
            began = time.perf_counter()
            await script(keys=["bare:{b}:state", "bare:{b}:log"],
                         args=[f"t{n}.{i}", "answered", body])
            latencies.append((time.perf_counter() - began) * 1000)

    await script(keys=["bare:{b}:state", "bare:{b}:log"], args=["warm", "up", body])
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(caller(n) for n in range(tasks)))
    return Timed(len(latencies), time.perf_counter() - start, latencies)


async def measure(url: str, experts: int, seconds: float, items: int,
                  follow_next: bool = False) -> Result:
    client = aioredis.from_url(url, decode_responses=True)
    try:
        service = Service(RedisStore(client).roles(), SystemClock())
        coordinator = Coordinator(service.stores, service.clock, service.catalog)
        ids = await setup(service, coordinator, experts, items)
        ours, idle = await run_ours(service, ids, seconds, follow_next)
        answers = (await coordinator.status(CAMPAIGN)).answers
        if answers != ours.count:
            raise RuntimeError(f"{answers} answers stored, {ours.count} cycles counted")
        bare = await run_bare(client, experts, seconds)
    finally:
        await client.aclose()
    return Result(experts, seconds, items, follow_next, ours.count, round(ours.rate, 1),
                  round(ours.percentile(50), 2), round(ours.percentile(99), 2), idle,
                  bare.count, round(bare.rate, 1), round(bare.percentile(50), 2),
                  round(bare.percentile(99), 2), round(ours.rate / bare.rate, 3), TARGET_RATIO)


async def with_server(work: Path, job: Callable[[str], Awaitable[Result]]) -> Result:
    server = EmbeddedRedis(work / "redis")
    await server.start()
    try:
        return await job(server.url())
    finally:
        await server.stop()


def report(r: Result) -> None:
    verdict = "meets" if r.ratio >= r.target else "MISSES"
    print(f"experts: {r.experts}, {r.seconds:g} s each side, campaign of {r.items:,} items")
    loop = "submit, answering next" if r.follow_next else "next_task+submit"
    print(f"ours  {loop}: {r.cycles:,} cycles, {r.cycles_per_s:,.1f} cycles/s, "
          f"p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms per cycle"
          + (f" ({r.idle_experts} experts ran out of tasks)" if r.idle_experts else ""))
    print(f"bare  Lua HSET+XADD:    {r.bare_calls:,} calls, {r.bare_calls_per_s:,.1f} calls/s, "
          f"p50 {r.bare_p50_ms:.2f} ms, p99 {r.bare_p99_ms:.2f} ms per call")
    print(f"ratio ours/bare: {r.ratio:.1%} ({verdict} target {r.target:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=(
        "Measures cycles/s and p50/p99 latency of next_task + submit by concurrent simulated "
        "experts on a fresh embedded Redis, and calls/s of a bare one-HSET-one-XADD Lua script "
        f"by as many concurrent tasks; prints both and the ratio (target >= {TARGET_RATIO:.0%})."))
    parser.add_argument("--experts", type=int, default=50, help="concurrent experts (50)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each side (10)")
    parser.add_argument("--items", type=int, default=20_000,
                        help="items in the campaign, one answer each (20000)")
    parser.add_argument("--ask-each-time", action="store_true",
                        help="call next_task before every submit (it returns the held task) "
                             "instead of answering the card submit hands back in `next`, "
                             "as the channels do")
    parser.add_argument("--json", action="store_true", help="print one machine-readable line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="el-bench-answers-") as work:
        result = asyncio.run(with_server(Path(work), lambda url: measure(
            url, args.experts, args.seconds, args.items, not args.ask_each_time)))
    if args.json:
        print(json.dumps({"bench": "answer_cycle", **asdict(result)}))
    else:
        report(result)


if __name__ == "__main__":
    main()
