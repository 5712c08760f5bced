"""Shared fixtures: one real embedded redis-server per test session, flushed between tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from playwright.async_api import Browser, async_playwright

from adapters.media.store import DirectoryMedia
from adapters.models.openai_drafter import OpenAIDrafter
from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from adapters.telegram.app import TelegramBot
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.cluster import cluster_client, redis_cluster  # noqa: F401  (shared fixtures)
from tests.emulators.openai import API_KEY, OpenAIEmulator
from tests.emulators.slack import SlackEmulator
from tests.emulators.telegram import TelegramEmulator
from tests.faults.processes import RedisServer
from tests.telegram_session import webhook_bot

NOW = 1_795_000_000_000  # a fixed moment (2026-11-18T...Z) so tests read the same every run


@pytest.fixture(scope="session")
async def redis_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedRedis]:
    server = EmbeddedRedis(Path(tmp_path_factory.mktemp("redis")))
    await server.start()
    yield server
    await server.stop(force=True)  # the session owns it, whatever connections tests left open


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """An aiohttp app on a free loopback port, for a real browser to visit; its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, driven by Playwright (no browser download is possible here)."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        await chromium.close()


@pytest.fixture
async def client(redis_server: EmbeddedRedis) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.from_url(redis_server.url(), decode_responses=True)
    await redis.flushall()
    yield redis
    await redis.aclose()


@pytest.fixture
def store(client: aioredis.Redis) -> RedisStore:
    return RedisStore(client)


STORES: dict[str, Callable[[pytest.FixtureRequest], RedisStore]] = {
    "redis": lambda request: RedisStore(request.getfixturevalue("client")),
    # a real 3-master Redis Cluster (tests/cluster.py), started once per session
    "redis-cluster": lambda request: RedisStore(request.getfixturevalue("cluster_client")),
}


@pytest.fixture(params=sorted(STORES))
def any_store(request: pytest.FixtureRequest) -> RedisStore:
    """Every store implementation in turn, each playing every role: the contract suites' store.
    A new store joins by adding one entry to STORES."""
    return STORES[request.param](request)


@pytest.fixture
def clock() -> SetClock:
    return SetClock(NOW)


@pytest.fixture
def service(store: RedisStore, clock: SetClock) -> Service:
    return Service(store.roles(), clock)


@pytest.fixture
def coordinator(service: Service) -> Coordinator:
    return Coordinator(service.stores, service.clock, service.catalog)


@pytest.fixture
def ledger(store: RedisStore) -> Ledger:
    return Ledger(store)


@pytest.fixture
async def emulator(clock: SetClock) -> AsyncIterator[TelegramEmulator]:
    """The Telegram Bot API on 127.0.0.1, its dates on the test clock."""
    emu = TelegramEmulator(clock=lambda: clock.now_ms() / 1000)
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def bot(emulator: TelegramEmulator, service: Service,
              coordinator: Coordinator) -> AsyncIterator[TelegramBot]:
    """The real PTB Application behind the real webhook route, on the emulator."""
    async with webhook_bot(emulator, service, coordinator) as telegram:
        yield telegram


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    """The Slack Web API on 127.0.0.1."""
    emulator = SlackEmulator()
    await emulator.start()
    yield emulator
    await emulator.stop()


KEY_ENV = "TEST_MODEL_API_KEY"  # the variable a test campaign's models name for their key


@pytest.fixture
async def models(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenAIEmulator]:
    """An OpenAI-compatible endpoint (model-a, model-b), its key in KEY_ENV."""
    monkeypatch.setenv(KEY_ENV, API_KEY)
    server = OpenAIEmulator()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def drafter() -> AsyncIterator[OpenAIDrafter]:
    found = OpenAIDrafter()
    yield found
    await found.close()


@pytest.fixture
def media(tmp_path: Path) -> DirectoryMedia:
    """A media store in the test's folder."""
    return DirectoryMedia(tmp_path / "media")


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A redis-server process of this test's own, for tests that start real processes on it
    (the session's embedded Redis serves the rest)."""
    server = RedisServer(tmp_path / "redis")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def own_store(own_redis: RedisServer) -> AsyncIterator[RedisStore]:
    client = aioredis.from_url(own_redis.url, decode_responses=True)
    yield RedisStore(client)
    await client.aclose()
