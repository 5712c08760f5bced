"""Telegram resends an update until it gets a 2xx, and a resend may reach another web process:
two webhook processes (two aiohttp apps, each its own bot, service and Redis connection, one
Redis) given the same update record nothing twice and send one card."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from adapters.telegram.app import CHANNEL, TelegramBot
from adapters.telegram.limits import Limits
from adapters.telegram.webhook import SECRET_HEADER
from core.domain.cards import Card
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.inbox import settled
from core.service.service import Service
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import (
    CORRECT,
    SECRET,
    User,
    answered,
    joined,
    live_copies,
    post_kind,
    webhook_bot,
)


@pytest.fixture
async def other_service(redis_server: EmbeddedRedis, client: aioredis.Redis,
                        clock: SetClock) -> AsyncIterator[Service]:
    """What a second web process has: its own connection, store and service."""
    other = aioredis.from_url(redis_server.url(), decode_responses=True)
    yield Service(RedisStore(other).roles(), clock)
    await other.aclose()


@pytest.fixture
async def urls(emulator: TelegramEmulator, service: Service, other_service: Service,
               coordinator: Coordinator) -> AsyncIterator[tuple[str, str]]:
    other_coordinator = Coordinator(other_service.stores, other_service.clock,
                                    other_service.catalog)
    async with webhook_bot(emulator, service, coordinator):
        assert emulator.webhook is not None
        first = emulator.webhook[0]
        async with webhook_bot(emulator, other_service, other_coordinator):
            yield first, emulator.webhook[0]


async def post(emulator: TelegramEmulator, url: str, update: dict[str, object]) -> int:
    emulator.webhook = (url, emulator.webhook[1] if emulator.webhook else "")
    return await emulator.send(update)


def cards(emulator: TelegramEmulator, chat: int) -> list[dict[str, object]]:
    return [m for m in emulator.chat(chat) if "A is better" in emulator.buttons(m)]


async def test_a_tap_resent_to_another_process_records_once_and_sends_one_card(
        urls: tuple[str, str], emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise")
    ann = await joined(coordinator, emulator, "ann", 501)
    assert await ann.say("/next") == 200
    card = ann.card()
    tap = emulator.press_update(501, card, emulator.buttons(card)["A is better"])

    assert await post(emulator, urls[0], tap) == 200
    assert await post(emulator, urls[1], tap) == 200  # the resend, to the other process

    assert len(await answered(store)) == 1
    assert len(cards(emulator, 501)) == 1
    assert sum("✅ Saved" in t for t in emulator.texts(501)) == 1
    assert len(emulator.callback_answers) == 1


async def test_a_command_resent_to_another_process_sends_one_card(
        urls: tuple[str, str], emulator: TelegramEmulator, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    await joined(coordinator, emulator, "ann", 501)
    ask = emulator.message_update(501, "/next")

    assert await post(emulator, urls[1], ask) == 200
    assert await post(emulator, urls[0], ask) == 200

    assert len([m for m in emulator.chat(501) if m["from"]["is_bot"]]) == 1
    assert len(cards(emulator, 501)) == 1


async def test_an_update_whose_handling_failed_is_handled_again_from_the_inbox(
        urls: tuple[str, str], emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise")
    await joined(coordinator, emulator, "ann", 501)
    ask = emulator.message_update(501, "/next")
    emulator.fail("sendMessage", 502, times=Limits().server_error_tries)

    assert await post(emulator, urls[0], ask) == 200  # kept: Telegram need not resend it
    assert await post(emulator, urls[1], ask) == 200  # a resend all the same: kept once

    assert len(cards(emulator, 501)) == 1  # the second try sent the card
    assert await store.inbox_size("telegram") == 0


async def test_a_polled_update_is_taken_once_until_forgotten(store: RedisStore) -> None:
    assert await store.take_delivery("telegram", "7", 60_000)
    assert not await store.take_delivery("telegram", "7", 60_000)
    assert await store.take_delivery("slack", "7", 60_000)  # ids are per channel
    await store.forget_delivery("telegram", "7")  # its handling failed
    assert await store.take_delivery("telegram", "7", 60_000)


async def test_a_request_that_is_not_an_update_is_refused_and_kept_nowhere(
        urls: tuple[str, str], store: RedisStore) -> None:
    async with aiohttp.ClientSession() as http:
        for body in (b"not json", b"[1]", b'{"update_id": "7"}', b'{"message": {}}'):
            async with http.post(urls[0], data=body,
                                 headers={SECRET_HEADER: SECRET}) as response:
                assert response.status == 400, body
    assert await store.inbox_size("telegram") == 0


async def a_worker_handles_the_backlog(telegram: TelegramBot, store: RedisStore) -> None:
    stop = asyncio.Event()
    drain = asyncio.create_task(telegram.drain.run_until(stop))
    await settled(store, CHANNEL)
    stop.set()
    await drain


async def test_a_tap_kept_in_time_counts_when_it_was_made_though_handled_after_the_deadline(
        emulator: TelegramEmulator, service: Service, coordinator: Coordinator,
        store: RedisStore, clock: SetClock) -> None:
    await post_kind(coordinator, "pairwise", time_limit_s=60)
    async with webhook_bot(emulator, service, coordinator, handling=False) as telegram:
        ann = await joined(coordinator, emulator, "ann", 501)
        await ann.say("/next")
        await a_worker_handles_the_backlog(telegram, store)
        clock.advance(20)
        assert await ann.press("A is better") == 200  # kept at 20 s; no worker is running
        clock.advance(100)  # past the 60 s time limit before a worker gets to it
        await a_worker_handles_the_backlog(telegram, store)

    (answer,) = await answered(store)
    assert answer["payload"]["timing"]["active_seconds"] == 20  # not 120: no pay for the wait
    assert "✅ Saved" in "\n".join(ann.emulator.texts(501))


async def tap_kept_then_expired(telegram: TelegramBot, ann: User, service: Service,
                                store: RedisStore, clock: SetClock) -> None:
    """Ann taps at 20 s of 60; no worker gets to it before the expiry pass at 120 s."""
    await ann.say("/next")
    await a_worker_handles_the_backlog(telegram, store)
    clock.advance(20)
    assert await ann.press("A is better") == 200
    clock.advance(100)
    assert await service.expire_leases("c1") == 1


async def test_a_tap_kept_in_time_is_saved_late_though_the_expiry_pass_ran_first(
        emulator: TelegramEmulator, service: Service, coordinator: Coordinator,
        store: RedisStore, clock: SetClock) -> None:
    await post_kind(coordinator, "pairwise", n_items=1, time_limit_s=60)
    async with webhook_bot(emulator, service, coordinator, handling=False) as telegram:
        ann = await joined(coordinator, emulator, "ann", 501)
        await tap_kept_then_expired(telegram, ann, service, store, clock)
        await a_worker_handles_the_backlog(telegram, store)

    (answer,) = await answered(store)
    assert answer["payload"]["late"] is True and answer["payload"]["timing"]["active_seconds"] == 20
    assert "✅ Saved" in ann.texts() and live_copies(emulator, 501) == {}
    assert (await coordinator.status("c1")).expired == 0
    ledger = Ledger(store)
    await ledger.seal("c1")
    assert (await ledger.verify("c1")).ok


async def test_a_tap_kept_in_time_is_refused_once_another_expert_has_the_task(
        emulator: TelegramEmulator, service: Service, coordinator: Coordinator,
        store: RedisStore, clock: SetClock) -> None:
    await post_kind(coordinator, "pairwise", n_items=1, time_limit_s=60)
    async with webhook_bot(emulator, service, coordinator, handling=False) as telegram:
        ann = await joined(coordinator, emulator, "ann", 501)
        await tap_kept_then_expired(telegram, ann, service, store, clock)
        await joined(coordinator, emulator, "bob", 502)
        assert isinstance(await service.next_task("bob"), Card)  # the slot Ann's tap wanted
        await a_worker_handles_the_backlog(telegram, store)

    assert await answered(store) == []
    assert ann.callback_texts() == [
        "Not saved: This task expired and was given to another expert; nothing was recorded."]


async def test_a_prompt_tap_kept_in_time_starts_the_clock_when_it_was_made(
        emulator: TelegramEmulator, service: Service, coordinator: Coordinator,
        store: RedisStore, clock: SetClock) -> None:
    await post_kind(coordinator, "correct", n_items=1, time_limit_s=600)
    async with webhook_bot(emulator, service, coordinator, handling=False) as telegram:
        ann = await joined(coordinator, emulator, "ann", 501)
        await ann.say("/next")
        await a_worker_handles_the_backlog(telegram, store)
        clock.advance(30)  # reading the card
        assert await ann.press(CORRECT) == 200  # asks for the text: kept at 30 s
        clock.advance(40)  # no worker gets to it for 40 s
        await a_worker_handles_the_backlog(telegram, store)
        assert await ann.reply("Take it with food, and ask your doctor first.") == 200
        await a_worker_handles_the_backlog(telegram, store)

    (answer,) = await answered(store)
    assert answer["payload"]["timing"]["active_seconds"] == 40  # from the tap, not the handling
    assert "✅ Saved: correct in 40 s" in ann.texts()
