"""Benchmark: answers through POST /telegram/webhook, against a bare aiohttp handler.

How it measures. Two processes, as in production, where Telegram is someone else's machine:
- this process serves the webhook: the real aiohttp server, the real python-telegram-bot
  Application, the store on a fresh embedded Redis (its own redis-server process);
- a driver process (this script with --drive) plays Telegram: it runs the Bot API emulator
  (tests/emulators/telegram.py) and posts updates, so neither the client's nor the emulator's
  work is counted against the server's CPU.
E simulated experts each ask /next, then press "A is better" on their newest card again and
again; every webhook request is a real answer: recorded, the callback answered, the card
edited and the next card sent to the emulator before the response (checked: each press must
bring a new card). Baseline in the same run, driven the same way by the same driver: a bare
aiohttp handler that checks the same secret header and parses the same update JSON.
The flood limiter is opened wide: Telegram's real 30 messages/s would measure Telegram.
Target: ours >= 50% of the bare rate. Also printed: the server's CPU time per request in each
phase (this process's CPU time over the phase / requests) and how busy it was; these hold up
on a shared machine where the rates drift, and show which side limits each rate.

    .venv/bin/python bench/telegram_ingest.py [--experts 20] [--seconds 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from adapters.telegram.app import Telegram, TelegramSettings, build_telegram
from adapters.telegram.limits import Limits
from adapters.telegram.webhook import SECRET_HEADER, add_telegram_webhook
from core.campaigns import CampaignSpec
from core.coordinator import Coordinator
from core.experts import Expert
from core.service import Service
from core.staging import spool_items
from core.timing import SystemClock

if __package__ in (None, ""):  # run as a script: the emulator lives in tests/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.emulators.telegram import TelegramEmulator  # noqa: E402

TARGET_RATIO = 0.5
SECRET = "bench-secret"
CAMPAIGN = "bench-telegram"
FIRST_USER = 90_000
OPEN = Limits(per_second=1e6, per_chat_per_second=1e6, chat_burst=1_000_000)


# the server side (this process)

async def bare_webhook(request: web.Request) -> web.Response:
    """What any Telegram webhook must do at least: check the secret, read the update."""
    if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(),
                               SECRET.encode()):
        return web.Response(status=403)
    json.loads(await request.read())
    return web.Response()


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/telegram/webhook"


async def post_campaign(coordinator: Coordinator, experts: int) -> None:
    spec = CampaignSpec(id=CAMPAIGN, title="Better answer?", kind="pairwise")
    drafts = [{"text": "Take it with food.", "model": "a"}, {"text": "Never.", "model": "b"}]
    spool = spool_items(spec, [{"id": f"q{i}", "prompt": f"Question {i}?", "drafts": drafts}
                               for i in range(20_000)])
    try:
        await coordinator.post_campaign(spec, spool)
    finally:
        spool.close()
    for n in range(experts):
        await coordinator.add_expert(Expert(id=f"e{n}", name=f"E{n}",
                                            identities=[f"telegram:{FIRST_USER + n}"]))


async def run(experts: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = EmbeddedRedis(Path(tmp))
        await redis_server.start()
        client = aioredis.from_url(redis_server.url(), decode_responses=True)
        try:
            return await _measure(RedisStore(client), experts, seconds)
        finally:
            await client.aclose()
            await redis_server.stop()


async def _measure(store: RedisStore, experts: int, seconds: float) -> dict[str, float]:
    service = Service(store, SystemClock())
    coordinator = Coordinator(store, service.clock, service.catalog)
    await post_campaign(coordinator, experts)
    driver = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--drive", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    assert driver.stdin is not None and driver.stdout is not None
    try:
        api_url = json.loads(await driver.stdout.readline())["api_url"]
        telegram = build_telegram(TelegramSettings(token=TelegramEmulator().token,
                                                   api_url=api_url, limits=OPEN),
                                  service, coordinator)
        figures = await _against(telegram, driver, experts, seconds)
    finally:
        if driver.returncode is None:
            driver.kill()
        await driver.wait()
    figures["recorded"] = (await coordinator.status(CAMPAIGN)).answers
    return figures


async def _against(telegram: Telegram, driver: asyncio.subprocess.Process, experts: int,
                   seconds: float) -> dict[str, float]:
    assert driver.stdin is not None and driver.stdout is not None
    ours_app, bare_app = web.Application(), web.Application()
    add_telegram_webhook(ours_app, telegram, SECRET)
    bare_app.router.add_post("/telegram/webhook", bare_webhook)
    ours, ours_url = await serve(ours_app)
    bare, bare_url = await serve(bare_app)
    try:
        await telegram.application.bot.set_webhook(ours_url, secret_token=SECRET)
        plan = {"bare": bare_url, "experts": experts, "seconds": seconds}
        driver.stdin.write(json.dumps(plan).encode() + b"\n")
        await driver.stdin.drain()
        counts, cpu, driver_busy = {}, {}, {}
        await driver.stdout.readline()  # every expert has a card: the clock starts
        for _ in ("bare", "ours"):
            started = time.process_time()
            phase = json.loads(await driver.stdout.readline())
            counts[phase["phase"]] = phase["count"]
            driver_busy[phase["phase"]] = phase["busy"]
            cpu[phase["phase"]] = time.process_time() - started
    finally:
        await ours.cleanup()
        await bare.cleanup()
    return {"experts": experts, "seconds": seconds, "ours_per_s": counts["ours"] / seconds,
            "bare_per_s": counts["bare"] / seconds,
            "ratio": counts["ours"] / max(counts["bare"], 1),
            "ours_cpu_ms": 1000 * cpu["ours"] / max(counts["ours"], 1),
            "bare_cpu_ms": 1000 * cpu["bare"] / max(counts["bare"], 1),
            "ours_busy": cpu["ours"] / seconds, "bare_busy": cpu["bare"] / seconds,
            "driver_ours_busy": driver_busy["ours"], "driver_bare_busy": driver_busy["bare"]}


# the driver side (a separate process playing Telegram)

async def drive() -> None:
    emulator = TelegramEmulator()
    await emulator.start()
    try:
        print(json.dumps({"api_url": emulator.base_url}), flush=True)
        plan = json.loads(await asyncio.to_thread(sys.stdin.readline))
        await _drive(emulator, plan)
    finally:
        await emulator.stop()


def emit(**line: object) -> None:
    print(json.dumps(line), flush=True)


async def _drive(emulator: TelegramEmulator, plan: dict[str, Any]) -> None:
    assert emulator.webhook is not None, "the bot set its webhook"
    ours_url, _ = emulator.webhook
    users = [FIRST_USER + n for n in range(plan["experts"])]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def post(url: str, update: dict[str, Any]) -> None:
            async with http.post(url, json=update, headers={SECRET_HEADER: SECRET}) as resp:
                await resp.read()
                assert resp.status == 200, resp.status

        await asyncio.gather(*(post(ours_url, emulator.message_update(u, "/next"))
                               for u in users))
        emit(phase="ready")

        def press(user: int) -> dict[str, Any]:
            card = emulator.newest_card[user]
            data = emulator.buttons(card)["A is better"]
            return emulator.press_update(user, card, data)

        async def bare(user: int) -> None:
            await post(plan["bare"], press(user))

        async def ours(user: int) -> None:
            before = emulator.newest_card[user]
            await post(ours_url, press(user))
            assert emulator.newest_card[user] is not before, "the next card did not come"

        for phase, step in (("bare", bare), ("ours", ours)):
            started = time.process_time()
            count = await _loop(users, plan["seconds"], step)
            emit(phase=phase, count=count, busy=(time.process_time() - started) / plan["seconds"])


async def _loop(users: list[int], seconds: float, step: Any) -> int:
    done = 0
    stop_at = time.monotonic() + seconds

    async def expert(user: int) -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            await step(user)
            done += 1

    await asyncio.gather(*(expert(user) for user in users))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--experts", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        asyncio.run(drive())
        return
    figures = asyncio.run(run(args.experts, args.seconds))
    if args.json:
        print(json.dumps(figures))
        return
    verdict = "meets" if figures["ratio"] >= TARGET_RATIO else "misses"
    print(f"telegram webhook, {args.experts} experts, {args.seconds:.0f} s each, "
          f"load from a separate process")
    print(f"  ours (PTB, recorded, card edited, next card sent): "
          f"{figures['ours_per_s']:8.0f}/s  ({figures['recorded']:.0f} answers recorded)")
    print(f"  bare aiohttp handler checking the secret, parsing:  "
          f"{figures['bare_per_s']:8.0f}/s")
    print(f"  ratio {figures['ratio']:.0%} ({verdict} the {TARGET_RATIO:.0%} target)")
    print(f"  server CPU per request: ours {figures['ours_cpu_ms']:.2f} ms "
          f"(busy {figures['ours_busy']:.0%}), bare {figures['bare_cpu_ms']:.2f} ms "
          f"(busy {figures['bare_busy']:.0%}); the driver (emulator and client) was busy "
          f"{figures['driver_ours_busy']:.0%} and {figures['driver_bare_busy']:.0%}")


if __name__ == "__main__":
    main()
