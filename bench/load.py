"""Benchmark: N simulated experts answering through POST /telegram/webhook of a web process.

The script starts a redis-server of its own (AOF everysec, as deployed), posts a pairwise
campaign, links the experts to Telegram users, and runs the Telegram emulator
(tests/emulators/telegram.py) as the Bot API. The web process runs in its own process: the
real app of `expertloop serve` (`bots.web.build_app`, every route and middleware) with the real
webhook and python-telegram-bot, its flood limits lifted (`--server app`, the default: real
Telegram allows a bot ~30 messages/s, which would cap a run at ~15 answers/s), or
`expertloop serve` itself with the product's limits (`--server serve`). From this process each
expert presses a button on its card, the webhook records the answer, edits the card and sends
the next one before it answers 200, and the expert presses again at once (saturated), then with
think time at half the saturated rate (paced, for latency at a load the server can carry).
Updates go over at most 40 connections at once, as Telegram sends them (setWebhook's
`max_connections`); latency is timed from the request's start on a connection.
Baseline in the same run: a bare aiohttp handler in its own process that checks the same secret
and parses the same JSON, driven by the same generator. Redis memory per answered task is the
`used_memory` growth over the saturated phase (log sealed before and after, as the worker
would) divided by the answers, and the part of it that is data (`used_memory_dataset`); a
pairwise answer carries no text to subtract.
Targets: 5,000 answers/s, p99 under 25 ms, under 1 KiB of Redis memory per answered task.
The processes it starts (redis-server, our web process, the bare one) are in load_processes.py.

    .venv/bin/python bench/load.py [--experts 500] [--seconds 20] [--connections 40]
                                   [--server app|serve] [--profile]  # cProfile of the web process
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: the emulator lives in tests/
    sys.path.insert(0, str(ROOT))

from adapters.redis.store import RedisStore  # noqa: E402
from adapters.telegram.webhook import SECRET_HEADER  # noqa: E402
from bench.load_processes import (  # noqa: E402
    SECRET,
    TOKEN,
    WebProcess,
    server_command,
    server_env,
    start_redis,
    wait_for_redis,
)
from core.campaigns import CampaignSpec  # noqa: E402
from core.coordinator import Coordinator  # noqa: E402
from core.experts import Expert  # noqa: E402
from core.ledger import Ledger  # noqa: E402
from core.service import Service  # noqa: E402
from core.staging import spool_items  # noqa: E402
from core.timing import SystemClock  # noqa: E402
from tests.cluster import free_ports  # noqa: E402
from tests.emulators.telegram import TelegramEmulator  # noqa: E402

CAMPAIGN = "bench-load"
TARGET_RATE, TARGET_P99_MS, TARGET_BYTES = 5000.0, 25.0, 1024.0
FIRST_USER = 10_000
QUIET_S = 3.0


# the load generator

class Emulator(TelegramEmulator):
    """The emulator, remembering each chat's newest card: its `last` sorts every message of
    every chat, which would make the generator, not the server, the bottleneck."""

    def __init__(self) -> None:
        super().__init__(token=TOKEN)
        self.cards: dict[int, dict[str, Any]] = {}

    async def _api_sendMessage(self, p: dict[str, Any]) -> Any:
        message = await super()._api_sendMessage(p)
        if "reply_markup" in message:
            self.cards[message["chat"]["id"]] = message
        return message


@dataclass
class Phase:
    name: str
    seconds: float
    latencies_ms: list[float]
    failures: int

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies_ms, n=100)[q - 1] if len(
            self.latencies_ms) > 1 else 0.0

    def line(self) -> str:
        return (f"{self.name:<34} {len(self.latencies_ms):>7,} answers  {self.rate:>8,.0f}/s  "
                f"p50 {self.percentile(50):7.1f} ms  p99 {self.percentile(99):7.1f} ms"
                + (f"  ({self.failures} non-200)" if self.failures else ""))


async def drive(http: aiohttp.ClientSession, url: str, emulator: Emulator,
                users: list[int], seconds: float, asks: list[int], connections: int,
                think_s: float = 0.0) -> tuple[list[float], int]:
    """Each user presses "A is better" on its newest card, waits for the reply, and (after an
    exponential think time when `think_s`) presses again until the time is up. A user left
    without a card sends /next (counted in `asks`). Telegram sends a bot's updates over at most
    `max_connections` (40 by default) connections at once, and so does this."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(connections)
    failures = 0
    stop_at = time.perf_counter() + seconds
    headers = {SECRET_HEADER: SECRET}

    async def expert(user: int) -> None:
        nonlocal failures
        rng = random.Random(user)
        if think_s:
            await asyncio.sleep(rng.uniform(0, think_s))
        while time.perf_counter() < stop_at:
            card = emulator.cards[user]
            data = emulator.buttons(card).get("A is better")
            if data is None:  # saved, but the next card is owed (its send failed): ask
                update = emulator.message_update(user, "/next")
                asks[0] += 1
            else:
                update = emulator.press_update(user, card, data)
            async with gate:  # Telegram's webhook connections; queueing for one is not latency
                began = time.perf_counter()
                async with http.post(url, json=update, headers=headers) as response:
                    await response.read()
            if response.status != 200:
                failures += 1
            elif data is not None:
                latencies.append((time.perf_counter() - began) * 1000)
            if think_s:
                await asyncio.sleep(rng.expovariate(1 / think_s))

    await asyncio.gather(*(expert(user) for user in users))
    return latencies, failures


