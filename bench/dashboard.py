"""Benchmark: how long the dashboard takes to build a campaign's panel at 100,000 answers.

On a fresh embedded Redis, posts a pairwise campaign (drafts from three models) with
answers/overlap items, lets concurrent simulated experts answer every slot through the service
on a test clock that moves on a little with each answer, then times the panel's parts (quality
with the bootstrapped leaderboard, pay, the chart figures) and the HTML, cold and again.
Baseline in the same run: reading the campaign's log once, which every part has to do.

    .venv/bin/python bench/dashboard.py [--answers 100000] [--overlap 3] [--experts 60]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from adapters.dashboard import render
from adapters.dashboard.figures import campaign_figures
from adapters.dashboard.panels import Panels
from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from core.domain.answers import Answer
from core.domain.campaigns import CampaignSpec
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import Choose
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.reports.pay import campaign_pay
from core.reports.quality import campaign_quality
from core.reports.records import task_records
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items

CAMPAIGN = "bench-dashboard"
MODELS = ("model-a", "model-b", "model-c")
STRENGTH = {"model-a": 0.62, "model-b": 0.5, "model-c": 0.38}


def make_item(rng: random.Random, number: int) -> dict[str, object]:
    pair = rng.sample(MODELS, 2)
    return {"id": f"q{number:07d}", "prompt": f"Question {number}: which answer is better?",
            "drafts": [{"text": f"Answer by {m} to {number}.", "model": m} for m in pair]}


async def seed(service: Service, clock: SetClock, items: int, overlap: int,
               experts: int) -> None:
    rng = random.Random(5)
    spec = CampaignSpec(id=CAMPAIGN, title="Which answer is better?", kind="pairwise",
                        overlap=overlap, time_limit_s=3600,
                        pay={"per_task": 0.4, "currency": "USD", "min_hourly": 30})
    spool = spool_items(spec, (make_item(rng, n) for n in range(items)))
    coordinator = Coordinator(service.stores, clock, service.catalog)
    try:
        await coordinator.post_campaign(spec, spool)
    finally:
        spool.close()
    ids = [f"expert-{n:03d}" for n in range(experts)]
    for expert_id in ids:
        await coordinator.add_expert(Expert(id=expert_id, name=expert_id, daily_cap=10**9))
    await asyncio.gather(*(answer_all(service, clock, e, random.Random(e)) for e in ids))


async def answer_all(service: Service, clock: SetClock, expert: str, rng: random.Random) -> None:
    task = await service.next_task(expert)
    while isinstance(task, Card):
        await service.opened(task.lease, expert)
        await asyncio.sleep(0)
        clock.advance(rng.expovariate(2.0))  # the shared clock moves ~0.5 s per answer
        a, b = (STRENGTH[d.text.split()[2]] for d in task.drafts)  # cards are blind: read text
        choice = "A" if rng.random() < a / (a + b) else "B"
        outcome = await service.submit(Answer(expert=expert, lease=task.lease,
                                              decision=Choose(choice=choice)))
        task = outcome.next


async def timed(label: str, job: object) -> float:
    started = time.perf_counter()
    await job  # type: ignore[misc]
    seconds = time.perf_counter() - started
    print(f"  {label:<34} {seconds:7.2f} s")
    return seconds


async def read_log(ledger: Ledger) -> None:
    async for _ in task_records(ledger, CAMPAIGN, with_items=False):
        pass


async def page(panels: Panels, label: str) -> None:
    began = time.perf_counter()
    html = render.page(await panels.all(), signed_in=True, built_seconds=0.0)
    print(f"  {label:<34} {time.perf_counter() - began:7.2f} s, {len(html) / 1024:.0f} KiB HTML")
    for task in list(panels.building.values()):
        await task


async def measure(url: str, answers: int, overlap: int, experts: int) -> None:
    client = aioredis.from_url(url, decode_responses=True)
    try:
        store = RedisStore(client)
        clock = SetClock(1_795_000_000_000)
        service = Service(store.roles(), clock)
        started = time.perf_counter()
        await seed(service, clock, answers // overlap, overlap, experts)
        coordinator = Coordinator(store.roles(), clock, service.catalog)
        status = await coordinator.status(CAMPAIGN)
        print(f"seeded {status.answers:,} answers on {status.items:,} items in "
              f"{time.perf_counter() - started:.0f} s")
        ledger = Ledger(store)
        campaign = await service.catalog.campaign(CAMPAIGN)
        await timed("baseline: read the log once", read_log(ledger))
        await timed("quality (200 bootstrap resamples)", campaign_quality(ledger, campaign))
        await timed("quality (no bootstrap)", campaign_quality(ledger, campaign, resamples=0))
        await timed("pay (the API's own read)", campaign_pay(ledger, campaign))
        await timed("chart figures and pay tallies", campaign_figures(ledger, CAMPAIGN))
        panels = Panels(coordinator, ledger, wait_s=3600)  # wait for the build, to time it
        for label in ("whole page, cold (panel built)", "whole page, log unchanged"):
            await page(panels, label)
        panels.wait_s = 2.0
        await service.stores.log.append_event(CAMPAIGN, '{"type": "note"}')  # the log grows
        panels.kept[CAMPAIGN].built_at -= 60
        await page(panels, "page while rebuilding (waits 2 s)")
    finally:
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--experts", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        server = EmbeddedRedis(Path(work) / "redis")
        await server.start()
        try:
            await measure(server.url(), args.answers, args.overlap, args.experts)
        finally:
            await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
