"""Benchmark: Slack block_actions through POST /slack/events, signed as Slack signs them.

On a fresh embedded Redis, posts a pairwise campaign and links E experts to Slack users of the
emulator (tests/emulators/slack.py). Each simulated expert presses a button on its latest card
(a signed, form-encoded block_actions request to the real slack-bolt AsyncApp on aiohttp), then
waits for the next card to reach the emulator before pressing again: every request is a real
answer that is recorded, the card updated and the next card posted.
Baseline in the same run: a bare aiohttp handler that verifies the same signature over the same
body and parses the same payload, driven the same way without waiting. Target: ours >= 50% of
the bare rate.

Each server under test runs alone in a child process (`--serve ours|bare`), as a web process
would; the load generator and the Slack emulator share this process, and Redis runs in its
own. The two servers take turns (ROUNDS each), so a busy spell on a shared machine hits both.
Pacing of chat.postMessage is off (each expert's DM would otherwise cap at 1 card/s).
Besides the rates it prints CPU milliseconds per request of each process, which say more
than the rates when other work shares the machine. `--profile FILE` writes cProfile
statistics of our server (its last round).

Where ours goes (cProfile, Nov 2026): one answer is the signed request through Bolt (body
parsed, listener matched, acknowledged), 4 Redis round trips (who is this Slack user, record,
claim the next task, note it delivered) and 2 Web API calls (chat.update, chat.postMessage),
against the bare handler's one request; each part costs about as much as the whole bare
handler, so ours needs ~8-10x its CPU and the 50% target is out of reach by construction.

    .venv/bin/python bench/slack_ingest.py [--experts 20] [--seconds 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import hmac
import json
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from adapters.slack.app import build_app
from adapters.slack.channel import SlackSettings, build_channel
from adapters.slack.routes import add_slack_routes
from core.campaigns import CampaignSpec
from core.coordinator import Coordinator
from core.experts import Expert
from core.service import Service
from core.staging import spool_items
from core.timing import SystemClock

if __package__ in (None, ""):  # run as a script: the emulator lives in tests/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.emulators.slack import (  # noqa: E402
    BOT_TOKEN,
    SIGNING_SECRET,
    SlackEmulator,
    SlackUser,
    sign,
)

TARGET_RATIO = 0.5
ROUNDS = 2  # each server runs this many times, for seconds / ROUNDS each
FORM = "application/x-www-form-urlencoded"


# our side: one server in a child process


def bench_settings(slack_url: str) -> SlackSettings:
    return SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack_url,
                         post_interval_s=0.0)


async def bare_events(request: web.Request) -> web.Response:
    """What any Slack endpoint must do at least: check the signature, read the payload."""
    body = await request.text()
    stamp = request.headers["X-Slack-Request-Timestamp"]
    expected = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:{body}".encode(),
                                hashlib.sha256).hexdigest()
    if abs(time.time() - int(stamp)) > 300 or not hmac.compare_digest(
            expected, request.headers["X-Slack-Signature"]):
        return web.Response(status=401)
    json.loads(parse_qs(body)["payload"][0])
    return web.Response()


def ours_app(client: aioredis.Redis, slack_url: str) -> web.Application:
    store = RedisStore(client)
    service = Service(store, SystemClock())
    channel = build_channel(bench_settings(slack_url), service,
                            Coordinator(store, service.clock, service.catalog))
    app = web.Application()
    add_slack_routes(app, build_app(channel, bench_settings(slack_url)))
    return app


async def serve(which: str, redis_url: str, slack_url: str) -> None:
    """Serve until stdin closes (the parent is done, or gone); print the port first."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    if which == "ours":
        app = ours_app(client, slack_url)
    else:
        app = web.Application()
        app.router.add_post("/slack/events", bare_events)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    ready = _cpu_seconds()
    closed = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(closed.set)),
                     daemon=True).start()
    await closed.wait()
    print(_cpu_seconds() - ready, flush=True)  # CPU seconds serving, for the parent
    await runner.cleanup()
    await client.aclose()


def _cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def run_server(which: str, redis_url: str, slack_url: str, profile: str | None) -> None:
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    asyncio.run(serve(which, redis_url, slack_url))
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)


async def start_server(which: str, redis_url: str, slack_url: str,
                       profile: str | None) -> tuple[asyncio.subprocess.Process, str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", which,
               "--redis", redis_url, "--slack", slack_url]
    if profile:
        command += ["--profile", profile]
    process = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE,
                                                   stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    port = int(await process.stdout.readline())
    return process, f"http://127.0.0.1:{port}/slack/events"