async def post_campaign(coordinator: Coordinator, items: int, users: list[int]) -> None:
    spec = CampaignSpec(id=CAMPAIGN, title="Which answer is better?", kind="pairwise",
                        overlap=1, instructions="Pick the clearer answer.")
    drafts = [{"text": "Take it with food and water.", "model": "a", "model_version": "1"},
              {"text": "Ask your pharmacist first.", "model": "b", "model_version": "1"}]
    spool = spool_items(spec, ({"id": f"q{n}", "prompt": f"Question {n}: ibuprofen?",
                                "drafts": drafts} for n in range(items)))
    try:
        await coordinator.post_campaign(spec, spool)
    finally:
        spool.close()
    for user in users:
        await coordinator.add_expert(Expert(id=f"e{user}", name=f"Expert {user}",
                                            daily_cap=10**9))
        await coordinator.link(f"e{user}", f"telegram:{user}")


async def first_cards(http: aiohttp.ClientSession, url: str, emulator: Emulator,
                      users: list[int]) -> None:
    """Every expert sends /next, as after joining; the bot answers with a card."""
    gate = asyncio.Semaphore(50)

    async def ask(user: int) -> None:
        async with gate, http.post(url, json=emulator.message_update(user, "/next"),
                                   headers={SECRET_HEADER: SECRET}) as response:
            if response.status != 200:
                raise RuntimeError(f"/next for {user}: {response.status}")

    await asyncio.gather(*(ask(user) for user in users))


async def sealed_memory(store: RedisStore, ledger: Ledger) -> tuple[int, int]:
    """`used_memory` and `used_memory_dataset` with the log sealed, after a quiet moment in
    which Redis trims idle clients' buffers and flushes its AOF buffer (both count in
    `used_memory`, not in the dataset)."""
    await ledger.seal(CAMPAIGN)
    await asyncio.sleep(QUIET_S)
    memory = await store.client.info("memory")
    return int(memory["used_memory"]), int(memory["used_memory_dataset"])


async def doubled_answers(store: RedisStore) -> int:
    """(item, expert) pairs answered more than once: must be none."""
    seen: Counter[tuple[str, str]] = Counter()
    after = 0
    while events := await store.read_events(CAMPAIGN, after, 10_000):
        after = events[-1].seq
        for event in events:
            body = json.loads(event.body)
            if body["type"] == "answered":
                seen[(body["item"], body["expert"])] += 1
    return sum(1 for n in seen.values() if n > 1)


@dataclass
class Report:
    experts: int
    connections: int
    server: str
    saturated: Phase
    paced: Phase
    bare: Phase
    bytes_per_answer: float
    dataset_per_answer: float
    recorded: int
    acked: int
    doubled: int
    asks: int
    profile: str | None


async def measure(args: argparse.Namespace, work: Path) -> Report:
    redis_server, url = start_redis(work)
    client = aioredis.from_url(url, decode_responses=True)
    emulator = Emulator()
    try:
        await wait_for_redis(client)
        await emulator.start()
        return await _measure(args, work, url, client, emulator)
    finally:
        await emulator.stop()
        await client.aclose()
        redis_server.terminate()
        redis_server.wait(timeout=30)


async def _measure(args: argparse.Namespace, work: Path, url: str, client: aioredis.Redis,
                   emulator: Emulator) -> Report:
    store = RedisStore(client)
    service = Service(store, SystemClock())
    coordinator = Coordinator(store, service.clock, service.catalog)
    users = list(range(FIRST_USER, FIRST_USER + args.experts))
    await post_campaign(coordinator, args.items, users)
    profile = str(work / "web.prof") if args.profile else None
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        ours = await run_ours(args, http, url, emulator, users, coordinator, Ledger(store),
                              profile)
        (port,) = free_ports(1)
        env = server_env(url, emulator.base_url, port)
        async with WebProcess(server_command("bare", port, None), env, port) as hook:
            latencies, failures = await drive(http, hook, emulator, users, args.seconds, [0],
                                              args.connections)
    bare = Phase("bare aiohttp handler, saturated", args.seconds, latencies, failures)
    recorded = (await coordinator.status(CAMPAIGN)).answers
    acked = len(ours.saturated.latencies_ms) + len(ours.paced.latencies_ms)
    if recorded < acked:  # more recorded is allowed: Telegram resends a non-2xx, replayed
        raise RuntimeError(f"{recorded} answers recorded, {acked} acknowledged")
    return Report(args.experts, args.connections, args.server, ours.saturated, ours.paced, bare,
                  *ours.per_answer, recorded, acked, await doubled_answers(store), ours.asks,
                  _top(profile) if profile else None)


