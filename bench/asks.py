"""Benchmark: live asks end to end. 1,000 asks in flight to 200 experts (half on Telegram, half
on Slack, on the emulators in tests/emulators/) who tap Approve the moment a card lands.

Two legs, timed in this process (one clock): (a) POST /api/asks sent to the card arriving at
the emulator (sendMessage / chat.postMessage); (b) the expert's tap sent (Telegram webhook /
signed Slack interaction) to the agent's signed callback arriving at a local aiohttp receiver.
Ours is `expertloop serve` and `expertloop worker` as real processes on a redis-server of the
bench's own. The baseline, in the same run and on the same emulators and receiver, is a bare
aiohttp process: `/ask` forwards one sendMessage or chat.postMessage to the emulator and
returns; `/tap` forwards one POST to the receiver and returns. Target: our p99 on each leg
within 3x the baseline's.

The platforms' pacing (Telegram ~30 messages/s overall and 1/s per chat; Slack 1 message/s
per channel) is lifted in our processes by default, as bench/load.py does, so the figures
measure our path rather than a wait the platforms impose and the bare forwarder ignores
(`--platform-limits` keeps it: five cards per chat then queue for seconds by design).

    .venv/bin/python bench/asks.py [--asks 1000] [--experts 200] [--connections N]
                                   [--workers 1] [--platform-limits] [--quick] [--json]

By default every ask is posted at once (1,000 in flight); `--connections 100` keeps 100 POSTs
in flight instead. Our POSTs go through the expertloop client, which sends a 503 or 429 again
after its Retry-After, as an agent's would; the taps are sent again after a second until a 2xx,
as Telegram and Slack do. Both are counted in the output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: the emulators live in tests/
    sys.path.insert(0, str(ROOT))

from adapters.redis.store import RedisStore  # noqa: E402
from adapters.telegram.webhook import SECRET_HEADER  # noqa: E402
from bench.asks_roles import Platforms, Processes  # noqa: E402
from bench.load_processes import start_redis, stop, wait_for_redis  # noqa: E402
from core.domain.experts import Expert  # noqa: E402
from core.domain.timing import SystemClock  # noqa: E402
from core.service.coordinator import Coordinator  # noqa: E402
from expertloop import AsyncClient  # noqa: E402
from expertloop.wire import ask_body  # noqa: E402
from tests.emulators.local import listen  # noqa: E402
from tests.emulators.slack import BOT_TOKEN, SIGNING_SECRET, SlackEmulator, SlackUser, sign  # noqa: E402
from tests.emulators.telegram import TelegramEmulator  # noqa: E402

TOKEN, WEBHOOK_SECRET, CALLBACK_SECRET = "bench-asks-token", "bench-asks-hook", "bench-asks-cb"
APPROVE_TELEGRAM, APPROVE_SLACK = "✅ Approve", "el_approve:approved"
TAG = re.compile(r"#([a-z]+\d{5})")
TARGET = 3.0
TELEGRAM_USER0 = 70_000
WARM = 20
TAP_TRIES = 10
SETTLE_S = 3.0


class Marks:
    """When each ask (by tag) was posted, its card landed, it was tapped and called back."""

    def __init__(self) -> None:
        self.posted: dict[str, float] = {}
        self.carded: dict[str, float] = {}
        self.tapped: dict[str, float] = {}
        self.called: dict[str, float] = {}
        self.extra_cards: Counter[str] = Counter()  # a card shown again, per channel
        self.extra_calls = 0

    def leg(self, start: dict[str, float], end: dict[str, float], tags: list[str]
            ) -> list[float]:
        return sorted(end[t] - start[t] for t in tags if t in start and t in end)


class Bench:
    """The emulators, the receiver and the experts' thumbs, shared by both systems."""

    def __init__(self, experts: int) -> None:
        self.experts = experts
        self.marks = Marks()
        self.telegram = LandingTelegram(self.landed)
        self.slack = LandingSlack(self.landed)
        self.tap: Callable[[str, str, dict[str, Any]], Coroutine[Any, Any, None]] | None = None
        self.http: aiohttp.ClientSession | None = None
        self.hook = ""
        self.taps: set[asyncio.Task[None]] = set()
        self.tap_refusals: Counter[int] = Counter()  # 0: no answer

    def landed(self, user: str, text: str, message: dict[str, Any]) -> None:
        """A card reached an expert: note it, and tap at once (each card once)."""
        found = TAG.search(text)
        if found is None:
            return
        tag = found[1]
        if tag in self.marks.carded:
            self.marks.extra_cards[user.partition(":")[0]] += 1
            return
        self.marks.carded[tag] = time.monotonic()
        if self.tap is not None:
            task = asyncio.get_running_loop().create_task(self.tap(tag, user, message))
            self.taps.add(task)
            task.add_done_callback(self.taps.discard)

    async def deliver(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        """A tap as the platforms send it: again after a second until a 2xx (Telegram keeps
        trying; Slack tries three times), so an overloaded web process's 503 costs time, not
        the answer. Statuses other than 200 are counted."""
        assert self.http is not None
        for _ in range(TAP_TRIES):
            try:
                async with self.http.post(url, data=body, headers=headers) as reply:
                    if reply.status == 200:
                        return
                    self.tap_refusals[reply.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                self.tap_refusals[0] += 1
            await asyncio.sleep(1.0)

    async def called(self, request: web.Request) -> web.Response:
        """The agent's receiver: ours sends the ask's view (its question holds the tag)."""
        body = await request.json()
        found = TAG.search(str(body.get("question") or body.get("id")))
        if found and found[1] not in self.marks.called:
            self.marks.called[found[1]] = time.monotonic()
        elif found:
            self.marks.extra_calls += 1
        return web.Response(text="ok")

    def expert_of(self, n: int) -> tuple[str, str]:
        """The nth ask's expert id and chat identity: the first half on Telegram."""
        k = n % self.experts
        if k < self.experts // 2:
            return f"tg{k}", f"telegram:{TELEGRAM_USER0 + k}"
        return f"sl{k}", f"slack:UB{k:05d}"


class LandingTelegram(TelegramEmulator):
    def __init__(self, landed: Callable[[str, str, dict[str, Any]], None]) -> None:
        super().__init__(token="123:BENCHASKS")
        self.landed = landed

    async def _api_sendMessage(self, p: dict[str, Any]) -> Any:
        message = await super()._api_sendMessage(p)
        if "reply_markup" in message:
            self.landed(f"telegram:{message['chat']['id']}", message.get("text", ""), message)
        return message


class LandingSlack(SlackEmulator):
    def __init__(self, landed: Callable[[str, str, dict[str, Any]], None]) -> None:
        super().__init__()
        self.landed = landed

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        answer = super()._chat_postMessage(args)
        if answer.get("ok"):
            user = "slack:U" + str(args["channel"]).removeprefix("D")
            self.landed(user, json.dumps(answer["message"]["blocks"]), answer["message"])
        return answer


class Ours:
    """`expertloop serve` and its workers: the API, the webhook, the events route."""

    def __init__(self, bench: Bench, base: str) -> None:
        self.bench, self.base = bench, base

    async def post(self, http: aiohttp.ClientSession, tag: str, n: int) -> None:
        """As an agent does, with the expertloop client: a 503 or 429 (an overloaded server
        shedding load) is sent again, same call_id, after its Retry-After."""
        expert, _ = self.bench.expert_of(n)
        await AsyncClient(self.base, TOKEN, session=http).post(ask_body(
            f"Refund order #{tag}?", call_id=f"bench-{tag}", asker="bench-agent",
            proposal={"function": "refund", "args": {"order": n, "amount": 120}},
            to=expert, deadline_s=3600, callback=self.bench.hook))

    async def tap(self, tag: str, user: str, message: dict[str, Any]) -> None:
        channel, _, address = user.partition(":")
        if channel == "telegram":
            update = self.bench.telegram.press_update(
                int(address), message, TelegramEmulator.buttons(message)[APPROVE_TELEGRAM])
            self.bench.marks.tapped[tag] = time.monotonic()
            await self.bench.deliver(f"{self.base}/telegram/webhook", json.dumps(update).encode(),
                                     {SECRET_HEADER: WEBHOOK_SECRET,
                                      "Content-Type": "application/json"})
            return
        thumb = SlackUser(self.bench.slack, f"{self.base}/slack/events", address)
        body = urlencode({"payload": json.dumps(thumb.block_action(APPROVE_SLACK,
                                                                   message=message))})
        self.bench.marks.tapped[tag] = time.monotonic()
        await self.bench.deliver(f"{self.base}/slack/events", body.encode(), {
            "Content-Type": "application/x-www-form-urlencoded", **sign(body, int(time.time()))})


class Bare:
    """The baseline process: one forward to the emulator, one forward to the receiver."""

    def __init__(self, bench: Bench, base: str) -> None:
        self.bench, self.base = bench, base

    async def post(self, http: aiohttp.ClientSession, tag: str, n: int) -> None:
        _, identity = self.bench.expert_of(n)
        async with http.post(f"{self.base}/ask", json={"identity": identity,
                                                       "text": f"Refund order #{tag}?"}) as reply:
            if reply.status != 201:
                raise RuntimeError(f"bare /ask: {reply.status} {await reply.text()}")

    async def tap(self, tag: str, user: str, message: dict[str, Any]) -> None:
        self.bench.marks.tapped[tag] = time.monotonic()
        await self.bench.deliver(f"{self.base}/tap", json.dumps(
            {"id": f"#{tag}", "url": self.bench.hook}).encode(),
            {"Content-Type": "application/json"})


# the driver


async def measure(bench: Bench, system: Ours | Bare, prefix: str, count: int,
                  connections: int, stall_s: float) -> tuple[list[str], Counter[int]]:
    """Post `count` asks at once (`connections` at a time); wait until each was called back,
    or nothing new came for `stall_s`. The tags posted, and the POSTs' statuses."""
    bench.tap = system.tap
    tags = [f"{prefix}{n:05d}" for n in range(count)]
    gate = asyncio.Semaphore(connections)
    statuses: Counter[int] = Counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections),
                                     trace_configs=[counted(statuses)],
                                     timeout=aiohttp.ClientTimeout(total=120)) as http:

        async def one(n: int, tag: str) -> None:
            async with gate:
                bench.marks.posted[tag] = time.monotonic()
                await system.post(http, tag, n)

        await asyncio.gather(*(one(n, tag) for n, tag in enumerate(tags)))
        seen, quiet_since = -1, time.monotonic()
        while (done := sum(t in bench.marks.called for t in tags)) < count:
            if done != seen:
                seen, quiet_since = done, time.monotonic()
            elif time.monotonic() - quiet_since > stall_s:
                break
            await asyncio.sleep(0.05)
    return tags, statuses


