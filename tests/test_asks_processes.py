"""A live ask across real processes: two `expertloop serve` and two `expertloop worker` on one
redis-server, Telegram emulated in the test. An agent posts the ask to one web process; a
worker pushes the card to the expert at once (once, though two workers read the queue); the
expert's tap reaches the other web process, a worker records it; and the agent's long poll on
the first web process returns the decision (read from Redis, not from a process's memory)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.redis.store import RedisStore
from adapters.telegram.webhook import SECRET_HEADER
from core.domain.asks import ASKS_LOG
from core.domain.experts import Expert
from core.domain.timing import SystemClock
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.emulators.telegram import TelegramEmulator
from tests.faults.processes import Expertloop, RedisServer, wait_until, web_environment

TOKEN = "asks-api-token"
SECRET = "asks-webhook-secret"
USER = 501
APPROVE = "✅ Approve"


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    bot_api = TelegramEmulator()
    await bot_api.start()
    yield bot_api
    await bot_api.stop()


@pytest.fixture
async def web(own_redis: RedisServer, emulator: TelegramEmulator, own_store: RedisStore,
              tmp_path: Path) -> AsyncIterator[list[Expertloop]]:
    """Two web processes and two workers, Telegram on; the two web processes."""
    coordinator = Coordinator(own_store.roles(), SystemClock())
    await coordinator.add_expert(Expert(id="ann", name="Ann", skills=["billing"],
                                        identities=[f"telegram:{USER}"]))
    started = []
    for command in ("serve", "serve", "worker", "worker"):
        env = web_environment(own_redis.url, EXPERTLOOP_API_TOKEN=TOKEN,
                              TELEGRAM_BOT_TOKEN=emulator.token, TELEGRAM_API_URL=emulator.base_url,
                              TELEGRAM_WEBHOOK_SECRET=SECRET, EXPERTLOOP_WORKER_INTERVAL="0.3")
        workdir = tmp_path / f"{command}-{len(started)}"
        workdir.mkdir()
        process = Expertloop(command, env, workdir)
        await process.start()
        started.append(process)
    try:
        yield started[:2]
        assert all(p.alive() for p in started), "a process died during the test"
    finally:
        for process in started:
            await process.stop()


def approve_cards(emulator: TelegramEmulator) -> list[dict[str, Any]]:
    return [m for m in emulator.chat(USER) if APPROVE in TelegramEmulator.buttons(m)]


async def test_an_ask_posted_to_one_web_process_is_decided_by_a_tap_on_the_other(
        web: list[Expertloop], emulator: TelegramEmulator, own_store: RedisStore) -> None:
    first, second = web
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{first.url}/api/asks", headers=auth, json={
                "call_id": "call_1", "kind": "approve", "asker": "refund-bot",
                "question": "Refund 120 EUR to order 5512?", "to": {"skills": ["billing"]},
                "proposal": {"function": "refund", "args": {"order": 5512, "amount": 120}},
                "deadline_s": 900}) as reply:
            assert reply.status == 201, await reply.text()
            ask_id = (await reply.json())["id"]

        await wait_until(lambda: approve_cards(emulator), "a worker pushes the card")
        card = approve_cards(emulator)[0]
        assert "Asked by refund-bot · answer within 15 min" in card["text"]

        async def long_poll() -> dict[str, Any]:
            async with http.get(f"{first.url}/api/asks/{ask_id}?wait=30",
                                headers=auth) as reply:
                assert reply.status == 200
                found: dict[str, Any] = await reply.json()
                return found

        polling = asyncio.create_task(long_poll())
        tap = emulator.press_update(USER, card, TelegramEmulator.buttons(card)[APPROVE])
        async with http.post(f"{second.url}/telegram/webhook", json=tap,
                             headers={SECRET_HEADER: SECRET}) as reply:
            assert reply.status == 200
        decided = await polling

    assert decided["status"] == "approved" and decided["decision"] == {"verdict": "approved"}
    assert decided["by"] == ["ann"]
    await wait_until(lambda: "✅ Approved" in "\n".join(emulator.texts(USER)),
                     "the card says what was recorded")
    assert len(approve_cards(emulator)) == 0  # its buttons are gone
    pushed = [m for m in emulator.chat(USER) if "Refund 120 EUR" in (m.get("text") or "")]
    assert len(pushed) == 1  # two workers read the queue; the card went once
    events = [json.loads(e.body) for e in await own_store.read_events(ASKS_LOG, 0, 1000)]
    assert [e["type"] for e in events] == ["ask_posted", "ask_delivered", "ask_answered",
                                           "ask_decided"]
    assert (await Service(own_store.roles(), SystemClock()).asks.view(ask_id)).status == \
        "approved"
