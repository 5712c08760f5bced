"""Live asks on Telegram, through the real python-telegram-bot Application behind the real
webhook on the emulated Bot API: the worker's push (bots/asks_delivery.py) sends the card at
once with who asks, the deadline and the pay above the question; every kind is answered as an
expert would (approve in one tap, reject with its reason, edit the arguments as JSON; choose;
verify accept and override; write), decided in the AskView; a colleague's decision, a
withdrawal or an expiry edits the other cards; a forged button and a reasonless rejection
record nothing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from adapters.redis.store import RedisStore
from adapters.telegram.app import TelegramBot
from adapters.telegram.delivery import TelegramDelivery
from bots.asks_delivery import AskPush
from core.domain.asks import ASKS_LOG, AskRequest, AskView
from core.service.coordinator import Coordinator
from core.service.delivery import DeliveryLoop
from core.service.service import Service
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import User, joined

CALLER = "agent-digest"
ARGS = {"order": 5512, "amount": 120, "currency": "EUR"}


def asked(**fields: Any) -> AskRequest:
    """An approve ask for the billing experts, as an agent posts it; `fields` change it."""
    base: dict[str, Any] = {
        "call_id": "call-1", "kind": "approve", "question": "Refund 120 EUR to order 5512?",
        "context": "The parcel arrived broken.", "asker": "refund-bot",
        "proposal": {"function": "refund", "args": ARGS}, "to": {"skills": ["billing"]},
        "deadline_s": 900, "pay": {"per_ask": 2.0, "currency": "EUR"}}
    return AskRequest.model_validate(base | fields)


CHOOSE = {"kind": "choose", "proposal": None, "question": "Which reply goes to the customer?",
          "drafts": [{"text": "We refund you today.", "model": "m", "model_version": "1"},
                     {"text": "Send the parcel back first.", "model": "m",
                      "model_version": "1"}]}
VERIFY = {"kind": "verify", "proposal": None, "question": "Is this reply right?",
          "drafts": [{"text": "Refunds take 3 days.", "model": "m", "model_version": "1"}]}
WRITE = {"kind": "write", "proposal": None, "question": "What do we tell the customer?"}


def push_of(service: Service, bot: TelegramBot) -> AskPush:
    """The worker's push of live asks, on Telegram."""
    return AskPush(service, [DeliveryLoop(service, TelegramDelivery(bot))], "test-worker")


async def post(service: Service, bot: TelegramBot, request: AskRequest) -> AskView:
    """Post the ask and let the worker push its cards."""
    view, created = await service.asks.post(request, CALLER)
    assert created
    await push_of(service, bot).push(0)
    return view


async def experts(coordinator: Coordinator, emulator: TelegramEmulator,
                  *names: str) -> list[User]:
    return [await joined(coordinator, emulator, name, 501 + n, skills=["billing"])
            for n, name in enumerate(names)]


async def ask_events(store: RedisStore, kind: str) -> list[dict[str, Any]]:
    found = [json.loads(e.body) for e in await store.read_events(ASKS_LOG, 0, 10_000)]
    return [e for e in found if e["type"] == kind]


@pytest.fixture
async def ann(bot: TelegramBot, coordinator: Coordinator, emulator: TelegramEmulator) -> User:
    return (await experts(coordinator, emulator, "ann"))[0]


async def test_the_push_sends_the_card_with_who_asks_the_deadline_and_the_pay(
        bot: TelegramBot, service: Service, ann: User, store: RedisStore) -> None:
    await post(service, bot, asked())

    card = ann.card()
    text = card["text"]
    header = text.index("Asked by refund-bot · answer within 15 min · pays 2.00 EUR")
    assert header < text.index("Refund 120 EUR to order 5512?")  # above the question
    assert "The parcel arrived broken." in text
    assert "Proposed call: refund" in text and "order: 5512" in text and "currency: EUR" in text
    assert set(TelegramEmulator.buttons(card)) == {"✅ Approve", "Reject…", "Edit…"}
    delivered = await ask_events(store, "ask_delivered")
    assert [(e["payload"]["channel"], e["payload"]["message_id"]) for e in delivered] == [
        ("telegram", f"{ann.id}:{card['message_id']}")]


async def test_approve_is_one_tap_and_the_card_says_what_was_recorded(
        bot: TelegramBot, service: Service, ann: User) -> None:
    view = await post(service, bot, asked())
    card = ann.card()

    assert await ann.press("✅ Approve") == 200

    decided = await service.asks.view(view.id)
    assert decided.status == "approved" and decided.decision == {"verdict": "approved"}
    assert decided.by == ["ann"]
    closed = next(m for m in ann.emulator.chat(ann.id) if m["message_id"] == card["message_id"])
    assert "reply_markup" not in closed and closed["text"].endswith("✅ Approved")
    assert "no tasks" in ann.texts().lower() or "nothing" in ann.texts().lower()


async def test_reject_asks_for_the_reason_and_records_it(
        bot: TelegramBot, service: Service, ann: User) -> None:
    view = await post(service, bot, asked())

    await ann.press("Reject…")
    assert "Why reject this call?" in ann.texts()
    assert await ann.reply("The order was already refunded.") == 200

    decided = await service.asks.view(view.id)
    assert decided.status == "rejected" and decided.decision == {"verdict": "rejected"}
    assert decided.comment == "The order was already refunded."
    assert "✅ Rejected: The order was already refunded." in ann.texts()


async def test_a_rejection_without_its_reason_records_nothing(
        bot: TelegramBot, service: Service, ann: User, store: RedisStore) -> None:
    view = await post(service, bot, asked())
    await ann.press("Reject…")

    assert await ann.reply("   ") == 200

    assert (await service.asks.view(view.id)).status == "pending"
    assert await ask_events(store, "ask_answered") == []
    assert "Not saved: a rejection needs its reason" in ann.texts()
    await ann.reply("Wrong order number.")  # the prompt came again: answering it records
    assert (await service.asks.view(view.id)).comment == "Wrong order number."