async def stop_server(process: asyncio.subprocess.Process) -> float:
    """Stop the server; returns the CPU seconds it used while serving."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    used = float(await process.stdout.readline() or 0)
    await process.wait()
    return used


# Slack's side: the emulator and the experts pressing buttons, in this process


FORM_QUOTES = {c: f"%{c:02X}" for c in range(128)
               if not (chr(c).isalnum() or chr(c) in "_.~-")} | {ord(" "): "+"}


def form_quote(text: str) -> bytes:
    """`urlencode`'s quote_plus for ASCII text (JSON as json.dumps writes it), in one C-level
    str.translate: quote_plus walks every byte in Python, which made the load generator cost
    more than the bare server it drives."""
    return text.translate(FORM_QUOTES).encode("ascii")


class Presses:
    """Pressing 'A' on a user's latest card: the form body (Slack sends the whole message with
    the press) is built once per card and signed afresh for each request, so the load costs
    this process little and both servers get the same requests."""

    def __init__(self, slack: SlackEmulator) -> None:
        self.slack = slack
        self._bodies: dict[tuple[str, str], bytes] = {}

    def body(self, user: SlackUser, card: dict[str, object]) -> bytes:
        key = (user.channel, str(card["ts"]))
        if key not in self._bodies:
            payload = user.block_action("el_choose", "A", message=card, snapshot=False)
            self._bodies[key] = b"payload=" + form_quote(json.dumps(payload))
        return self._bodies[key]

    async def press(self, http: aiohttp.ClientSession, url: str, user: SlackUser) -> dict:
        """Press; returns the card pressed."""
        card = self.slack.latest[user.channel]
        body = self.body(user, card)
        headers = {"Content-Type": FORM, **sign(body.decode(), int(time.time()))}
        async with http.post(url, data=body, headers=headers) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        return card


async def drive(users: list[SlackUser], seconds: float,
                step: Callable[[aiohttp.ClientSession, SlackUser], Awaitable[None]]) -> int:
    done = 0
    stop_at = time.monotonic() + seconds

    async def expert(http: aiohttp.ClientSession, user: SlackUser) -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            await step(http, user)
            done += 1

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(expert(http, user) for user in users))
    return done


async def run(experts: int, seconds: float, profile: str | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = EmbeddedRedis(Path(tmp))
        await redis_server.start()
        client = aioredis.from_url(redis_server.url(), decode_responses=True)
        slack = SlackEmulator()
        await slack.start()
        try:
            return await _measure(client, redis_server.url(), slack, experts, seconds, profile)
        finally:
            await slack.stop()
            await client.aclose()
            await redis_server.stop()


async def _setup(client: aioredis.Redis, slack: SlackEmulator, experts: int) -> Coordinator:
    """The campaign, the experts, and each expert's first card in their DM."""
    store = RedisStore(client)
    service = Service(store, SystemClock())
    coordinator = Coordinator(store, service.clock, service.catalog)
    spec = CampaignSpec(id="bench-slack", title="Better answer?", kind="pairwise")
    drafts = [{"text": "Take it with food.", "model": "a"}, {"text": "Never.", "model": "b"}]
    spool = spool_items(spec, [{"id": f"q{i}", "prompt": f"Question {i}?", "drafts": drafts}
                               for i in range(20_000)])
    await coordinator.post_campaign(spec, spool)
    spool.close()
    channel = build_channel(bench_settings(slack.url), service, coordinator)
    for n in range(experts):
        await coordinator.add_expert(Expert(id=f"e{n}", name=f"E{n}",
                                            identities=[f"slack:UB{n}"]))
        await channel.send_next(f"UB{n}", f"e{n}")
    return coordinator


async def _measure(client: aioredis.Redis, redis_url: str, slack: SlackEmulator, experts: int,
                   seconds: float, profile: str | None) -> dict[str, float]:
    coordinator = await _setup(client, slack, experts)
    users = [SlackUser(slack, "", f"UB{n}") for n in range(experts)]

    presses = Presses(slack)

    async def answer(url: str, http: aiohttp.ClientSession, user: SlackUser) -> None:
        card = await presses.press(http, url, user)
        await slack.posted_over(user.channel, card, within_s=30)

    async def bare(url: str, http: aiohttp.ClientSession, user: SlackUser) -> None:
        await presses.press(http, url, user)

    counts: Counter[str] = Counter()
    cpu: Counter[str] = Counter()
    steps = {"bare": bare, "ours": answer}
    for which in ["bare", "ours"] * ROUNDS:  # alternated: a busy spell on the machine hits both
        process, url = await start_server(which, redis_url, slack.url,
                                          profile if which == "ours" else None)
        before = _cpu_seconds(), await _redis_cpu(client)
        try:
            counts[which] += await drive(
                users, seconds / ROUNDS,
                lambda http, user, s=steps[which], u=url: s(u, http, user))
        finally:
            cpu[which] += await stop_server(process)
        cpu[f"{which}_slack_side"] += _cpu_seconds() - before[0]
        cpu[f"{which}_redis"] += await _redis_cpu(client) - before[1]
    recorded = (await coordinator.status("bench-slack")).answers
    return {"experts": experts, "seconds": seconds, "ours_per_s": counts["ours"] / seconds,
            "bare_per_s": counts["bare"] / seconds, "recorded": recorded,
            "ratio": counts["ours"] / max(counts["bare"], 1),
            **{f"{name}_cpu_ms": 1000 * used / max(counts[name.split("_")[0]], 1)
               for name, used in cpu.items()}}


async def _redis_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", help="write cProfile statistics of our server here")
    parser.add_argument("--serve", choices=["ours", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--slack", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        run_server(args.serve, args.redis, args.slack, args.profile)
        return
    figures = asyncio.run(run(args.experts, args.seconds, args.profile))
    if args.json:
        print(json.dumps(figures))
        return
    verdict = "meets" if figures["ratio"] >= TARGET_RATIO else "misses"
    print(f"slack block_actions, {args.experts} experts, {args.seconds:.0f} s each, "
          "each server alone in its own process")
    print(f"  ours (bolt, recorded, card updated, next card posted): "
          f"{figures['ours_per_s']:8.0f}/s  ({figures['recorded']} answers recorded)")
    print(f"  bare aiohttp handler verifying the signature:          "
          f"{figures['bare_per_s']:8.0f}/s")
    print(f"  ratio {figures['ratio']:.0%} ({verdict} the {TARGET_RATIO:.0%} target)")
    print("  CPU ms per request, ours / bare: server "
          f"{figures['ours_cpu_ms']:.2f} / {figures['bare_cpu_ms']:.2f}, redis-server "
          f"{figures['ours_redis_cpu_ms']:.2f} / {figures['bare_redis_cpu_ms']:.2f}, "
          f"load generator + Slack emulator {figures['ours_slack_side_cpu_ms']:.2f} / "
          f"{figures['bare_slack_side_cpu_ms']:.2f}")


if __name__ == "__main__":
    main()
