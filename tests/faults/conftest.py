"""Fixtures of the fault suite: a redis-server of the test's own, the Telegram emulator, the
expertloop processes (each killed when the test ends), and the in-process objects a
coordinator's setup script would use, all pointed at the same Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters.redis.store import RedisStore
from adapters.telegram.app import CHANNEL
from core.domain.timing import SystemClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.inbox import settled
from core.service.service import Service
from tests.emulators.telegram import TelegramEmulator
from tests.faults.processes import Expertloop, RedisServer, environment
from tests.telegram_session import SECRET


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        assert server.process is None or server.process.poll() is not None


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """The setup script's and the checks' connection; it outlives Redis restarts by retrying a
    command once on a fresh connection (the server closed the old ones)."""
    redis = aioredis.from_url(redis_server.url, decode_responses=True,
                              retry=Retry(ExponentialBackoff(), 5),
                              retry_on_error=[RedisConnectionError])
    yield redis
    await redis.aclose()


@pytest.fixture
def service(client: aioredis.Redis) -> Service:
    return Service(RedisStore(client).roles(), SystemClock())


@pytest.fixture
def coordinator(service: Service) -> Coordinator:
    return Coordinator(service.stores, service.clock, service.catalog)


@pytest.fixture
def ledger(service: Service) -> Ledger:
    return Ledger(service.stores.log)


@pytest.fixture
async def emulator(service: Service) -> AsyncIterator[TelegramEmulator]:
    """After the webhook's 200, a delivery waits until the bot handled what it kept."""
    emu = TelegramEmulator()
    emu.handled = partial(settled, service.stores.inbox, CHANNEL)
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
def telegram_env(redis_server: RedisServer, emulator: TelegramEmulator) -> dict[str, str]:
    """What `serve` needs to run the Telegram webhook against the emulator."""
    return environment(redis_server.url, TELEGRAM_BOT_TOKEN=emulator.token,
                       TELEGRAM_API_URL=emulator.base_url, TELEGRAM_WEBHOOK_SECRET=SECRET,
                       EXPERTLOOP_WORKER_INTERVAL="0.2")


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Callable[..., Expertloop]]:
    """Make expertloop processes; every one of them is stopped (or killed) when the test ends."""
    made: list[Expertloop] = []

    def make(command: str, env: dict[str, str]) -> Expertloop:
        workdir = tmp_path / f"{command}-{len(made)}"
        workdir.mkdir()
        made.append(Expertloop(command, env, workdir))
        return made[-1]

    yield make
    for process in made:
        await process.stop()
    assert not [p.command for p in made if p.alive()]
