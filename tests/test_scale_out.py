"""Scale-out: two web processes (`expertloop serve` on two ports) and two workers
(`expertloop worker`) on one redis-server started here, with 200 experts answering through
the Telegram webhook, their taps spread over both web processes, some cards tapped on both at
once. Every slot is filled exactly once: no item answered more than `overlap` times, no
(item, expert) pair twice, every saved card is one answer in the log, and the log verifies."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from adapters.redis.embedded import server_binary
from adapters.redis.store import RedisStore
from adapters.telegram.app import CHANNEL
from adapters.telegram.webhook import SECRET_HEADER
from core.domain.experts import Expert
from core.domain.timing import SystemClock
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.cluster import free_ports
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import post_kind
from tests.test_procfile import alive, stop

BIN = Path(sys.executable).parent
SECRET = "scale-out-secret"
EXPERTS, ITEMS, OVERLAP = 200, 100, 2
READY_S = 30.0


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    (port,) = free_ports(1)
    server = subprocess.Popen(
        [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
         "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
        stdout=subprocess.DEVNULL)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(server)
        assert not alive(server.pid)


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    bot_api = TelegramEmulator()
    await bot_api.start()
    yield bot_api
    await bot_api.stop()


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + READY_S
    while True:
        try:
            await client.ping()
            break
        except (aioredis.ConnectionError, OSError):
            assert time.monotonic() < deadline, "redis-server did not start"
            await asyncio.sleep(0.05)
    yield RedisStore(client)
    await client.aclose()


@pytest.fixture
def processes(redis_url: str, emulator: TelegramEmulator, store: RedisStore,
              tmp_path: Path) -> Iterator[list[str]]:
    """Two web processes and two workers; the webhook URLs of the two web processes."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "TELEGRAM_", "EXPERTLOOP_", "REDIS_"))}
    env.update(REDIS_URL=redis_url, TELEGRAM_BOT_TOKEN=emulator.token,
               TELEGRAM_WEBHOOK_SECRET=SECRET, TELEGRAM_API_URL=emulator.base_url,
               EXPERTLOOP_WORKER_INTERVAL="0.3", PYTHONUNBUFFERED="1")
    ports = free_ports(2)
    commands = [(["serve"], {"PORT": str(port)}) for port in ports]
    commands += [(["worker"], {}), (["worker"], {})]
    started: list[subprocess.Popen[bytes]] = []
    try:
        for n, (args, extra) in enumerate(commands):
            with (tmp_path / f"process-{n}.log").open("wb") as log:
                started.append(subprocess.Popen([str(BIN / "expertloop"), *args],
                                                env={**env, **extra}, cwd=tmp_path,
                                                stdout=log, stderr=subprocess.STDOUT))
        yield [f"http://127.0.0.1:{port}" for port in ports]
        assert all(p.poll() is None for p in started), "a process died during the test"
    finally:
        for process in started:
            stop(process)
        assert not [p.pid for p in started if alive(p.pid)]


async def wait_until_up(http: aiohttp.ClientSession, bases: list[str]) -> None:
    deadline = time.monotonic() + READY_S
    for base in bases:
        while True:
            try:
                async with http.get(f"{base}/healthz") as reply:
                    if reply.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, f"{base} did not come up"
            await asyncio.sleep(0.1)


