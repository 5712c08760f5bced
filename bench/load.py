"""Benchmark: N simulated experts answering through POST /telegram/webhook, as deployed: a web
process that keeps each update in the Redis inbox and says 200, and worker processes that
handle the kept updates.

The script starts a redis-server of its own (AOF everysec, noeviction, as deployed), posts a
pairwise campaign, links the experts to Telegram users, and runs the Telegram emulator
(tests/emulators/telegram.py) as the Bot API, in this process with the load generator. In
processes of their own (load_processes.py): the web process, the real app of `expertloop serve`
(`bots.web.build_app`, every route and middleware, the real webhook), and `--workers` worker
processes, each running the Telegram share of `expertloop worker` (the inbox drain handing kept
updates to python-telegram-bot: record the answer, answer the callback, edit the card, send the
next card; and the worker's tick: expire leases, seal the log) with the flood limits lifted
(`--server app`, the default: real Telegram allows a bot ~30 messages/s, which would cap a run
at ~15 answers/s). With `--server serve` they are `expertloop serve` and `expertloop worker`
themselves, with the product's limits.
Each expert presses "A is better" on its newest card and waits for its next card to reach the
emulator; then presses again at once (saturated), or after an exponential think time set for
half the saturated rate (paced). Updates go over at most 40 connections at once, as Telegram
sends them (setWebhook's `max_connections`). Printed per phase:
- answers/s: presses whose next card reached the emulator, per second from the phase's first
  press to its last card (presses stop at --seconds; those in flight are waited for);
- felt latency (p50/p99): from the press (waiting for a free connection included) to the next
  card at the emulator, what the expert feels;
- webhook latency (p50/p99): from the request's start on a connection to its 200;
- for the saturated phase, the CPU seconds each part used (this process: the generator and the
  emulator; the web process; the workers; redis-server) and per answer, from Linux's /proc:
  the machine's 2 cores are shared by all of them (and by whatever else runs).
Baseline in the same run: a bare aiohttp handler in its own process that checks the same secret
and parses the same JSON (and keeps nothing), driven by the same generator without waiting for
cards: its requests/s and latency to the 200.
Redis memory per answered task: `used_memory` growth over the saturated phase (inbox settled,
log sealed before and after, as the worker does) divided by the answers recorded in it, and
the part of it that is data (`used_memory_dataset`); a pairwise answer carries no text. After
each phase the inbox must be empty: what was left in it, or set aside in its dead list
(`el:{inbox:telegram}:dead`), is printed. Checks: every card that came follows a recorded
answer, and no (item, expert) is answered twice.
Targets: 5,000 answers/s, p99 under 25 ms, under 1 KiB of Redis memory per answered task.

    .venv/bin/python bench/load.py [--experts 500] [--seconds 20] [--connections 40]
                                   [--workers 1] [--server app|serve]
                                   [--profile]  # cProfile of the first worker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: the emulator lives in tests/
    sys.path.insert(0, str(ROOT))

from adapters.redis import keys  # noqa: E402
from adapters.redis.store import RedisStore  # noqa: E402
from adapters.telegram.app import CHANNEL  # noqa: E402
from adapters.telegram.webhook import SECRET_HEADER  # noqa: E402
from bench.load_processes import (  # noqa: E402
    SECRET,
    TOKEN,
    WebProcess,
    Workers,
    cpu_s,
    server_command,
    server_env,
    start_redis,
    wait_for_redis,
    worker_command,
)
from core.domain.campaigns import CampaignSpec  # noqa: E402
from core.domain.experts import Expert  # noqa: E402
from core.domain.timing import SystemClock  # noqa: E402
from core.provenance.ledger import Ledger  # noqa: E402
from core.service.coordinator import Coordinator  # noqa: E402
from core.service.inbox import settled  # noqa: E402
from core.service.service import Service  # noqa: E402
from core.service.staging import spool_items  # noqa: E402
from tests.cluster import free_ports  # noqa: E402
from tests.emulators.telegram import TelegramEmulator  # noqa: E402

CAMPAIGN = "bench-load"
TARGET_RATE, TARGET_P99_MS, TARGET_BYTES = 5000.0, 25.0, 1024.0
FIRST_USER = 10_000
QUIET_S = 3.0
CARD_WAIT_S = 60.0  # a next card later than this is counted lost (the expert asks /next)
SETTLE_S = 120.0  # for the inbox to empty after a phase


# the load generator

class Emulator(TelegramEmulator):
    """The emulator, waking the expert whose next card it has just taken."""

    def __init__(self) -> None:
        super().__init__(token=TOKEN)
        self.arrivals: dict[int, asyncio.Event] = {}

    def expect_card(self, chat: int) -> asyncio.Event:
        self.arrivals[chat] = asyncio.Event()
        return self.arrivals[chat]

    async def _api_sendMessage(self, p: dict[str, Any]) -> Any:
        message = await super()._api_sendMessage(p)
        if "reply_markup" in message and (came := self.arrivals.get(message["chat"]["id"])):
            came.set()
        return message


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else 0.0


@dataclass
class Phase:
    name: str
    seconds: float = 0.0  # first press to last card (or last 200, when no card is awaited)
    felt_ms: list[float] = field(default_factory=list)  # press -> next card at the emulator
    hook_ms: list[float] = field(default_factory=list)  # request start -> 200
    failures: int = 0  # non-200
    lost: int = 0  # 200, but no next card within CARD_WAIT_S
    asks: int = 0  # /next sent by an expert left without a card

    @property
    def rate(self) -> float:
        return len(self.felt_ms) / max(self.seconds, 1e-9)

    def line(self) -> str:
        troubles = [f"{n} {what}" for n, what in ((self.failures, "non-200"),
                                                  (self.lost, "cards lost"),
                                                  (self.asks, "/next asked")) if n]
        return (f"{self.name:<32} {len(self.felt_ms):>7,} answers {self.rate:>7,.0f}/s  "
                f"felt p50 {percentile(self.felt_ms, 50):6.1f} p99 "
                f"{percentile(self.felt_ms, 99):7.1f} ms  webhook p50 "
                f"{percentile(self.hook_ms, 50):5.1f} p99 {percentile(self.hook_ms, 99):6.1f} ms"
                + (f"  ({', '.join(troubles)})" if troubles else ""))


@dataclass
class Generator:
    """Plays Telegram and the experts: posts presses to a webhook, over at most `connections`
    at once as Telegram does, and (`cards`) waits for each expert's next card."""

    http: aiohttp.ClientSession
    url: str
    emulator: Emulator
    connections: int
    cards: bool = True

    async def drive(self, phase: Phase, users: list[int], seconds: float,
                    think_s: float = 0.0) -> Phase:
        gate = asyncio.Semaphore(self.connections)
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(*(self.expert(phase, gate, user, stop_at, think_s)
                               for user in users))
        phase.seconds = time.perf_counter() - started
        return phase

    async def expert(self, phase: Phase, gate: asyncio.Semaphore, user: int, stop_at: float,
                     think_s: float) -> None:
        """Presses "A is better" on its newest card until the time is up; left without a card
        (saved, but the next one owed), it sends /next."""
        rng = random.Random(user)
        pause = rng.expovariate(1 / think_s) if think_s else 0.0  # a Poisson process from t=0
        while time.perf_counter() + pause < stop_at:  # no press, nor a think, past the end
            await asyncio.sleep(pause)
            card = self.emulator.newest_card[user]
            data = self.emulator.buttons(card).get("A is better")
            if data is None:
                phase.asks += 1
                update = self.emulator.message_update(user, "/next")
            else:
                update = self.emulator.press_update(user, card, data)
            await self.press(phase, gate, user, update, answer=data is not None)
            pause = rng.expovariate(1 / think_s) if think_s else 0.0

    async def press(self, phase: Phase, gate: asyncio.Semaphore, user: int,
                    update: dict[str, Any], answer: bool) -> None:
        came = self.emulator.expect_card(user) if self.cards else None
        pressed = time.perf_counter()
        async with gate:  # one of Telegram's webhook connections
            began = time.perf_counter()
            async with self.http.post(self.url, json=update,
                                      headers={SECRET_HEADER: SECRET}) as response:
                await response.read()
            acked = time.perf_counter()
        if response.status != 200:
            phase.failures += 1
            return
        phase.hook_ms.append((acked - began) * 1000)
        if came is not None:
            try:
                await asyncio.wait_for(came.wait(), CARD_WAIT_S)
            except TimeoutError:
                phase.lost += 1
                return
        if answer:
            phase.felt_ms.append((time.perf_counter() - pressed) * 1000)

    async def first_cards(self, users: list[int], workers: Workers) -> None:
        """Every expert sends /next, as after joining; waits until a worker sent each a card."""
        phase = Phase("first cards")
        gate = asyncio.Semaphore(self.connections)
        ask = [self.press(phase, gate, user, self.emulator.message_update(user, "/next"),
                          answer=True) for user in users]
        pressing = asyncio.gather(*ask)
        while not pressing.done():
            workers.check()
            await asyncio.wait([pressing], timeout=1)
        await pressing
        if phase.failures or phase.lost:
            raise RuntimeError(f"first cards: {phase.failures} non-200, {phase.lost} lost")