@dataclass
class Ours:
    saturated: Phase
    paced: Phase
    per_answer: tuple[float, float]  # bytes of used_memory, of used_memory_dataset
    asks: int


async def run_ours(args: argparse.Namespace, http: aiohttp.ClientSession, url: str,
                   emulator: Emulator, users: list[int], coordinator: Coordinator,
                   ledger: Ledger, profile: str | None) -> Ours:
    """Our web process: first cards, the saturated phase (measuring memory around it), then
    the paced phase."""
    (port,) = free_ports(1)
    env = server_env(url, emulator.base_url, port)
    if args.server == "serve":
        env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_SECRET=SECRET,
                   TELEGRAM_API_URL=emulator.base_url)
    asks = [0]
    async with WebProcess(server_command(args.server, port, profile), env, port) as hook:
        await first_cards(http, hook, emulator, users)
        answers_before = (await coordinator.status(CAMPAIGN)).answers
        memory_before = await sealed_memory(coordinator.store, ledger)
        latencies, failures = await drive(http, hook, emulator, users, args.seconds, asks,
                                          args.connections)
        saturated = Phase(f"ours ({args.server}), saturated", args.seconds, latencies, failures)
        answered = max((await coordinator.status(CAMPAIGN)).answers - answers_before, 1)
        memory_after = await sealed_memory(coordinator.store, ledger)
        think = args.experts / max(saturated.rate / 2, 1.0)
        latencies, failures = await drive(http, hook, emulator, users, args.seconds / 2, asks,
                                          args.connections, think)
    paced = Phase(f"ours, paced (think {think:.2f} s)", args.seconds / 2, latencies, failures)
    per_answer = ((memory_after[0] - memory_before[0]) / answered,
                  (memory_after[1] - memory_before[1]) / answered)
    return Ours(saturated, paced, per_answer, asks[0])


def _top(profile: str) -> str:
    out = Path(profile).with_suffix(".txt")
    with out.open("w") as stream:
        stats = pstats.Stats(profile, stream=stream)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
    return out.read_text()


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def print_report(r: Report) -> None:
    print(f"{r.experts} experts, Telegram webhook (secret header) over {r.connections} "
          f"connections, pairwise taps; web process: {r.server}")
    for phase in (r.saturated, r.paced, r.bare):
        print("  " + phase.line())
    s, p = r.saturated, r.paced
    print(f"  ours/bare: {s.rate / max(r.bare.rate, 1e-9):.1%}; "
          f"{r.recorded:,} answers recorded, {r.acked:,} acknowledged (200); "
          f"(item, expert) doubled: {r.doubled}; "
          f"cards owed after a failed send, asked again with /next: {r.asks}")
    print(f"  answers/s {s.rate:,.0f} ({verdict(s.rate >= TARGET_RATE)} {TARGET_RATE:,.0f}); "
          f"p99 paced {p.percentile(99):.1f} ms, saturated {s.percentile(99):.1f} ms "
          f"({verdict(p.percentile(99) < TARGET_P99_MS)} < {TARGET_P99_MS:.0f} ms at half load)")
    print(f"  Redis memory per answered task (sealed, no answer text): used_memory "
          f"{r.bytes_per_answer:,.0f} B, of it dataset {r.dataset_per_answer:,.0f} B "
          f"({verdict(r.bytes_per_answer < TARGET_BYTES)} < {TARGET_BYTES:,.0f} B)")
    if r.profile:
        print("\ncProfile of the web process (saturated and paced phases):\n" + r.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experts", type=int, default=500, help="simulated experts (500)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="saturated and bare phases (20); the paced phase is half")
    parser.add_argument("--connections", type=int, default=40,
                        help="webhook requests in flight at once, as Telegram's setWebhook "
                             "max_connections (40, Telegram's default; at most 100)")
    parser.add_argument("--items", type=int, default=60_000, help="items posted (60000)")
    parser.add_argument("--server", choices=["app", "serve"], default="app",
                        help="app: the serve app with flood limits lifted; serve: expertloop "
                             "serve with the product's Telegram limits")
    parser.add_argument("--profile", action="store_true",
                        help="run our web process under cProfile and print where time goes")
    args = parser.parse_args()
    if args.server == "serve" and args.profile:
        parser.error("--profile profiles --server app only")
    with tempfile.TemporaryDirectory(prefix="el-bench-load-") as work:
        print_report(asyncio.run(measure(args, Path(work))))


if __name__ == "__main__":
    main()