def counted(statuses: Counter[int]) -> aiohttp.TraceConfig:
    """Counts each response's status (an agent's retries show as 503s and 429s)."""
    trace = aiohttp.TraceConfig()

    async def ended(session: Any, context: Any, params: aiohttp.TraceRequestEndParams) -> None:
        statuses[params.response.status] += 1

    trace.on_request_end.append(ended)
    return trace


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))] if values else \
        float("nan")


def legs(marks: Marks, tags: list[str]) -> dict[str, list[float]]:
    return {"a": marks.leg(marks.posted, marks.carded, tags),
            "b": marks.leg(marks.tapped, marks.called, tags)}


async def add_experts(redis_url: str, bench: Bench) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    await wait_for_redis(client)
    coordinator = Coordinator(RedisStore(client).roles(), SystemClock())
    for n in range(bench.experts):
        expert, identity = bench.expert_of(n)
        await coordinator.add_expert(Expert(id=expert, name=expert, identities=[identity],
                                            daily_cap=10**6))
    await client.aclose()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    bench = Bench(args.experts)
    await bench.telegram.start()
    await bench.slack.start()
    receiver = web.Application()
    receiver.router.add_post("/hook", bench.called)
    runner, port = await listen(receiver)
    bench.hook = f"http://127.0.0.1:{port}/hook"
    bench.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    with tempfile.TemporaryDirectory(prefix="bench-asks-") as work:
        redis, redis_url = start_redis(Path(work))
        processes = Processes(Path(work), args.workers, args.platform_limits, args.profile)
        try:
            await add_experts(redis_url, bench)
            ours_url, bare_url = await processes.start(redis_url, Platforms(
                bench.telegram.base_url, bench.telegram.token, bench.slack.url, BOT_TOKEN,
                SIGNING_SECRET, WEBHOOK_SECRET, CALLBACK_SECRET, TOKEN))
            ours, bare = Ours(bench, ours_url), Bare(bench, bare_url)
            await measure(bench, bare, "warmb", WARM, args.connections, 30)
            await measure(bench, ours, "warmo", WARM, args.connections, 60)
            found = {"bare": await timed(bench, processes, bare, "bare", args),
                     "ours": await timed(bench, processes, ours, "ours", args)}
            processes.check()
        finally:
            processes.stop()
            stop(redis)
            await bench.http.close()
            await runner.cleanup()
            await bench.slack.stop()
            await bench.telegram.stop()
    return report(bench, found, args)