# the campaign and what Redis holds

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


@dataclass
class Inbox:
    """What a phase left in the Telegram inbox: must be nothing."""

    left: int = 0
    dead: int = 0

    def __str__(self) -> str:
        return f"inbox left {self.left}, dead list {self.dead}"


async def settle_inbox(store: RedisStore, workers: Workers) -> Inbox:
    """Wait (up to SETTLE_S) until the workers handled every kept update, then look."""
    waiting = asyncio.ensure_future(settled(store, CHANNEL))
    deadline = time.monotonic() + SETTLE_S
    while not waiting.done() and time.monotonic() < deadline:
        workers.check()
        await asyncio.wait([waiting], timeout=1)
    waiting.cancel()
    return Inbox(await store.inbox_size(CHANNEL),
                 int(await store.client.llen(keys.inbox_key(CHANNEL, "dead"))))


async def sealed_memory(store: RedisStore, ledger: Ledger) -> tuple[int, int]:
    """`used_memory` and `used_memory_dataset` with the log sealed, after a quiet moment in
    which Redis trims idle clients' buffers and flushes its AOF buffer (both count in
    `used_memory`, not in the dataset)."""
    await ledger.seal(CAMPAIGN)
    await asyncio.sleep(QUIET_S)
    memory = await store.client.info("memory")
    return int(memory["used_memory"]), int(memory["used_memory_dataset"])