async def test_edit_takes_the_arguments_as_json_and_keeps_numbers_numbers(
        bot: TelegramBot, service: Service, ann: User) -> None:
    view = await post(service, bot, asked())

    await ann.press("Edit…")
    prompt = ann.texts()
    shown = prompt[prompt.index("{"):prompt.rindex("}") + 1]
    assert json.loads(shown) == ARGS  # the arguments to copy and change
    assert await ann.reply(json.dumps({**ARGS, "amount": 100})) == 200

    decided = await service.asks.view(view.id)
    assert decided.status == "edited"
    assert decided.decision == {"verdict": "edited", "args": {**ARGS, "amount": 100}}
    assert "✅ Edited: amount 100" in ann.texts()


async def test_an_edit_that_is_not_a_json_object_is_refused_with_the_parse_error(
        bot: TelegramBot, service: Service, ann: User, store: RedisStore) -> None:
    view = await post(service, bot, asked())
    await ann.press("Edit…")

    await ann.reply('{"order": 5512, "amount": 100')
    await ann.reply("[1, 2]")

    assert (await service.asks.view(view.id)).status == "pending"
    assert await ask_events(store, "ask_answered") == []
    texts = ann.texts()
    assert "Not saved: that is not valid JSON (Expecting ',' delimiter" in texts
    assert "Not saved: the arguments must be one JSON object" in texts
    await ann.reply('{"order": 5512, "amount": 100}')
    assert (await service.asks.view(view.id)).status == "edited"


@pytest.mark.parametrize(("fields", "taps", "decision"), [
    (CHOOSE, ["B is better"], {"choice": "B"}),
    (VERIFY, ["Accept"], {"verdict": "accept"}),
    (WRITE, ["✍️ Write the answer (reply with text)", "We refund you today."],
     {"text": "We refund you today."}),
    (VERIFY, ["Override…", "Refunds take 5 days.", "Refunds take 5 working days."],
     {"verdict": "override", "text": "Refunds take 5 working days.",
      "reason": "Refunds take 5 days."}),
])
async def test_choose_verify_and_write_asks_use_the_campaign_cards(
        bot: TelegramBot, service: Service, ann: User, fields: dict[str, Any],
        taps: list[str], decision: dict[str, Any]) -> None:
    view = await post(service, bot, asked(**fields))
    card = ann.card()
    assert "Asked by refund-bot" in card["text"]
    assert not {"Skip", "None acceptable", "Flag…"} & set(TelegramEmulator.buttons(card))

    await ann.press(taps[0])
    for text in taps[1:]:
        assert await ann.reply(text) == 200

    decided = await service.asks.view(view.id)
    assert decided.status == "answered" and decided.decision == decision


async def test_a_colleague_deciding_first_updates_the_other_card(
        bot: TelegramBot, service: Service, coordinator: Coordinator,
        emulator: TelegramEmulator) -> None:
    ann, bob = await experts(coordinator, emulator, "ann", "bob")
    view = await post(service, bot, asked())
    bobs = copy.deepcopy(bob.card())  # as Bob saw it: the emulator edits its own in place

    await ann.press("✅ Approve")
    assert await push_of(service, bot).notify(0) == 1

    updated = next(m for m in emulator.chat(bob.id) if m["message_id"] == bobs["message_id"])
    assert "reply_markup" not in updated  # its buttons are gone
    assert updated["text"].startswith(bobs["text"])  # the card as it was, and why
    assert updated["text"].endswith(
        "🚫 No longer needed: another expert already decided this question.")
    await bob.press("✅ Approve", bobs)  # a tap on the stale copy
    assert (await service.asks.view(view.id)).by == ["ann"]


async def test_a_withdrawn_ask_updates_every_card(
        bot: TelegramBot, service: Service, coordinator: Coordinator,
        emulator: TelegramEmulator) -> None:
    ann, bob = await experts(coordinator, emulator, "ann", "bob")
    view = await post(service, bot, asked())

    await service.asks.withdraw(view.id)
    assert await push_of(service, bot).notify(0) == 2

    for user in (ann, bob):
        assert emulator.live_messages(user.id) == []
        assert user.texts().endswith("No longer needed: the asker withdrew this question.")


async def test_a_forged_button_records_nothing(
        bot: TelegramBot, service: Service, coordinator: Coordinator,
        emulator: TelegramEmulator, store: RedisStore) -> None:
    """Bob is one of the experts the ask allows, yet Ann's button is not his to press."""
    ann, bob = await experts(coordinator, emulator, "ann", "bob")
    view = await post(service, bot, asked())
    anns = ann.card()

    assert await bob.press("✅ Approve", anns) == 200

    assert (await service.asks.view(view.id)).status == "pending"
    assert await ask_events(store, "ask_answered") == []
    assert any("not yours" in text for text in bob.callback_texts())


async def test_an_all_of_answer_says_it_waits_for_more(
        bot: TelegramBot, service: Service, coordinator: Coordinator,
        emulator: TelegramEmulator) -> None:
    ann, bob = await experts(coordinator, emulator, "ann", "bob")
    view = await post(service, bot, asked(quorum={"all_of": 2}))

    await ann.press("✅ Approve")
    assert "✅ Approved. Waiting for 1 more expert" in ann.texts()
    assert (await service.asks.view(view.id)).status == "pending"

    await bob.press("✅ Approve")
    assert (await service.asks.view(view.id)).by == ["ann", "bob"]
