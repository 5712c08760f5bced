"""Benchmark: pushing cards to 1,000 experts through the emulators at the platforms' real rates.

The emulators (tests/emulators/) are wrapped here to answer as the platforms do when a bot goes
too fast: Telegram with 429 and `retry_after` past 30 messages in any second overall or one a
second in a chat (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this),
Slack with 429 and `Retry-After` past one `chat.postMessage` a second in a channel
(https://api.slack.com/methods/chat.postMessage#rate_limiting); both tolerate short bursts
in one chat, taken here as three messages. On top of that, every
`--fail-every`-th send of a second pass (`--faulty` experts) is refused with an injected 429
(`emulator.fail` / `fail_next`).
Telegram: the worker's push pass (`DeliveryLoop.push_idle`) over 1,000 linked experts
(python-telegram-bot with our `FloodLimiter`); messages/s against 30/s (target 95%).
Slack: `DeliveryLoop.push` for each of 1,000 experts (one DM channel each, so only our own
speed binds), then experts answering back to back in their channel (the `Pacer`), messages/s
per channel against 1/s (target 95%).
Every run checks that each expert got exactly one card per task: none lost, none doubled.

    .venv/bin/python bench/delivery.py [--experts 1000] [--fail-every 25] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from pathlib import Path
from typing import Any

from aiohttp import web

if __package__ in (None, ""):  # run as a script: the emulators live in tests/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.redis.embedded import EmbeddedRedis  # noqa: E402
from adapters.redis.store import RedisStore  # noqa: E402
from adapters.slack.channel import SlackChannel, SlackSettings, build_channel  # noqa: E402
from adapters.slack.delivery import SlackDelivery  # noqa: E402
from adapters.telegram.app import TelegramSettings, build_telegram  # noqa: E402
from adapters.telegram.delivery import TelegramDelivery  # noqa: E402
from bots.runtime import connect  # noqa: E402
from core.domain.answers import Answer  # noqa: E402
from core.domain.campaigns import CampaignSpec  # noqa: E402
from core.domain.cards import Card  # noqa: E402
from core.domain.experts import Expert  # noqa: E402
from core.domain.kinds import Choose  # noqa: E402
from core.domain.timing import SystemClock  # noqa: E402
from core.service.coordinator import Coordinator  # noqa: E402
from core.service.delivery import DeliveryLoop  # noqa: E402
from core.service.service import Service  # noqa: E402
from core.service.staging import spool_items  # noqa: E402
from tests.emulators.slack import BOT_TOKEN, SIGNING_SECRET, SlackEmulator  # noqa: E402
from tests.emulators.telegram import TelegramEmulator  # noqa: E402

TARGET = 0.95
PUSHES_IN_FLIGHT = 50
TELEGRAM_PER_S, TELEGRAM_PER_CHAT_S, SLACK_PER_CHANNEL_S = 30, 1, 1
TELEGRAM_SENDS = {"sendMessage", "sendDocument", "editMessageText", "editMessageReplyMarkup"}


class Window:
    """At most `limit` events in any `span` seconds: the platform's view of a bot's pace."""

    def __init__(self, limit: int, span: float = 1.0) -> None:
        self.limit, self.span = limit, span
        self.times: deque[float] = deque()

    def admit(self, now: float) -> bool:
        while self.times and self.times[0] <= now - self.span:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True


class Burst:
    """On average `rate` a second, with short bursts of up to `burst` tolerated, as both
    platforms say of a single chat or channel."""

    def __init__(self, rate: float, burst: int = 3) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def admit(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Sent:
    """What got through, per chat, with times: lost and doubled cards are counted from it."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.limited = self.injected = 0

    def record(self, chat: str) -> None:
        self.times[chat].append(time.monotonic())

    def rate(self) -> float:
        stamps = sorted(t for chat in self.times.values() for t in chat)
        return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0

    def per_chat_rate(self) -> float:
        """Mean pace within a chat that got several messages."""
        rates = [(len(t) - 1) / (t[-1] - t[0]) for t in self.times.values() if len(t) > 1]
        return sum(rates) / len(rates) if rates else 0.0


class LimitedTelegram(TelegramEmulator):
    def __init__(self, fail_every: int) -> None:
        super().__init__()
        self.overall = Window(TELEGRAM_PER_S)
        self.chats: dict[str, Burst] = defaultdict(lambda: Burst(TELEGRAM_PER_CHAT_S))
        self.sent, self.fail_every, self.seen = Sent(), fail_every, 0

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method not in TELEGRAM_SENDS:
            return await super()._handle(request)
        chat = str((await request.json()).get("chat_id")) if request.content_type == \
            "application/json" else str((await request.post()).get("chat_id"))
        self.seen += 1
        if self.fail_every and self.seen % self.fail_every == 0:
            self.sent.injected += 1
            self.fail(method, 429, retry_after=1)  # answered by the emulator itself below
        elif not (self.overall.admit(time.monotonic()) and self.chats[chat].admit(
                time.monotonic())):
            self.sent.limited += 1
            return web.json_response({"ok": False, "error_code": 429, "description":
                                      "Too Many Requests: retry after 1",
                                      "parameters": {"retry_after": 1}}, status=429)
        response = await super()._handle(request)
        if response.status == 200 and method == "sendMessage":
            self.sent.record(chat)
        return response