async def marker_bytes(store: RedisStore) -> int:
    """`MEMORY USAGE` of one update's resend marker (kept `update_ttl_s`, an hour)."""
    async for key in store.client.scan_iter(match=keys.inbox_key(CHANNEL, "seen:*"),
                                            count=1000):
        return int(await store.client.memory_usage(key) or 0)
    return 0


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


# the run

@dataclass
class Report:
    args: argparse.Namespace
    saturated: Phase
    paced: Phase
    bare: Phase
    per_answer: tuple[float, float]  # bytes of used_memory, of used_memory_dataset
    inboxes: tuple[Inbox, Inbox]  # after the saturated phase, after the paced one
    cpu: dict[str, float]  # CPU seconds of each part in the saturated phase
    marker: int
    recorded: int
    doubled: int
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
    service = Service(store.roles(), SystemClock())
    coordinator = Coordinator(store.roles(), service.clock, service.catalog)
    users = list(range(FIRST_USER, FIRST_USER + args.experts))
    await post_campaign(coordinator, args.items, users)
    profile = str(work / "worker.prof") if args.profile else None
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        ours = await run_ours(args, http, url, emulator, users, store, coordinator, profile)
        (port,) = free_ports(1)
        env = server_env(url, emulator.base_url, port, "app")
        async with WebProcess(server_command("bare", port, None), env, port) as hook:
            bare = await Generator(http, hook, emulator, args.connections, cards=False).drive(
                Phase("bare aiohttp handler, saturated"), users, args.seconds)
    bare.felt_ms = bare.hook_ms  # no card to wait for: a 200 is all it gives
    answered = len(ours.saturated.felt_ms) + len(ours.paced.felt_ms)
    recorded = (await coordinator.status(CAMPAIGN)).answers - ours.answers_before
    if recorded < answered:  # more is allowed: a press whose card was lost was still recorded
        raise RuntimeError(f"{recorded} answers recorded, {answered} next cards came")
    return Report(args, ours.saturated, ours.paced, bare, ours.per_answer, ours.inboxes,
                  ours.cpu,
                  await marker_bytes(store), recorded, await doubled_answers(store),
                  _top(profile) if profile else None)


@dataclass
class Ours:
    saturated: Phase
    paced: Phase
    per_answer: tuple[float, float]
    inboxes: tuple[Inbox, Inbox]
    answers_before: int
    cpu: dict[str, float]


