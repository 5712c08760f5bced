"""Benchmark: drafting a campaign through the real DraftingLoop, against bare openai calls.

On a fresh embedded Redis, posts a pairwise campaign whose items each carry one given draft, so
each needs one model draft, and drafts it with `DraftingLoop.run_until_idle` and the real
`OpenAIDrafter` (openai's `AsyncOpenAI`) against the OpenAI emulator (tests/emulators/openai.py),
which answers every request after `--latency` seconds, at `max_concurrency` requests in flight.
Baseline in the same run: as many bare `AsyncOpenAI.chat.completions.create` calls, the same
request, by as many coroutines as the concurrency, to the same emulator. The concurrency bounds
both: 32 / 0.05 s = 640 requests/s. The emulator runs in a process of its own, so its work is
no one side's. Target: ours >= 80% of the bare calls' rate.

    .venv/bin/python bench/drafting.py [--items 10000] [--concurrency 32] [--latency 0.05] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

if __package__ in (None, ""):  # run as a script: the emulator lives in tests/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.models.openai_drafter import OpenAIDrafter  # noqa: E402
from adapters.redis.embedded import EmbeddedRedis  # noqa: E402
from adapters.redis.store import RedisStore  # noqa: E402
from bots.runtime import connect  # noqa: E402
from core.domain.campaigns import CampaignSpec  # noqa: E402
from core.domain.timing import SystemClock  # noqa: E402
from core.service.coordinator import Coordinator  # noqa: E402
from core.service.drafting import DraftingLoop  # noqa: E402
from core.service.staging import spool_items  # noqa: E402
from tests.emulators.openai import API_KEY, OpenAIEmulator  # noqa: E402

TARGET_RATIO = 0.8
CAMPAIGN = "bench-drafting"
MODEL = "model-a"
KEY_ENV = "BENCH_MODEL_API_KEY"
PARAMS = {"temperature": 0.7, "max_tokens": 256}
PROMPT = "Is it safe to take ibuprofen with warfarin, and what should I watch for? Case {n}."


@dataclass
class Side:
    requests: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_each(self) -> float:
        return self.cpu_seconds / self.requests * 1000

    @staticmethod
    def total(sides: list[Side]) -> Side:
        return Side(sum(s.requests for s in sides), sum(s.seconds for s in sides),
                    sum(s.cpu_seconds for s in sides))


@dataclass
class Result:
    items: int
    concurrency: int
    latency_s: float
    bound_per_s: float
    rounds: int
    drafts: int
    drafts_per_s: float
    cpu_ms_per_draft: float
    bare_calls: int
    bare_calls_per_s: float
    cpu_ms_per_bare_call: float
    ratio: float
    target: float


def serve_emulator(latency: float, port_out: Connection, stop_in: Connection) -> None:
    """The emulator's own process: it prints nothing, answers until told to stop."""
    async def serve() -> None:
        emulator = OpenAIEmulator(latency=latency)
        await emulator.start()
        port_out.send(emulator.port)
        await asyncio.get_running_loop().run_in_executor(None, stop_in.recv)
        await emulator.stop()

    asyncio.run(serve())


class EmulatorProcess:
    def __init__(self, latency: float) -> None:
        context = multiprocessing.get_context("spawn")
        port_in, port_out = context.Pipe(duplex=False)
        self._stop_in, self._stop_out = context.Pipe(duplex=False)
        self.process = context.Process(target=serve_emulator,
                                       args=(latency, port_out, self._stop_in), daemon=True)
        self.process.start()
        self.url = f"http://127.0.0.1:{port_in.recv()}/v1"

    def stop(self) -> None:
        self._stop_out.send(None)
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


def spec_of(campaign_id: str, url: str, concurrency: int) -> CampaignSpec:
    drafting = {"models": [{"name": MODEL, "base_url": url, "api_key_env": KEY_ENV,
                            "params": PARAMS, "max_concurrency": concurrency}]}
    return CampaignSpec.model_validate({"id": campaign_id, "title": "Which answer is better?",
                                        "kind": "pairwise", "drafting": drafting})


def items(count: int) -> list[dict[str, object]]:
    return [{"id": f"q{n:07d}", "prompt": PROMPT.format(n=n),
             "drafts": [{"text": f"A given answer to case {n}.", "model": "given"}]}
            for n in range(count)]


async def run_ours(client: Any, campaign_id: str, url: str, count: int, concurrency: int
                   ) -> Side:
    """Post a campaign of `count` items (not timed), then draft it all (timed)."""
    store = RedisStore(client)
    coordinator = Coordinator(store.roles(), SystemClock())
    spec = spec_of(campaign_id, url, concurrency)
    spool = spool_items(spec, items(count))
    try:
        await coordinator.post_campaign(spec, spool)
    finally:
        spool.close()
    drafter = OpenAIDrafter()
    loop = DraftingLoop(store, store, drafter, SystemClock())
    cpu, start = time.process_time(), time.perf_counter()
    await loop.run_until_idle()
    side = Side(count, time.perf_counter() - start, time.process_time() - cpu)
    await drafter.close()
    drafting = (await coordinator.status(campaign_id)).drafting
    if drafting is None or (drafting.drafted, drafting.pending) != (count, 0):
        raise RuntimeError(f"drafting ended with {drafting}, not {count} drafted")
    return side