class LimitedSlack(SlackEmulator):
    def __init__(self, fail_every: int) -> None:
        super().__init__()
        self.channels: dict[str, Burst] = defaultdict(lambda: Burst(SLACK_PER_CHANNEL_S))
        self.sent, self.fail_every, self.seen = Sent(), fail_every, 0

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["method"] != "chat.postMessage":
            return await super()._handle(request)
        channel = str((await request.json()).get("channel")) if request.content_type == \
            "application/json" else str((await request.post()).get("channel"))
        self.seen += 1
        if self.fail_every and self.seen % self.fail_every == 0:
            self.sent.injected += 1
            self.fail_next("chat.postMessage", 429, retry_after=1)
        elif not self.channels[channel].admit(time.monotonic()):
            self.sent.limited += 1
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": "1"})
        response = await super()._handle(request)
        if response.status == 200 and json.loads(response.body or b"{}").get("ok"):
            self.sent.record(channel)
        return response


async def post(coordinator: Coordinator, campaign: str, items: int) -> None:
    spec = CampaignSpec(id=campaign, title="Which answer is better?", kind="pairwise", overlap=1)
    drafts = [{"text": "Take it with food.", "model": "a"}, {"text": "Never.", "model": "b"}]
    spool = spool_items(spec, ({"id": f"q{n}", "prompt": f"Question {n}?", "drafts": drafts}
                               for n in range(items)))
    try:
        await coordinator.post_campaign(spec, spool)
    finally:
        spool.close()


async def experts(coordinator: Coordinator, prefix: str, identities: list[str]) -> list[str]:
    ids = []
    for n, identity in enumerate(identities):
        ids.append(f"{prefix}{n}")
        await coordinator.add_expert(Expert(id=ids[-1], name=ids[-1], daily_cap=10**6))
        await coordinator.link(ids[-1], identity)
    return ids


def tally(sent: Sent, chats: list[str], each: int) -> dict[str, int]:
    counts = Counter({chat: len(sent.times.get(chat, [])) for chat in chats})
    return {"lost": sum(max(each - n, 0) for n in counts.values()),
            "doubled": sum(max(n - each, 0) for n in counts.values())}


async def telegram_push(service: Service, coordinator: Coordinator, n: int, fail_every: int,
                        first_user: int) -> dict[str, Any]:
    emulator = LimitedTelegram(fail_every)
    await emulator.start()
    users = [str(first_user + i) for i in range(n)]
    await experts(coordinator, f"t{first_user}-", [f"telegram:{u}" for u in users])
    telegram = build_telegram(TelegramSettings(token=emulator.token, api_url=emulator.base_url),
                              service, coordinator, service.stores)
    try:
        async with telegram.application:
            pusher = DeliveryLoop(service, TelegramDelivery(telegram))
            began = time.monotonic()
            pushed = await pusher.push_idle()  # the worker's pass
            wall = time.monotonic() - began
    finally:
        await emulator.stop()
    return {"platform": "telegram", "messages": sum(map(len, emulator.sent.times.values())),
            "pushed": pushed, "seconds": round(wall, 2), "per_s": emulator.sent.rate(),
            "limit_per_s": TELEGRAM_PER_S, "limited_429": emulator.sent.limited,
            "injected_429": emulator.sent.injected, **tally(emulator.sent, users, 1)}


async def slack_push(channel: SlackChannel, settings: SlackSettings, emulator: LimitedSlack,
                     n: int, prefix: str) -> dict[str, Any]:
    emulator.sent, emulator.seen = Sent(), 0
    users = [f"U{prefix}{i}" for i in range(n)]
    ids = await experts(channel.coordinator, prefix, [f"slack:{u}" for u in users])
    began = time.monotonic()
    gate = asyncio.Semaphore(PUSHES_IN_FLIGHT)
    pusher = DeliveryLoop(channel.service, SlackDelivery(channel, settings))

    async def push(expert_id: str) -> bool:
        async with gate:
            return await pusher.push(expert_id)

    pushed = await asyncio.gather(*(push(expert_id) for expert_id in ids))
    wall = time.monotonic() - began
    chats = ["D" + u.lstrip("U") for u in users]
    return {"platform": "slack push", "messages": sum(map(len, emulator.sent.times.values())),
            "pushed": sum(pushed), "seconds": round(wall, 2), "per_s": emulator.sent.rate(),
            "limit_per_s": None, "limited_429": emulator.sent.limited,
            "injected_429": emulator.sent.injected, **tally(emulator.sent, chats, 1)}