async def run_ours(args: argparse.Namespace, http: aiohttp.ClientSession, url: str,
                   emulator: Emulator, users: list[int], store: RedisStore,
                   coordinator: Coordinator, profile: str | None) -> Ours:
    """Our web process and workers: first cards, the saturated phase (memory measured around
    it), then the paced phase."""
    ledger = Ledger(store)
    (port,) = free_ports(1)
    env = server_env(url, emulator.base_url, port, args.server)
    commands = [worker_command(args.server, profile if n == 0 else None)
                for n in range(args.workers)]
    web = WebProcess(server_command(args.server, port, None), env, port)
    async with Workers(commands, env) as workers, web as hook:
        generator = Generator(http, hook, emulator, args.connections)
        await generator.first_cards(users, workers)
        await settle_inbox(store, workers)
        answers_before = (await coordinator.status(CAMPAIGN)).answers
        memory_before = await sealed_memory(store, ledger)
        parts = await cpu_parts(store, web, workers)
        cpu_before = cpu_used(parts)
        saturated = await generator.drive(Phase(f"ours ({args.server}), saturated"), users,
                                          args.seconds)
        cpu = {part: used - cpu_before[part] for part, used in cpu_used(parts).items()}
        after_saturated = await settle_inbox(store, workers)
        answered = max((await coordinator.status(CAMPAIGN)).answers - answers_before, 1)
        memory_after = await sealed_memory(store, ledger)
        think = args.experts / max(saturated.rate / 2, 1.0)
        paced = await generator.drive(Phase(f"ours, paced (think {think:.2f} s)"), users,
                                      args.seconds / 2, think)
        after_paced = await settle_inbox(store, workers)
    per_answer = ((memory_after[0] - memory_before[0]) / answered,
                  (memory_after[1] - memory_before[1]) / answered)
    return Ours(saturated, paced, per_answer, (after_saturated, after_paced), answers_before,
                cpu)


async def cpu_parts(store: RedisStore, web: WebProcess, workers: Workers
                    ) -> dict[str, list[int]]:
    """Each part of the run and its processes, to tell which of them the 2 cores went to."""
    redis_pid = int((await store.client.info("server"))["process_id"])
    return {"generator and emulator": [os.getpid()], "web": [web.pid],
            "worker(s)": [process.pid for process in workers.processes],
            "redis-server": [redis_pid]}


def cpu_used(parts: dict[str, list[int]]) -> dict[str, float]:
    return {part: sum(cpu_s(pid) for pid in pids) for part, pids in parts.items()}


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
    a, s, p = r.args, r.saturated, r.paced
    print(f"{a.experts} experts, Telegram webhook (secret header) over {a.connections} "
          f"connections, pairwise taps; web process and {a.workers} worker(s): {a.server}")
    for phase in (s, p, r.bare):
        print("  " + phase.line())
    print(f"  ours/bare: {s.rate / max(r.bare.rate, 1e-9):.1%}; {r.recorded:,} answers "
          f"recorded, {len(s.felt_ms) + len(p.felt_ms):,} next cards came; "
          f"(item, expert) doubled: {r.doubled}")
    print(f"  after the saturated phase: {r.inboxes[0]}; after the paced phase: "
          f"{r.inboxes[1]}")
    paced_p99 = percentile(p.felt_ms, 99)
    print(f"  answers/s {s.rate:,.0f} ({verdict(s.rate >= TARGET_RATE)} {TARGET_RATE:,.0f}); "
          f"felt p99 paced {paced_p99:.1f} ms, saturated {percentile(s.felt_ms, 99):.1f} ms "
          f"({verdict(paced_p99 < TARGET_P99_MS)} < {TARGET_P99_MS:.0f} ms at half load)")
    print(f"  Redis memory per answered task (sealed, no answer text): used_memory "
          f"{r.per_answer[0]:,.0f} B, of it dataset {r.per_answer[1]:,.0f} B "
          f"({verdict(r.per_answer[0] < TARGET_BYTES)} < {TARGET_BYTES:,.0f} B); "
          f"one update's resend marker (kept an hour): {r.marker} B")
    answers = max(len(s.felt_ms), 1)
    print(f"  CPU in the saturated phase ({s.seconds:.1f} s on 2 cores): " + ", ".join(
        f"{part} {used:.1f} s ({1000 * used / answers:.1f} ms per answer)"
        for part, used in r.cpu.items()))
    if r.profile:
        print("\ncProfile of the first worker (all phases):\n" + r.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experts", type=int, default=500, help="simulated experts (500)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="saturated and bare phases (20); the paced phase is half")
    parser.add_argument("--connections", type=int, default=40,
                        help="webhook requests in flight at once, as Telegram's setWebhook "
                             "max_connections (40, Telegram's default; at most 100)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes handling the kept updates (1)")
    parser.add_argument("--items", type=int, default=60_000, help="items posted (60000)")
    parser.add_argument("--server", choices=["app", "serve"], default="app",
                        help="app: the serve app and the worker's Telegram share with flood "
                             "limits lifted; serve: expertloop serve and expertloop worker with "
                             "the product's Telegram limits")
    parser.add_argument("--profile", action="store_true",
                        help="run the first worker under cProfile and print where time goes")
    args = parser.parse_args()
    if args.server == "serve" and args.profile:
        parser.error("--profile profiles --server app only")
    if args.workers < 1:
        parser.error("--workers must be at least 1: nothing else handles a kept update")
    with tempfile.TemporaryDirectory(prefix="el-bench-load-") as work:
        print_report(asyncio.run(measure(args, Path(work))))


if __name__ == "__main__":
    main()
