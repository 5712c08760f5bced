"""POST /api/experts hands the coordinator a Telegram deep link when Telegram is on, and the
link works: the expert opens it, the web process keeps the update and a worker links and
serves them."""

from __future__ import annotations

import asyncio
from functools import partial

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from adapters.redis.store import RedisStore
from adapters.telegram.app import CHANNEL
from bots.channels import delivery_loop
from bots.runtime import Runtime
from bots.settings import Settings
from bots.telegram_wiring import telegram_delivery
from bots.web import build_app
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.inbox import settled
from core.service.service import Service
from tests.emulators.telegram import BOT, TelegramEmulator
from tests.telegram_session import SECRET, User, post_kind

TOKEN = "api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROFILE = {"id": "dr-lee", "name": "Dr. Lee", "skills": ["cardiology"]}


def runtime_with(client: aioredis.Redis, service: Service, **env: object) -> Runtime:
    store = RedisStore(client)
    settings = Settings(EXPERTLOOP_API_TOKEN=SecretStr(TOKEN), **env)  # type: ignore[arg-type]
    return Runtime(settings, client, store, service,
                   Coordinator(store.roles(), service.clock, service.catalog), Ledger(store))


async def serve(client: aioredis.Redis, service: Service,
                **env: object) -> TestClient:  # type: ignore[type-arg]
    return TestClient(TestServer(build_app(runtime_with(client, service, **env))))


async def test_a_new_expert_gets_a_telegram_link_that_joins_them(
        client: aioredis.Redis, service: Service, coordinator: Coordinator,
        emulator: TelegramEmulator, store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise")
    env = {"TELEGRAM_BOT_TOKEN": SecretStr(emulator.token), "TELEGRAM_API_URL": emulator.base_url,
           "TELEGRAM_WEBHOOK_SECRET": SecretStr(SECRET)}
    runtime = runtime_with(client, service, **env)
    telegram = telegram_delivery(runtime)
    assert telegram is not None
    worker = delivery_loop(runtime, telegram)
    stop = asyncio.Event()
    handling = asyncio.create_task(worker.handle_kept(stop))
    emulator.handled = partial(settled, store, CHANNEL)
    async with await serve(client, service, **env) as http:
        response = await http.post("/api/experts", json=PROFILE, headers=AUTH)
        assert response.status == 201
        invites = (await response.json())["invites"]
        again = await http.post("/api/experts/dr-lee/invite", headers=AUTH)
        other = (await again.json())["invites"]["telegram"]

        link = invites["telegram"]
        prefix = f"https://t.me/{BOT['username']}?start="
        assert link.startswith(prefix) and other.startswith(prefix) and other != link
        assert "/chat/" in invites["web"]  # the web link is still there, unrenamed

        emulator.webhook = (str(http.make_url("/telegram/webhook")), SECRET)
        lee = User(emulator, 777)
        assert await lee.say(f"/start {link.removeprefix(prefix)}") == 200

    stop.set()
    await handling
    await worker.close()
    assert await store.expert_for_identity("telegram:777") == "dr-lee"
    assert "Welcome, Dr. Lee" in lee.texts() and "A is better" in emulator.buttons(lee.card())


async def test_without_telegram_the_link_is_null(
        client: aioredis.Redis, service: Service) -> None:
    async with await serve(client, service) as http:
        response = await http.post("/api/experts", json=PROFILE, headers=AUTH)
        assert response.status == 201
        invites = (await response.json())["invites"]
    assert invites["telegram"] is None and "/chat/" in invites["web"]