async def timed(bench: Bench, processes: Processes, system: Ours | Bare, name: str,
                args: argparse.Namespace) -> dict[str, Any]:
    """One measured phase: its tags, how long it took, the CPU each process spent on it."""
    await asyncio.sleep(SETTLE_S)  # what the last phase left (card edits) dies down first
    before, started = {**processes.cpu(), "bench": time.process_time()}, time.monotonic()
    tags, statuses = await measure(bench, system, name, args.asks, args.connections, 30)
    wall = time.monotonic() - started
    after = {**processes.cpu(), "bench": time.process_time()}
    return {"tags": tags, "wall_s": wall, "statuses": dict(statuses),
            "cpu": {role: after[role] - before[role] for role in after}}


def report(bench: Bench, found: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"asks": args.asks, "experts": args.experts, "workers": args.workers,
                           "connections": args.connections,
                           "platform_limits": args.platform_limits,
                           "extra_cards": dict(bench.marks.extra_cards),
                           "extra_callbacks": bench.marks.extra_calls,
                           "taps_refused": dict(bench.tap_refusals)}
    for name, run_of in found.items():
        tags = run_of["tags"]
        timed = legs(bench.marks, tags)
        out[name] = {"wall_s": round(run_of["wall_s"], 2), "statuses": run_of["statuses"],
                     "cards": sum(t in bench.marks.carded for t in tags),
                     "callbacks": sum(t in bench.marks.called for t in tags),
                     "cpu_ms_per_ask": {role: round(1000 * s / len(tags), 2)
                                        for role, s in run_of["cpu"].items() if s > 0},
                     **{f"{leg}_p{q}_ms": round(1000 * pct(values, q / 100), 1)
                        for leg, values in timed.items() for q in (50, 99, 100)}}
        if name == "ours":
            for channel, prefix in (("telegram", "tg"), ("slack", "sl")):
                mine = [t for n, t in enumerate(tags) if bench.expert_of(n)[0].startswith(prefix)]
                out[name][channel] = {f"{leg}_p99_ms": round(1000 * pct(values, 0.99), 1)
                                      for leg, values in legs(bench.marks, mine).items()}
    for leg in ("a", "b"):
        ratio = out["ours"][f"{leg}_p99_ms"] / out["bare"][f"{leg}_p99_ms"]
        out[f"{leg}_p99_ratio"] = round(ratio, 2)
        out[f"{leg}_meets"] = ratio <= TARGET
    return out


