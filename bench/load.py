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

    .venv/bin/python bench/load.py [--experts 500] [--seconds 20] [--connections 40]
                                   [--server app|serve] [--profile]  # cProfile of the web process
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hmac
import json
import os
import pstats
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: the emulator lives in tests/
    sys.path.insert(0, str(ROOT))

from adapters.redis.embedded import server_binary  # noqa: E402
from adapters.redis.store import RedisStore  # noqa: E402
from adapters.telegram.app import TelegramSettings, build_telegram  # noqa: E402
from adapters.telegram.limits import Limits  # noqa: E402
from adapters.telegram.webhook import SECRET_HEADER, add_telegram_webhook  # noqa: E402
from bots.runtime import open_runtime, stop_on_signals  # noqa: E402
from bots.settings import Settings  # noqa: E402
from bots.web import build_app  # noqa: E402
from core.campaigns import CampaignSpec  # noqa: E402
from core.coordinator import Coordinator  # noqa: E402
from core.experts import Expert  # noqa: E402
from core.ledger import Ledger  # noqa: E402
from core.service import Service  # noqa: E402
from core.staging import spool_items  # noqa: E402
from core.timing import SystemClock  # noqa: E402
from tests.cluster import free_ports  # noqa: E402
from tests.emulators.telegram import TelegramEmulator  # noqa: E402

TOKEN, SECRET, CAMPAIGN = "123:BENCH", "bench-load-secret", "bench-load"
TARGET_RATE, TARGET_P99_MS, TARGET_BYTES = 5000.0, 25.0, 1024.0
NO_FLOOD = Limits(per_second=1e9, per_chat_per_second=1e9, chat_burst=10**9)
FIRST_USER = 10_000
QUIET_S = 3.0


# the web processes (run by this script in a process of their own)

async def serve_app(port: int) -> None:
    """`bots.web.build_app` as `expertloop serve` builds it, plus the Telegram webhook with the
    flood limits lifted (the emulator takes any rate)."""
    async with open_runtime(Settings()) as runtime:
        app = build_app(runtime)
        telegram = build_telegram(TelegramSettings(
            token=TOKEN, api_url=os.environ["BENCH_TELEGRAM_API"], webhook_secret=SECRET,
            limits=NO_FLOOD), runtime.service, runtime.coordinator)
        add_telegram_webhook(app, telegram, SECRET)
        await run_site(app, port)


async def bare_webhook(request: web.Request) -> web.Response:
    """The least any Telegram webhook does: check the secret, parse the update."""
    if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), SECRET.encode()):
        raise web.HTTPForbidden()
    if "update_id" not in await request.json():
        raise web.HTTPBadRequest()
    return web.Response()


async def serve_bare(port: int) -> None:
    app = web.Application()
    app.router.add_post("/telegram/webhook", bare_webhook)
    app.router.add_get("/healthz", healthz)
    await run_site(app, port)


async def healthz(request: web.Request) -> web.Response:
    return web.Response()


async def run_site(app: web.Application, port: int) -> None:
    stop = stop_on_signals()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run_server(role: str, port: int, profile: str | None) -> None:
    job = serve_app if role == "app" else serve_bare
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    asyncio.run(job(port))
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)


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


class WebProcess:
    """A web process of ours or the bare one; always stopped (and its profile written)."""

    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.command, self.env, self.port = command, env, port
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> str:
        self.process = launch(self.command, self.env)
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.command} exited with {self.process.returncode}")
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as reply:
                        if reply.status == 200:
                            return f"http://127.0.0.1:{self.port}/telegram/webhook"
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the web process did not come up")

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def launch(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, cwd=ROOT)


def server_command(role: str, port: int, profile: str | None) -> list[str]:
    if role == "serve":
        return [str(Path(sys.executable).with_name("expertloop")), "serve"]
    extra = ["--profile-to", profile] if profile else []
    return [sys.executable, str(Path(__file__).resolve()), "--role", role, "--port", str(port),
            *extra]


def server_env(redis_url: str, emulator: Emulator, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "TELEGRAM_", "EXPERTLOOP_", "REDIS_"))}
    env.update(REDIS_URL=redis_url, PORT=str(port), BENCH_TELEGRAM_API=emulator.base_url,
               PYTHONPATH=str(ROOT))
    return env


def start_redis(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    (port,) = free_ports(1)
    server = subprocess.Popen(
        [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
         "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
         "--maxmemory-policy", "noeviction"], stdout=subprocess.DEVNULL)
    return server, f"redis://127.0.0.1:{port}/0"


async def wait_for_redis(client: aioredis.Redis) -> None:
    for _ in range(300):
        try:
            await client.ping()
            return
        except (aioredis.ConnectionError, OSError):
            await asyncio.sleep(0.05)
    raise RuntimeError("redis-server did not start")


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
        env = server_env(url, emulator, port)
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
    env = server_env(url, emulator, port)
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
    parser.add_argument("--role", choices=["app", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        run_server(args.role, args.port, args.profile_to)
        return
    if args.server == "serve" and args.profile:
        parser.error("--profile profiles --server app only")
    with tempfile.TemporaryDirectory(prefix="el-bench-load-") as work:
        print_report(asyncio.run(measure(args, Path(work))))


if __name__ == "__main__":
    main()
