"""Benchmark: Slack block_actions through POST /slack/events, signed as Slack signs them.

On a fresh embedded Redis, posts a pairwise campaign and links E experts to Slack users of the
emulator (tests/emulators/slack.py). Each simulated expert presses a button on its latest card
(a signed, form-encoded block_actions request to the real slack-bolt AsyncApp on aiohttp), then
waits for the next card to reach the emulator before pressing again: every request is a real
answer that is recorded, the card updated and the next card posted.
Baseline in the same run: a bare aiohttp handler that verifies the same signature and parses
the same payload, driven the same way without waiting. Target: ours >= 50% of the bare rate.

    .venv/bin/python bench/slack_ingest.py [--experts 20] [--seconds 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlencode

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
FORM = "application/x-www-form-urlencoded"


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/slack/events"


async def press(http: aiohttp.ClientSession, url: str, payload: dict[str, object]) -> int:
    body = urlencode({"payload": json.dumps(payload)})
    headers = {"Content-Type": FORM, **sign(body, int(time.time()))}
    async with http.post(url, data=body.encode(), headers=headers) as resp:
        await resp.read()
        return resp.status


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


async def run(experts: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = EmbeddedRedis(Path(tmp))
        await redis_server.start()
        client = aioredis.from_url(redis_server.url(), decode_responses=True)
        slack = SlackEmulator()
        await slack.start()
        try:
            return await _measure(client, slack, experts, seconds)
        finally:
            await slack.stop()
            await client.aclose()
            await redis_server.stop()


async def _measure(client: aioredis.Redis, slack: SlackEmulator, experts: int,
                   seconds: float) -> dict[str, float]:
    store = RedisStore(client)
    service = Service(store, SystemClock())
    coordinator = Coordinator(store, service.clock, service.catalog)
    spec = CampaignSpec(id="bench-slack", title="Better answer?", kind="pairwise")
    drafts = [{"text": "Take it with food.", "model": "a"}, {"text": "Never.", "model": "b"}]
    spool = spool_items(spec, [{"id": f"q{i}", "prompt": f"Question {i}?", "drafts": drafts}
                               for i in range(20_000)])
    await coordinator.post_campaign(spec, spool)
    spool.close()
    settings = SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                             api_url=slack.url, post_interval_s=0.0)
    channel = build_channel(settings, service, coordinator)
    app = web.Application()
    add_slack_routes(app, build_app(channel, settings))
    ours_runner, ours_url = await serve(app)
    bare_app = web.Application()
    bare_app.router.add_post("/slack/events", bare_events)
    bare_runner, bare_url = await serve(bare_app)
    users = []
    for n in range(experts):
        await coordinator.add_expert(Expert(id=f"e{n}", name=f"E{n}",
                                            identities=[f"slack:UB{n}"]))
        users.append(SlackUser(slack, ours_url, f"UB{n}"))
        await channel.send_next(f"UB{n}", f"e{n}")

    async def answer(http: aiohttp.ClientSession, user: SlackUser) -> None:
        card = slack.latest[user.channel]
        assert await press(http, ours_url, user.block_action("el_choose", "A", message=card)) \
            == 200
        await slack.until(lambda: slack.latest[user.channel] is not card, within_s=30)

    async def bare(http: aiohttp.ClientSession, user: SlackUser) -> None:
        card = slack.latest[user.channel]
        assert await press(http, bare_url, user.block_action("el_choose", "A", message=card)) \
            == 200

    try:
        bare_count = await drive(users, seconds, bare)
        ours_count = await drive(users, seconds, answer)
    finally:
        await ours_runner.cleanup()
        await bare_runner.cleanup()
    recorded = (await coordinator.status("bench-slack")).answers
    return {"experts": experts, "seconds": seconds, "ours_per_s": ours_count / seconds,
            "bare_per_s": bare_count / seconds, "recorded": recorded,
            "ratio": (ours_count / seconds) / max(bare_count / seconds, 1e-9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(run(args.experts, args.seconds))
    if args.json:
        print(json.dumps(figures))
        return
    verdict = "meets" if figures["ratio"] >= TARGET_RATIO else "misses"
    print(f"slack block_actions, {args.experts} experts, {args.seconds:.0f} s each")
    print(f"  ours (bolt, recorded, card updated, next card posted): "
          f"{figures['ours_per_s']:8.0f}/s  ({figures['recorded']} answers recorded)")
    print(f"  bare aiohttp handler verifying the signature:          "
          f"{figures['bare_per_s']:8.0f}/s")
    print(f"  ratio {figures['ratio']:.0%} ({verdict} the {TARGET_RATIO:.0%} target)")


if __name__ == "__main__":
    main()
