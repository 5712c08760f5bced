"""What Telegram will not take after the retries is owed in Redis and sent by the worker:
the answer is recorded once, and the expert ends up with the card closed and the next card,
once each, in that order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from adapters.redis.store import RedisStore
from adapters.telegram.app import TelegramBot, build_telegram
from adapters.telegram.delivery import TelegramDelivery
from adapters.telegram.limits import FloodLimiter, Limits
from core.service.coordinator import Coordinator
from core.service.delivery import DeliveryLoop
from core.service.service import Service
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import (
    FAST,
    User,
    answered,
    asked,
    settings,
    webhook_bot,
)

TRIES = Limits().server_error_tries  # the limiter's own retries of a 5xx


@pytest.fixture
async def bot(emulator: TelegramEmulator, service: Service,
              coordinator: Coordinator) -> AsyncIterator[TelegramBot]:
    patient = FAST.model_copy(update={"max_retry_after_s": 2})
    async with webhook_bot(emulator, service, coordinator, patient) as telegram:
        yield telegram


def delivery(telegram: TelegramBot) -> DeliveryLoop:
    """What a worker runs for Telegram (bots/worker.py), on this bot."""
    return DeliveryLoop(telegram.service, TelegramDelivery(telegram))


def live_cards(emulator: TelegramEmulator, user: User) -> list[int]:
    return [m["message_id"] for m in emulator.chat(user.id)
            if "A is better" in emulator.buttons(m)]


def sent_after(emulator: TelegramEmulator, index: int) -> list[str]:
    return [name for name, _ in emulator.calls[index:]]


async def test_a_card_telegram_refuses_for_a_while_is_sent_by_the_drain_once_in_order(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    ann = await asked(coordinator, emulator)
    first = ann.card()
    emulator.fail("editMessageText", 502, times=TRIES)
    emulator.fail("sendMessage", 502, times=TRIES)  # the answer stops at the edit: the drain

    assert await ann.press("A is better", first) == 200  # recorded: Telegram need not resend

    assert len(await answered(store)) == 1
    assert live_cards(emulator, ann) == [first["message_id"]]  # nothing got through yet
    assert len(await store.outbox_items("telegram", 10)) == 2

    assert await delivery(bot).drain() == 1  # the edit; the card waits
    assert "✅ Saved: A is better" in emulator.messages[(501, first["message_id"])]["text"]
    assert live_cards(emulator, ann) == []
    before = len(emulator.calls)
    assert await delivery(bot).drain() == 1  # now the card
    assert await delivery(bot).drain() == 0

    [second] = live_cards(emulator, ann)
    assert second > first["message_id"]
    assert sent_after(emulator, before) == ["sendMessage"]
    assert len(await answered(store)) == 1
    assert await store.outbox_items("telegram", 10) == {}


async def test_an_edit_that_fails_waits_and_the_card_does_not_jump_ahead(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    ann = await asked(coordinator, emulator)
    first = ann.card()
    emulator.fail("editMessageText", 503, times=2 * TRIES)  # the answer and the first drain

    assert await ann.press("B is better", first) == 200
    assert await delivery(bot).drain() == 0  # the edit fails again
    assert live_cards(emulator, ann) == [first["message_id"]]

    assert await delivery(bot).drain() == 2
    edited = emulator.messages[(501, first["message_id"])]
    assert "✅ Saved: B is better" in edited["text"] and "reply_markup" not in edited
    assert len(live_cards(emulator, ann)) == 1
    edit_at = next(i for i, (name, p) in enumerate(emulator.calls)
                   if name == "editMessageText" and int(p["message_id"]) == first["message_id"])
    card_at = max(i for i, (name, _) in enumerate(emulator.calls) if name == "sendMessage")
    assert edit_at < card_at
    assert len(await answered(store)) == 1


async def test_an_owed_edit_of_a_card_the_expert_deleted_is_done_not_retried(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    ann = await asked(coordinator, emulator)
    first = ann.card()
    emulator.fail("editMessageText", 502, times=TRIES)  # the closing edit is owed
    assert await ann.press("A is better", first) == 200
    emulator.delete(501, first["message_id"])  # meanwhile the expert deletes the card

    assert await delivery(bot).drain() == 2  # the edit, the card

    assert emulator.refused == [("editMessageText", "Bad Request: message to edit not found")]
    assert "✅ Saved: A is better" in ann.texts()  # said below, as the card is gone
    assert await store.outbox_items("telegram", 10) == {}
    assert await delivery(bot).drain() == 0
    assert len(live_cards(emulator, ann)) == 1 and len(await answered(store)) == 1


async def test_a_429_asking_for_too_long_a_wait_is_owed_not_waited(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    ann = await asked(coordinator, emulator)
    emulator.fail("sendMessage", 429, retry_after=30)  # the bot allows itself 2 s

    assert await ann.press("Tie") == 200

    assert list(await store.outbox_items("telegram", 10)) == ["card:501"]
    assert live_cards(emulator, ann) == []
    assert await delivery(bot).drain() == 1
    assert len(live_cards(emulator, ann)) == 1
    assert len(await answered(store)) == 1


async def test_a_resent_update_after_a_failure_owes_once_and_records_once(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    ann = await asked(coordinator, emulator)
    card = ann.card()
    emulator.fail("sendMessage", 502, times=TRIES)
    press = emulator.press_update(501, card, emulator.buttons(card)["A is better"])
    assert await emulator.send(press) == 200
    again = emulator.press_update(501, card, press["callback_query"]["data"])  # a double tap
    assert await emulator.send(again) == 200

    assert list(await store.outbox_items("telegram", 10)) == ["card:501"]
    assert await delivery(bot).drain() == 1
    assert len(live_cards(emulator, ann)) == 1
    assert len(await answered(store)) == 1


async def test_the_workers_delivery_loop_waits_out_an_outage_then_sends(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        service: Service, store: RedisStore) -> None:
    ann = await asked(coordinator, emulator)
    emulator.fail("sendMessage", 502, times=TRIES)
    assert await ann.press("A is better") == 200
    telegram = build_telegram(settings(emulator), service, coordinator, store.roles())
    worker = delivery(telegram)

    emulator.fail("getMe", 502, times=TRIES)  # Telegram is down when the worker ticks
    assert await worker.drain() == 0
    assert await worker.drain() == 1
    assert await worker.drain() == 0
    await worker.close()

    assert len(live_cards(emulator, ann)) == 1
    assert len(await answered(store)) == 1


async def test_two_processes_limiters_share_the_bots_overall_rate(store: RedisStore) -> None:
    """Two web processes (two limiters, one Redis) together stay under the bot's rate: each
    send takes the next free slot, 100 ms apart at 10 a second, whoever sends it."""
    limiters = [FloodLimiter(store, Limits(per_second=10)) for _ in range(2)]
    stamps: list[float] = []

    async def send(limiter: FloodLimiter) -> None:
        for _ in range(3):
            await limiter.overall.take()
            stamps.append(time.monotonic())

    await asyncio.gather(*(send(limiter) for limiter in limiters))

    stamps.sort()
    gaps = [later - earlier for earlier, later in zip(stamps, stamps[1:], strict=False)]
    assert len(stamps) == 6 and min(gaps) > 0.08