class Settled:
    """Waits until the web processes handled everything kept in the Telegram inbox, for many
    experts at once with one poll of Redis: a check releases only those who were waiting
    when it began (their update was kept by then, so an empty inbox means it was handled)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.waiting: list[asyncio.Future[None]] = []
        self.poller: asyncio.Task[None] | None = None

    async def __call__(self) -> None:
        done = asyncio.get_running_loop().create_future()
        self.waiting.append(done)
        if self.poller is None or self.poller.done():
            self.poller = asyncio.create_task(self._poll())
        await done

    async def _poll(self) -> None:
        while self.waiting:
            checked, self.waiting = self.waiting, []
            if await self.store.inbox_size(CHANNEL):
                self.waiting = checked + self.waiting
                await asyncio.sleep(0.01)
                continue
            for done in checked:
                done.set_result(None)


class Expert200:
    """A Telegram user whose updates go to whichever web process the test names."""

    def __init__(self, emulator: TelegramEmulator, http: aiohttp.ClientSession,
                 settled: Settled, user_id: int) -> None:
        self.emulator, self.http, self.settled, self.id = emulator, http, settled, user_id
        self.statuses: list[int] = []

    async def post(self, base: str, update: dict[str, Any]) -> None:
        async with self.http.post(f"{base}/telegram/webhook", json=update,
                                  headers={SECRET_HEADER: SECRET}) as reply:
            self.statuses.append(reply.status)
        await self.settled()  # the web processes handle it after the 200

    def card(self) -> dict[str, Any] | None:
        shown = self.emulator.last(self.id, with_buttons=True)
        return shown if "A is better" in self.emulator.buttons(shown) else None

    def press(self, card: dict[str, Any], button: str) -> dict[str, Any]:
        return self.emulator.press_update(self.id, card, self.emulator.buttons(card)[button])

    async def work(self, bases: list[str], n: int) -> None:
        """Ask for work on one web process, then answer each card on alternating ones; every
        fifth expert taps its first card on both at once (two devices)."""
        await self.post(bases[n % 2], self.emulator.message_update(self.id, "/next"))
        turn = n
        while (card := self.card()) is not None:
            turn += 1
            button = ("A is better", "B is better", "Tie")[turn % 3]
            if n % 5 == 0 and turn == n + 1:
                await asyncio.gather(self.post(bases[0], self.press(card, button)),
                                     self.post(bases[1], self.press(card, button)))
            else:
                await self.post(bases[turn % 2], self.press(card, button))


async def answered_events(store: RedisStore, campaign: str) -> list[dict[str, Any]]:
    events = await store.read_events(campaign, 0, 100_000)
    return [body for body in (json.loads(e.body) for e in events)
            if body["type"] == "answered"]


async def test_two_web_processes_and_two_workers_fill_every_slot_exactly_once(
        processes: list[str], emulator: TelegramEmulator, store: RedisStore, redis_url: str,
        tmp_path: Path) -> None:
    service = Service(store.roles(), SystemClock())
    coordinator = Coordinator(store.roles(), service.clock, service.catalog)
    await post_kind(coordinator, "pairwise", n_items=ITEMS, campaign_id="scale",
                    overlap=OVERLAP)
    users = list(range(700_000, 700_000 + EXPERTS))
    for user in users:
        await coordinator.add_expert(Expert(id=f"x{user}", name=f"Expert {user}"))
        await coordinator.link(f"x{user}", f"telegram:{user}")
    experts = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await wait_until_up(http, processes)
        settled = Settled(store)
        experts = [Expert200(emulator, http, settled, user) for user in users]
        await asyncio.gather(*(e.work(processes, n) for n, e in enumerate(experts)))

    assert Counter(s for e in experts for s in e.statuses) == Counter(
        {200: sum(len(e.statuses) for e in experts)})
    answers = await answered_events(store, "scale")
    per_item = Counter(a["item"] for a in answers)
    assert max(per_item.values()) <= OVERLAP  # no slot over-assigned
    assert len(answers) == ITEMS * OVERLAP  # every slot filled: nothing lost either
    assert len({(a["item"], a["expert"]) for a in answers}) == len(answers)  # none doubled
    saved_cards = [m for m in emulator.messages.values()  # a card edited to say it was saved
                   if m.get("from", {}).get("is_bot") and "\n\n✅ Saved" in m.get("text", "")]
    assert len(saved_cards) == len(answers)
    assert (await coordinator.status("scale")).answers == len(answers)

    verify = await asyncio.create_subprocess_exec(
        str(BIN / "expertloop"), "provenance", "verify", "scale",
        env={**os.environ, "REDIS_URL": redis_url}, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await verify.communicate()
    assert verify.returncode == 0, output.decode()

