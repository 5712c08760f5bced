"""Live asks in Slack, through the real slack-bolt app behind the real events route on the
emulated Web API (every blocks payload checked by slack_sdk's models and Slack's documented
limits): the worker's push sends the card with who asks, the deadline and the pay above the
question; approve in one press, reject in a modal with its reason, edit in a modal prefilled
with one input per argument; choose, verify (accept, override) and write on the campaign
cards; a colleague's decision updates the other card; a forged button and a reasonless
rejection record nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest

from adapters.redis.store import RedisStore
from adapters.slack.channel import SlackChannel, SlackSettings, build_channel
from adapters.slack.delivery import SlackDelivery
from bots.asks_delivery import AskPush
from core.domain.asks import AskRequest, AskView
from core.domain.experts import Expert
from core.service.coordinator import Coordinator
from core.service.delivery import DeliveryLoop
from core.service.inbox import settled
from core.service.service import Service
from tests.emulators.slack import BOT_TOKEN, SIGNING_SECRET, SlackEmulator, SlackUser
from tests.test_asks_telegram import CALLER, CHOOSE, VERIFY, WRITE, ask_events, asked
from tests.test_slack import handling_presses, web_process


def settings_of(slack: SlackEmulator) -> SlackSettings:
    return SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack.url,
                         post_interval_s=0.0)


@pytest.fixture
def channel(slack: SlackEmulator, service: Service, coordinator: Coordinator,
            store: RedisStore) -> SlackChannel:
    return build_channel(settings_of(slack), service, coordinator, store.roles())


@pytest.fixture
async def events_url(slack: SlackEmulator, channel: SlackChannel) -> AsyncIterator[str]:
    """The web process's route, and a worker's drain of the presses it keeps."""
    async with web_process(slack, channel) as url, handling_presses(
            settings_of(slack), channel.service, channel.coordinator):
        slack.settle = partial(settled, channel.stores.inbox, "slack")
        yield url
        slack.settle = None


def push_of(slack: SlackEmulator, channel: SlackChannel) -> AskPush:
    """The worker's push of live asks, on Slack."""
    loop = DeliveryLoop(channel.service, SlackDelivery(channel, settings_of(slack)))
    return AskPush(channel.service, [loop], "test-worker")


async def member(slack: SlackEmulator, url: str, coordinator: Coordinator,
                 name: str) -> SlackUser:
    user = f"U{name.upper()}"
    await coordinator.add_expert(Expert(id=name, name=name.title(), skills=["billing"],
                                        identities=[f"slack:{user}"]))
    return SlackUser(slack, url, user)


async def post(slack: SlackEmulator, channel: SlackChannel, request: AskRequest) -> AskView:
    """Post the ask and let the worker push its cards."""
    view, created = await channel.service.asks.post(request, CALLER)
    assert created
    await push_of(slack, channel).push(0)
    return view


async def decided(service: Service, view: AskView) -> AskView:
    """Bolt acknowledges a modal first and records after: the view once decided (or as it
    stands after a few seconds)."""
    for _ in range(200):
        found = await service.asks.view(view.id)
        if found.status != "pending":
            return found
        await asyncio.sleep(0.05)
    return found


@pytest.fixture
async def ann(slack: SlackEmulator, events_url: str, coordinator: Coordinator) -> SlackUser:
    return await member(slack, events_url, coordinator, "ann")