async def slack_run(service: Service, coordinator: Coordinator, args: argparse.Namespace
                    ) -> list[dict[str, Any]]:
    emulator = LimitedSlack(0)
    await emulator.start()
    settings = SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                             api_url=emulator.url)
    channel = build_channel(settings, service, coordinator, service.stores)
    try:
        results = [await slack_push(channel, settings, emulator, args.experts, "P")]
        emulator.fail_every = args.fail_every
        results.append(await slack_push(channel, settings, emulator, args.faulty, "F"))
        results[-1]["platform"] = "slack push +429s"
        emulator.fail_every, emulator.sent = 0, Sent()
        results.append(await slack_answering(channel, emulator, args.answering, args.answers))
    finally:
        await emulator.stop()
    return results


async def slack_answering(channel: SlackChannel, emulator: LimitedSlack, n: int,
                          answers: int) -> dict[str, Any]:
    """Experts answer each card the moment it lands; the next card waits for the Pacer."""
    users = [f"UA{i}" for i in range(n)]
    ids = await experts(channel.coordinator, "a", [f"slack:{u}" for u in users])
    service = channel.service

    async def expert(user: str, expert_id: str) -> None:
        await channel.send_next(user, expert_id)
        for _ in range(answers):
            card = await service.next_task(expert_id)
            assert isinstance(card, Card)
            await channel.answer(user, Answer(expert=expert_id, lease=card.lease,
                                              decision=Choose(choice="A")), None)

    began = time.monotonic()
    await asyncio.gather(*(expert(u, e) for u, e in zip(users, ids, strict=True)))
    wall = time.monotonic() - began
    chats = ["D" + u.lstrip("U") for u in users]
    per_chat = Counter({c: len(emulator.sent.times.get(c, [])) for c in chats})
    return {"platform": "slack answering", "messages": sum(per_chat.values()),
            "pushed": n * (answers + 1), "seconds": round(wall, 2),
            "per_s": emulator.sent.per_chat_rate(), "limit_per_s": SLACK_PER_CHANNEL_S,
            "limited_429": emulator.sent.limited, "injected_429": emulator.sent.injected,
            "messages_per_channel": sorted(set(per_chat.values()))}


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="el-bench-delivery-") as work:
        server = EmbeddedRedis(Path(work))
        await server.start()
        client = connect(server.url())  # as the processes connect: a blocking pool
        try:
            store = RedisStore(client)
            service = Service(store.roles(), SystemClock())
            coordinator = Coordinator(store.roles(), service.clock, service.catalog)
            await post(coordinator, "bench-delivery",
                       2 * (args.experts + args.faulty) + args.answering * (args.answers + 1))
            results = [await telegram_push(service, coordinator, args.experts, 0, 500_000),
                       await telegram_push(service, coordinator, args.faulty, args.fail_every,
                                           600_000)]
            results[1]["platform"] = "telegram +429s"
            results += await slack_run(service, coordinator, args)
            delivered = await count_delivered(store)
            for result in results:
                result["delivered_events"] = delivered
            return results
        finally:
            await client.aclose()
            await server.stop()


async def count_delivered(store: RedisStore) -> int:
    found, after = 0, 0
    while events := await store.read_events("bench-delivery", after, 10_000):
        after = events[-1].seq
        found += sum(json.loads(e.body)["type"] == "delivered" for e in events)
    return found


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"cards pushed to {args.experts:,} experts, then to {args.faulty:,} more with every "
          f"{args.fail_every}th send refused by an injected 429")
    for r in results:
        limit = r["limit_per_s"]
        against = (f"{r['per_s'] / limit:.0%} of the {limit}/s limit "
                   f"({'meets' if r['per_s'] >= TARGET * limit else 'MISSES'} {TARGET:.0%})"
                   if limit else "no aggregate limit applies (one card per DM channel)")
        scope = "per channel" if r["platform"] == "slack answering" else "overall"
        print(f"  {r['platform']:<16} {r['messages']:>5,} cards in {r['seconds']:6.1f} s: "
              f"{r['per_s']:7.1f} messages/s {scope}, {against}")
        extra = (f"lost {r['lost']}, doubled {r['doubled']}" if "lost" in r else
                 f"messages per channel {r['messages_per_channel']} for "
                 f"{args.answers + 1} cards each")
        print(f"  {'':<16} 429s: {r['injected_429']} injected, {r['limited_429']} for going "
              f"too fast; {extra}")
    print(f"  'delivered' events in the log: {results[0]['delivered_events']:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experts", type=int, default=1000, help="experts pushed to (1000)")
    parser.add_argument("--faulty", type=int, default=300,
                        help="experts pushed to in a second pass with injected 429s (300)")
    parser.add_argument("--fail-every", type=int, default=25,
                        help="in that pass, inject a 429 into every Nth send (25)")
    parser.add_argument("--answering", type=int, default=20,
                        help="Slack experts answering back to back (20)")
    parser.add_argument("--answers", type=int, default=8, help="answers each (8)")
    parser.add_argument("--json", action="store_true", help="print machine-readable lines")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    if args.json:
        for r in results:
            print(json.dumps(r))
    else:
        report(results, args)


if __name__ == "__main__":
    main()