def show(out: dict[str, Any]) -> None:
    ours, bare = out["ours"], out["bare"]
    pacing = "kept" if out["platform_limits"] else "lifted"
    print(f"live asks: {out['asks']} asks to {out['experts']} experts (half Telegram, half "
          f"Slack), {out['connections']} POSTs in flight at once; 1 web process, "
          f"{out['workers']} worker(s); platform pacing {pacing}")
    print(f"{'leg':34} {'ours p50':>9} {'p99':>9} {'bare p50':>9} {'p99':>9} {'p99 ratio':>10}"
          f"  target <= {TARGET:g}x")
    names = {"a": "(a) POST -> card at the emulator", "b": "(b) tap -> callback received"}
    for leg, name in names.items():
        verdict = "meets" if out[f"{leg}_meets"] else "misses"
        print(f"{name:34} {ours[f'{leg}_p50_ms']:>7.1f}ms {ours[f'{leg}_p99_ms']:>7.1f}ms "
              f"{bare[f'{leg}_p50_ms']:>7.1f}ms {bare[f'{leg}_p99_ms']:>7.1f}ms "
              f"{out[f'{leg}_p99_ratio']:>9.2f}x  {verdict}")
    for channel in ("telegram", "slack"):
        print(f"  ours on {channel}: p99 (a) {ours[channel]['a_p99_ms']:.1f} ms, "
              f"(b) {ours[channel]['b_p99_ms']:.1f} ms")
    for name, run_of in (("ours", ours), ("bare", bare)):
        cpu = ", ".join(f"{role} {ms} ms" for role, ms in run_of["cpu_ms_per_ask"].items())
        posts = ", ".join(f"{n} x {status}" for status, n in sorted(run_of["statuses"].items()))
        print(f"{name}: POSTs answered {posts}; cards {run_of['cards']}/{out['asks']}, callbacks "
              f"{run_of['callbacks']}/{out['asks']}, all done in {run_of['wall_s']} s "
              f"(slowest (a) {run_of['a_p100_ms']:.0f} ms, (b) {run_of['b_p100_ms']:.0f} ms); "
              f"CPU per ask: {cpu}")
    again = ", ".join(f"{n} on {channel}" for channel, n in out["extra_cards"].items())
    refused = ", ".join(f"{n} x {status or 'no answer'}"
                        for status, n in out["taps_refused"].items())
    print(f"an ask's card shown again: {again or 'none'}; callbacks delivered again: "
          f"{out['extra_callbacks']}; taps sent again after: {refused or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--asks", type=int, default=1000)
    parser.add_argument("--experts", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=None,
                        help="POSTs in flight at once (default: every ask at once)")
    parser.add_argument("--platform-limits", action="store_true",
                        help="keep Telegram's and Slack's pacing in our processes")
    parser.add_argument("--quick", action="store_true", help="100 asks to 20 experts")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", help="a folder for cProfile files of our processes")
    args = parser.parse_args()
    if args.quick:
        args.asks, args.experts = 100, 20
    args.connections = args.connections or args.asks
    out = asyncio.run(run(args))
    if args.json:
        print(json.dumps(out))
    else:
        show(out)


if __name__ == "__main__":
    main()