def texts_of(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


async def test_the_push_sends_the_card_with_who_asks_the_deadline_and_the_pay(
        slack: SlackEmulator, channel: SlackChannel, ann: SlackUser, store: RedisStore) -> None:
    await post(slack, channel, asked())

    card = slack.cards(ann.id)[-1]
    shown = texts_of(card)
    assert shown.index("Asked by refund-bot* · answer within 15 min · pays 2.00 EUR") < \
        shown.index("Refund 120 EUR to order 5512?")
    assert "Proposed call" in shown and "• order: 5512" in shown and "• currency: EUR" in shown
    ids = [e["action_id"] for b in card["blocks"] if b["type"] == "actions"
           for e in b["elements"]]
    assert ids == ["el_approve:approved", "el_open_reject", "el_open_edit"]  # no skip or flag
    delivered = await ask_events(store, "ask_delivered")
    assert [e["payload"]["message_id"] for e in delivered] == [f"{ann.channel}:{card['ts']}"]


async def test_approve_is_one_press(slack: SlackEmulator, channel: SlackChannel,
                                    ann: SlackUser) -> None:
    view = await post(slack, channel, asked())

    status, _ = await ann.press("el_approve:approved")

    assert status == 200
    done = await decided(channel.service, view)
    assert done.status == "approved" and done.decision == {"verdict": "approved"}
    update = (await slack.wait_for("chat.update"))[-1]
    assert "Approved" in update["text"]
    assert not any(b["type"] == "actions" for b in update["blocks"])


async def test_reject_takes_its_reason_in_a_modal(slack: SlackEmulator, channel: SlackChannel,
                                                  ann: SlackUser, store: RedisStore) -> None:
    view = await post(slack, channel, asked())
    await ann.press("el_open_reject")
    assert await slack.wait_for("views.open")

    status, body = await ann.submit({})  # no reason: the modal stays open and says why
    assert status == 200 and "a rejection needs its reason" in body
    assert await ask_events(store, "ask_answered") == []

    await ann.submit({"reason": "  The order was\nalready refunded. "})
    done = await decided(channel.service, view)
    assert done.status == "rejected" and done.comment == "The order was already refunded."
    update = (await slack.wait_for("chat.update"))[-1]
    assert "Rejected: The order was already refunded." in update["text"]


async def test_edit_opens_a_modal_with_an_input_per_argument(
        slack: SlackEmulator, channel: SlackChannel, ann: SlackUser) -> None:
    view = await post(slack, channel, asked())
    await ann.press("el_open_edit")
    opened = (await slack.wait_for("views.open"))[-1]["view"]
    inputs = {b["block_id"]: b["element"]["initial_value"] for b in opened["blocks"]
              if b["type"] == "input"}
    assert inputs == {"arg:order": "5512", "arg:amount": "120", "arg:currency": '"EUR"'}

    await ann.submit({"arg:order": "5512", "arg:amount": "100", "arg:currency": "USD"})

    done = await decided(channel.service, view)
    assert done.status == "edited"  # numbers stay numbers; text that is not JSON is a string
    assert done.decision == {"verdict": "edited",
                             "args": {"order": 5512, "amount": 100, "currency": "USD"}}
    update = (await slack.wait_for("chat.update"))[-1]
    assert "Edited: amount 100, currency USD" in update["text"]


@pytest.mark.parametrize(("fields", "press", "values", "decision"), [
    (CHOOSE, "el_choose:B", None, {"choice": "B"}),
    (VERIFY, "el_verify", None, {"verdict": "accept"}),
    (VERIFY, "el_open_override", {"text_0": "Refunds take 5 working days.",
                                  "reason": "It is five days."},
     {"verdict": "override", "text": "Refunds take 5 working days.",
      "reason": "It is five days."}),
    (WRITE, "el_open_write", {"text_0": "We refund you today."},
     {"text": "We refund you today."}),
])
async def test_choose_verify_and_write_asks_use_the_campaign_cards(
        slack: SlackEmulator, channel: SlackChannel, ann: SlackUser, fields: dict[str, Any],
        press: str, values: dict[str, str] | None, decision: dict[str, Any]) -> None:
    view = await post(slack, channel, asked(**fields))
    card = slack.cards(ann.id)[-1]
    assert "Asked by refund-bot" in texts_of(card)
    assert not any(b.get("block_id") == "others" for b in card["blocks"])

    await ann.press(press)
    if values is not None:
        assert await slack.wait_for("views.open")
        await ann.submit(values)

    done = await decided(channel.service, view)
    assert done.status == "answered" and done.decision == decision


async def test_a_colleague_deciding_first_updates_the_other_card(
        slack: SlackEmulator, channel: SlackChannel, events_url: str,
        coordinator: Coordinator) -> None:
    ann = await member(slack, events_url, coordinator, "ann")
    bob = await member(slack, events_url, coordinator, "bob")
    view = await post(slack, channel, asked())
    bobs = slack.cards(bob.id)[-1]

    await ann.press("el_approve:approved")
    assert (await decided(channel.service, view)).by == ["ann"]
    assert await push_of(slack, channel).notify(0) == 1

    updated = slack.messages[(bob.channel, bobs["ts"])]
    assert not any(b["type"] == "actions" for b in updated["blocks"])
    assert "Refund 120 EUR to order 5512?" in texts_of(updated)
    assert updated["blocks"][-1]["elements"][0]["text"] == (
        ":no_entry_sign: No longer needed: another expert already decided this question.")


async def test_a_forged_button_records_nothing(
        slack: SlackEmulator, channel: SlackChannel, events_url: str,
        coordinator: Coordinator, store: RedisStore) -> None:
    """Bob is one of the experts the ask allows, yet Ann's button is not his to press."""
    ann = await member(slack, events_url, coordinator, "ann")
    bob = await member(slack, events_url, coordinator, "bob")
    view = await post(slack, channel, asked())

    status, _ = await bob.interact(bob.block_action("el_approve:approved",
                                                    message=slack.cards(ann.id)[-1]))

    assert status == 200
    assert (await channel.service.asks.view(view.id)).status == "pending"
    assert await ask_events(store, "ask_answered") == []
    told = await slack.wait_for("chat.postEphemeral", where=lambda a: a["user"] == bob.id)
    assert "not yours" in told[-1]["text"]