async def run_bare(url: str, count: int, concurrency: int) -> Side:
    """The same request `count` times by `concurrency` coroutines on one client, as the
    drafter builds it (no retries by the client, logprobs asked for)."""
    client = AsyncOpenAI(base_url=url, api_key=API_KEY, max_retries=0, timeout=120)
    left = iter(range(count))

    async def caller() -> None:
        for n in left:
            messages = [{"role": "user", "content": PROMPT.format(n=n)}]
            await client.chat.completions.create(  # type: ignore[call-overload]
                model=MODEL, messages=messages, logprobs=True, **PARAMS)

    cpu, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    side = Side(count, time.perf_counter() - start, time.process_time() - cpu)
    await client.close()
    return side


async def measure(work: Path, url: str, count: int, concurrency: int, latency: float,
                  rounds: int) -> Result:
    """`rounds` turns each side, in the order ABBA..., so a machine busy with other work at one
    moment weighs on both sides alike; the figures are over all rounds."""
    await run_bare(url, concurrency * 4, concurrency)  # warm both processes' first requests
    server = EmbeddedRedis(work / "redis")
    await server.start()
    client = connect(server.url())  # the worker's own client: pooled, as it runs
    ours: list[Side] = []
    bare: list[Side] = []
    try:
        for turn in range(rounds):
            share = count // rounds + (turn < count % rounds)
            if turn % 2 == 0:
                bare.append(await run_bare(url, share, concurrency))
            ours.append(await run_ours(client, f"{CAMPAIGN}-{turn}", url, share, concurrency))
            if turn % 2 == 1:
                bare.append(await run_bare(url, share, concurrency))
    finally:
        await client.aclose()
        await server.stop()
    mine, theirs = Side.total(ours), Side.total(bare)
    return Result(count, concurrency, latency, round(concurrency / latency, 1), rounds,
                  mine.requests, round(mine.rate, 1), round(mine.cpu_ms_each, 3),
                  theirs.requests, round(theirs.rate, 1), round(theirs.cpu_ms_each, 3),
                  round(mine.rate / theirs.rate, 3), TARGET_RATIO)


def report(r: Result) -> None:
    verdict = "meets" if r.ratio >= r.target else "MISSES"
    print(f"{r.items:,} items, one model draft each; {r.concurrency} in flight, the emulator "
          f"answers after {r.latency_s * 1000:g} ms (bound {r.bound_per_s:,.0f}/s); "
          f"{r.rounds} rounds a side, alternating")
    print(f"ours  DraftingLoop + Redis: {r.drafts:,} drafts, {r.drafts_per_s:,.1f} drafts/s, "
          f"{r.cpu_ms_per_draft:.3f} ms CPU per draft")
    print(f"bare  AsyncOpenAI calls:    {r.bare_calls:,} calls, {r.bare_calls_per_s:,.1f} calls/s, "
          f"{r.cpu_ms_per_bare_call:.3f} ms CPU per call")
    print(f"ratio ours/bare: {r.ratio:.1%} ({verdict} target {r.target:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=(
        "Prints drafts/s of the DraftingLoop on a fresh embedded Redis and calls/s of bare "
        "AsyncOpenAI calls at the same concurrency against the same emulator, CPU time of this "
        f"process per request for both, and the ratio (target >= {TARGET_RATIO:.0%})."))
    parser.add_argument("--items", type=int, default=10_000, help="items to draft (10000)")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="the model's max_concurrency, and the bare coroutines (32)")
    parser.add_argument("--latency", type=float, default=0.05,
                        help="seconds the emulator takes per reply (0.05)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="turns each side takes, alternating, with --items shared out (4)")
    parser.add_argument("--json", action="store_true", help="print one machine-readable line")
    args = parser.parse_args()
    os.environ[KEY_ENV] = API_KEY  # the drafter reads the key the campaign names
    emulator = EmulatorProcess(args.latency)
    try:
        with tempfile.TemporaryDirectory(prefix="el-bench-drafting-") as work:
            result = asyncio.run(measure(Path(work), emulator.url, args.items, args.concurrency,
                                         args.latency, max(1, min(args.rounds, args.items))))
    finally:
        emulator.stop()
    if args.json:
        print(json.dumps({"bench": "drafting", **asdict(result)}))
    else:
        report(result)


if __name__ == "__main__":
    main()
