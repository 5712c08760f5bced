"""The Telegram channel end to end: the real python-telegram-bot Application against the
emulated Bot API, updates arriving over the real webhook; checked by what the expert saw and
what the provenance log holds."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from adapters.redis.store import RedisStore
from adapters.telegram.app import TelegramBot, build_telegram
from adapters.telegram.delivery import TelegramDelivery
from adapters.telegram.links import invite_link
from adapters.telegram.polling import run_polling
from bots.runtime import Runtime
from bots.settings import Settings
from bots.worker import run_worker
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.delivery import DeliveryLoop
from core.service.service import Service
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import (
    User,
    answered,
    asked,
    joined,
    post_kind,
    settings,
)


async def test_an_invite_links_the_telegram_user_once(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    await coordinator.add_expert(Expert(id="ann", name="Ann"))
    token = await coordinator.new_invite("ann")
    ann, eve = User(emulator, 501), User(emulator, 666)

    assert await ann.say(f"/start {token}") == 200
    assert await eve.say(f"/start {token}") == 200  # the same link, forwarded: used up

    assert (await coordinator.expert("ann")).identities == ["telegram:501"]
    assert "Welcome, Ann" in ann.texts() and "A is better" in emulator.buttons(ann.card())
    assert "not valid" in eve.texts() and not emulator.chat(666)[-1].get("reply_markup")


async def test_start_without_a_valid_token_links_nothing(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator) -> None:
    await coordinator.add_expert(Expert(id="ann", name="Ann"))
    stranger = User(emulator, 502)
    await stranger.say("/start made-up-token")
    await stranger.say("/next")

    assert (await coordinator.expert("ann")).identities == []
    assert "not valid" in stranger.texts() and "don't know you" in stranger.texts()


async def test_next_shows_a_card_and_a_tap_records_one_answer(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore, clock: SetClock) -> None:
    ann = await asked(coordinator, emulator)
    card = ann.card()
    assert "ibuprofen &amp;" not in card["text"] and "ibuprofen & <warfarin>?" in card["text"]
    assert "Draft A" in card["text"] and "Draft B" in card["text"]

    clock.advance(12)
    assert await ann.press("A is better", card) == 200

    [event] = await answered(store)
    assert event["payload"]["decision"] == {"type": "pairwise", "choice": "A"}
    assert event["payload"]["channel"] == "telegram"
    edited = emulator.messages[(501, card["message_id"])]
    assert "✅ Saved: A is better" in edited["text"] and "reply_markup" not in edited
    assert ann.card()["message_id"] != card["message_id"]  # the next card came at once
    assert ann.callback_texts()[-1].startswith("Saved: A is better")


@pytest.mark.parametrize(("kind", "spec", "taps", "reply", "decision"), [
    ("rate", {"scale": {"min": 1, "max": 5}}, ["4"], [], {"type": "rate", "score": 4}),
    ("verify", {}, ["Accept"], [], {"type": "verify", "verdict": "accept", "text": None,
                                   "reason": None}),
    ("label", {"labels": ["safe", "unsafe"]}, ["unsafe"], [],
     {"type": "label", "labels": ["unsafe"]}),
    ("label", {"labels": ["x", "y", "z"], "multi": True}, ["☐ x", "☐ z", "Save labels"], [],
     {"type": "label", "labels": ["x", "z"]}),
    ("rank", {}, ["C", "A", "Undo", "B", "A", "Confirm"], [],
     {"type": "rank", "order": ["C", "B", "A"]}),
    ("correct", {}, ["✏️ Correct draft A (reply with text)"], ["Take it with food & water."],
     {"type": "correct", "text": "Take it with food & water."}),
    ("write", {}, ["✍️ Write the answer (reply with text)"], ["Ask a pharmacist."],
     {"type": "write", "text": "Ask a pharmacist."}),
    ("verify", {}, ["Override…"], ["Outdated advice", "Never with warfarin."],
     {"type": "verify", "verdict": "override", "text": "Never with warfarin.",
      "reason": "Outdated advice"}),
    ("pairwise", {}, ["Flag…", "Harmful"], [], {"type": "flag", "reason": "harmful",
                                                "note": None}),
])
async def test_every_kind_is_answered_in_the_chat(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator, store: RedisStore,
        kind: str, spec: dict[str, object], taps: list[str], reply: list[str],
        decision: dict[str, object]) -> None:
    await post_kind(coordinator, kind, **spec)
    ann = await joined(coordinator, emulator, "ann", 501)
    await ann.say("/next")
    card = ann.card()
    for tap in taps:
        assert await ann.press(tap, emulator.messages[(501, card["message_id"])]) == 200
    for text in reply:
        assert await ann.reply(text) == 200

    found = await answered(store) + [e for e in await _events(store) if e["type"] == "flagged"]
    assert [e["payload"]["decision"] for e in found] == [decision]
    assert "reply_markup" not in emulator.messages[(501, card["message_id"])]
    if kind == "correct":
        assert "Take it with food." in ann.texts()  # the draft was quoted to correct


async def test_rank_shows_the_order_so_far(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "rank")
    ann = await joined(coordinator, emulator, "ann", 501)
    await ann.say("/next")
    await ann.press("B")
    assert "Order: B" in emulator.buttons(ann.card())
    assert set(emulator.buttons(ann.card())) >= {"A", "C", "Undo"}


async def test_skip_and_none_acceptable(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    ann = await asked(coordinator, emulator)
    await ann.press("Skip")
    await ann.press("None acceptable")
    types = [e["type"] for e in await _events(store)]
    assert types.count("skipped") == 1
    assert [e["payload"]["decision"]["type"] for e in await answered(store)] == [
        "none_acceptable"]


async def test_a_forged_webhook_secret_is_refused_and_records_nothing(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    ann = await asked(coordinator, emulator)
    url, _ = emulator.webhook or ("", "")
    emulator.webhook = (url, "guessed")

    assert await ann.press("A is better") == 403
    emulator.webhook = (url, "")
    assert await ann.press("A is better") == 403

    assert await answered(store) == []


async def test_a_duplicate_update_and_a_double_tap_record_one_answer(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    ann = await asked(coordinator, emulator)
    card = ann.card()
    update = emulator.press_update(501, card, emulator.buttons(card)["B is better"])

    assert await emulator.send(update) == 200
    assert await emulator.send(update) == 200  # Telegram retried the same update
    second_tap = emulator.press_update(501, card, update["callback_query"]["data"])
    assert await emulator.send(second_tap) == 200  # a second tap before the edit landed

    assert len(await answered(store)) == 1
    cards = [m for m in emulator.chat(501) if "reply_markup" in m]
    assert len(cards) == 1  # one next card, not one per tap


async def test_a_stale_button_gets_a_polite_answer_and_records_nothing(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore, clock: SetClock) -> None:
    await post_kind(coordinator, "pairwise", time_limit_s=60)
    ann = await joined(coordinator, emulator, "ann", 501)
    await ann.say("/next")
    card = ann.card()
    clock.advance(61)

    assert await ann.press("A is better", card) == 200

    assert await answered(store) == []
    assert "time ran out" in ann.callback_texts()[-1]
    assert emulator.callback_answers[-1].get("show_alert") == "true"


async def test_someone_elses_button_records_nothing(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise")
    ann = await joined(coordinator, emulator, "ann", 501)
    eve = await joined(coordinator, emulator, "eve", 666)
    await ann.say("/next")
    anns = ann.card()
    stolen = emulator.press_update(666, anns, emulator.buttons(anns)["A is better"])

    assert await emulator.send(stolen) == 200

    assert await answered(store) == []
    assert "not yours" in eve.callback_texts()[-1]


async def test_a_5000_character_draft_arrives_whole(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator) -> None:
    long = " ".join(f"w{i}&<{i}>" for i in range(800))[:5000]
    await post_kind(coordinator, "correct", drafts=[long])
    ann = await joined(coordinator, emulator, "ann", 501)
    await ann.say("/next")

    shown = "".join(emulator.texts(501)).replace("Draft A (cont.)", "")
    assert long.replace(" ", "") in shown.replace(" ", "").replace("\n", "")
    assert all(len(t) <= 4096 for t in emulator.texts(501))


async def test_a_429_is_waited_out_and_the_card_still_arrives(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise")
    ann = await joined(coordinator, emulator, "ann", 501)
    emulator.fail("sendMessage", 429, retry_after=1)
    emulator.fail("sendMessage", 502)
    await ann.say("/next")
    assert await ann.press("A is better") == 200

    assert len(await answered(store)) == 1
    assert len([m for m in emulator.chat(501) if "reply_markup" in m]) == 1
    assert emulator.faults == []


async def test_pause_resume_stats_and_help(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise", pay={"per_task": 1.5, "currency": "USD"})
    ann = await joined(coordinator, emulator, "ann", 501)
    await ann.say("/next")
    await ann.press("Tie")
    await ann.say("/pause")
    await ann.say("/next")
    assert "You are paused" in emulator.texts(501)[-1]
    await ann.say("/resume")
    assert "A is better" in emulator.buttons(ann.card())
    await ann.say("/stats")
    assert "All told: 1 answers" in emulator.texts(501)[-1]
    assert "Agreement with peers: not known yet" in emulator.texts(501)[-1]
    assert "1.50 USD" in emulator.texts(501)[-1]
    await ann.say("/help")
    assert "/pause" in emulator.texts(501)[-1]


async def test_idle_experts_are_offered_one_card_unasked_but_not_in_quiet_hours(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        service: Service) -> None:
    await post_kind(coordinator, "pairwise")
    await joined(coordinator, emulator, "ann", 501)
    await joined(coordinator, emulator, "owl", 502, quiet_hours="00:00-23:59")
    await joined(coordinator, emulator, "pat", 503, paused=True)
    workers = [DeliveryLoop(service, TelegramDelivery(bot)) for _ in range(2)]

    pushed = await asyncio.gather(*(w.push_idle() for w in workers))
    later = DeliveryLoop(service, TelegramDelivery(bot, push_interval_ms=1))
    again = await later.push_idle()  # its turn, but ann's card is still waiting for her

    assert sum(pushed) == 1 and again == 0
    assert len([m for m in emulator.chat(501) if m.get("reply_markup")]) == 1
    assert emulator.chat(502) == [] and emulator.chat(503) == []


async def _events(store: RedisStore) -> list[dict[str, object]]:
    import json
    return [json.loads(e.body) for e in await store.read_events("c1", 0, 100_000)]


async def test_long_polling_joins_and_answers(
        emulator: TelegramEmulator, service: Service, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise")
    await coordinator.add_expert(Expert(id="ann", name="Ann"))
    link = await invite_link(settings(emulator), await coordinator.new_invite("ann"))
    assert link.startswith("https://t.me/expertloop_bot?start=")
    telegram = build_telegram(settings(emulator), service, coordinator, store.roles(), polling=True)
    stop = asyncio.Event()
    polling = asyncio.create_task(run_polling(telegram, stop, timeout_s=1))
    ann = User(emulator, 501)
    try:
        await ann.say("/start " + link.split("start=")[1])
        await emulator.settle(lambda: any("reply_markup" in m for m in emulator.chat(501)))
        first = dict(ann.card())
        await ann.press("B is better", first)
        await emulator.settle(lambda: "✅ Saved: B is better" in ann.texts() and any(
            "reply_markup" in m for m in emulator.chat(501)))
        await ann.press("B is better", first)  # the old card again: recorded already
        await emulator.settle(lambda: len(emulator.callback_answers) == 2)
    finally:
        stop.set()
        await polling
    assert [e["payload"]["decision"]["choice"] for e in await answered(store)] == ["B"]
    assert any(name == "getUpdates" for name, _ in emulator.calls)


async def test_two_workers_as_wired_push_an_idle_expert_one_card(
        emulator: TelegramEmulator, coordinator: Coordinator, service: Service,
        store: RedisStore, client: aioredis.Redis) -> None:
    """`expertloop worker` twice (bots/worker.py) with Telegram on, ticking every 20 ms."""
    await post_kind(coordinator, "pairwise")
    await joined(coordinator, emulator, "ann", 501)
    settings = Settings(TELEGRAM_BOT_TOKEN=emulator.token, TELEGRAM_API_URL=emulator.base_url,
                        EXPERTLOOP_WORKER_INTERVAL=0.02)
    runtime = Runtime(settings, client, store, service, coordinator, Ledger(store))
    stop = asyncio.Event()
    workers = [asyncio.create_task(run_worker(runtime, stop)) for _ in range(2)]

    await emulator.settle(lambda: bool(emulator.chat(501)))
    await asyncio.sleep(0.2)  # ten more ticks of each
    stop.set()
    await asyncio.gather(*workers)

    assert len([m for m in emulator.chat(501) if m.get("reply_markup")]) == 1


async def test_a_one_tap_answer_is_timed_from_the_cards_delivery(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore, clock: SetClock) -> None:
    ann = await asked(coordinator, emulator)
    clock.advance(42)  # reading the card

    assert await ann.press("A is better") == 200

    (answer,) = await answered(store)
    assert answer["payload"]["timing"]["active_seconds"] == 42
