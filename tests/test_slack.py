"""The Slack channel end to end: the real slack-bolt AsyncApp behind POST /slack/events over
real HTTP (button presses kept in the Redis inbox and handed to it by a worker's drain, run here
in the test's process), requests signed as Slack signs them, the Web API answered by
tests/emulators/slack.py, and the provenance log read back from the embedded Redis."""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from adapters.redis import keys as k
from adapters.redis.store import RedisStore
from adapters.slack.answers import InvalidPayload, answer_from_block_action
from adapters.slack.app import build_app
from adapters.slack.blocks import render_card
from adapters.slack.channel import SlackChannel, SlackSettings, build_channel, keep_alive
from adapters.slack.delivery import SlackDelivery
from adapters.slack.inbox import press_drain
from adapters.slack.routes import add_slack_routes
from core.domain.campaigns import CampaignSpec
from core.domain.cards import Card, CardDraft, Estimate
from core.domain.experts import Expert
from core.domain.kinds import Kind
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.delivery import DeliveryLoop
from core.service.inbox import InboxDrain, settled
from core.service.service import Service
from core.service.staging import spool_items
from tests.emulators.block_kit import refusals_of_message
from tests.emulators.slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    SlackEmulator,
    SlackUser,
)
from tests.test_service import events, of_type

DRAFTS = [{"text": f"Draft number {n}: take it with food.", "model": f"m{n}"} for n in range(3)]


@pytest.fixture
def channel(slack: SlackEmulator, service: Service, coordinator: Coordinator,
            store: RedisStore) -> SlackChannel:
    return build_channel(_settings(slack), service, coordinator, store.roles())


def delivery(slack: SlackEmulator, channel: SlackChannel) -> DeliveryLoop:
    """What a worker runs for Slack (bots/worker.py), on this channel."""
    return DeliveryLoop(channel.service, SlackDelivery(channel, _settings(slack)))


def _settings(slack: SlackEmulator) -> SlackSettings:
    return SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack.url,
                         post_interval_s=0.0)


@asynccontextmanager
async def web_process(slack: SlackEmulator, channel: SlackChannel) -> AsyncIterator[str]:
    """`POST /slack/events` on a real HTTP server, as the web process serves it; its URL."""
    app = web.Application()
    add_slack_routes(app, channel, _settings(slack))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/slack/events"))
    finally:
        await server.close()


@pytest.fixture
async def events_url(slack: SlackEmulator, channel: SlackChannel) -> AsyncIterator[str]:
    """The web process's route, and a worker's drain of the presses it keeps, here in one."""
    async with web_process(slack, channel) as url, handling_presses(
            _settings(slack), channel.service, channel.coordinator):
        slack.settle = partial(settled, channel.stores.inbox, "slack")
        yield url
        slack.settle = None


@asynccontextmanager
async def handling_presses(settings: SlackSettings, service: Service, coordinator: Coordinator,
                           **drain_options: Any) -> AsyncIterator[InboxDrain]:
    """What a worker runs for Slack: its own channel, draining the kept presses."""
    worker_channel = build_channel(settings, service, coordinator, service.stores)
    drain = press_drain(worker_channel, settings)
    for name, value in drain_options.items():
        setattr(drain, name, value)
    stop = asyncio.Event()
    async with keep_alive(worker_channel.messenger.client):
        running = asyncio.create_task(drain.run_until(stop))
        try:
            yield drain
        finally:
            stop.set()
            await running


@pytest.fixture
async def ann(slack: SlackEmulator, events_url: str, coordinator: Coordinator) -> SlackUser:
    await coordinator.add_expert(Expert(id="ann", name="Ann", identities=["slack:UANN"]))
    return SlackUser(slack, events_url, "UANN")


async def post_kind(coordinator: Coordinator, kind: str, n_items: int = 3,
                    drafts: list[dict[str, Any]] | None = None, campaign_id: str = "c1",
                    **spec: Any) -> None:
    made = CampaignSpec(id=campaign_id, title=f"A {kind} task", instructions="Be careful.",
                        kind=kind, **spec)
    wanted = drafts or {"pairwise": DRAFTS[:2], "rank": DRAFTS, "write": []}.get(kind, DRAFTS[:1])
    spool = spool_items(made, [{"id": f"{kind}{i}", "prompt": f"Question {i}?", "drafts": wanted}
                               for i in range(n_items)])
    try:
        await coordinator.post_campaign(made, spool)
    finally:
        spool.close()


async def first_card(user: SlackUser) -> dict[str, Any]:
    status, _ = await user.command("next")
    assert status == 200
    cards = await user.slack.wait_for("chat.postMessage")
    assert cards, "no card was posted"
    return copy.deepcopy(user.slack.cards(user.id)[-1])


def lease_of(card: dict[str, Any]) -> str:
    others = next(b for b in card["blocks"] if b.get("block_id") == "others")
    return str(others["elements"][0]["value"].split("|")[0])


async def answered_once(slack: SlackEmulator, store: RedisStore, user: SlackUser) -> dict[str, Any]:
    """After an answer: the card was updated without its buttons, the next card was posted,
    and the log holds exactly one decision event."""
    updates = await slack.wait_for("chat.update")
    assert len(updates) == 1 and not any(b["type"] == "actions" for b in updates[0]["blocks"])
    assert "Saved" in updates[0]["text"]
    assert len(await slack.wait_for("chat.postMessage", 2)) == 2
    decided = [e for e in await events(store)
               if e["type"] in ("answered", "skipped", "flagged")]
    assert len(decided) == 1, decided
    assert decided[0]["payload"]["channel"] == "slack"
    return decided[0]


# every kind, through the buttons, menus and modals an expert uses


@pytest.mark.parametrize(("kind", "spec", "action", "value", "expected"), [
    ("pairwise", {}, "el_choose", "B", {"type": "pairwise", "choice": "B"}),
    ("pairwise", {}, "el_choose", "tie", {"type": "pairwise", "choice": "tie"}),
    ("rate", {"scale": {"min": 1, "max": 7}}, "el_rate", "6", {"type": "rate", "score": 6}),
    ("rate", {"scale": {"min": 0, "max": 20}}, "el_rate", "17", {"type": "rate", "score": 17}),
    ("verify", {}, "el_verify", "accept", {"type": "verify", "verdict": "accept"}),
    ("label", {"labels": ["contract", "tort"]}, "el_label", "tort",
     {"type": "label", "labels": ["tort"]}),
    ("pairwise", {}, "el_skip", None, {"type": "skip"}),
    ("rate", {}, "el_none", None, {"type": "none_acceptable"}),
    ("pairwise", {}, "el_flag", "harmful", {"type": "flag", "reason": "harmful"}),
])
async def test_a_button_answers_the_card(ann: SlackUser, slack: SlackEmulator, store: RedisStore,
                                         coordinator: Coordinator, kind: str,
                                         spec: dict[str, Any], action: str, value: str | None,
                                         expected: dict[str, Any]) -> None:
    await post_kind(coordinator, kind, **spec)
    card = await first_card(ann)

    status, _ = await ann.press(action, value)

    assert status == 200
    event = await answered_once(slack, store, ann)
    assert event["lease"] == lease_of(card)
    delivered = (await of_type(store, "delivered"))[0]["payload"]
    assert delivered == {"channel": "slack", "message_id": f"DANN:{card['ts']}"}
    assert {k: v for k, v in event["payload"]["decision"].items() if v is not None} == expected


@pytest.mark.parametrize(("kind", "spec", "action", "value", "expected"), [
    ("pairwise", {}, "el_choose", "B", {"type": "pairwise", "choice": "B"}),
    ("rate", {"scale": {"min": 1, "max": 7}}, "el_rate", "6", {"type": "rate", "score": 6}),
    ("label", {"labels": ["contract", "tort"]}, "el_label", "tort",
     {"type": "label", "labels": ["tort"]}),
])
async def test_a_card_sent_before_ids_were_unique_still_answers(
        ann: SlackUser, slack: SlackEmulator, store: RedisStore, coordinator: Coordinator,
        kind: str, spec: dict[str, Any], action: str, value: str,
        expected: dict[str, Any]) -> None:
    """Messages already in channels carry the bare action_id on every button of a block."""
    await post_kind(coordinator, kind, **spec)
    await first_card(ann)
    payload = ann.block_action(action, value)
    assert payload["actions"][0]["action_id"] == f"{action}:{value if kind != 'label' else 1}"
    payload["actions"][0]["action_id"] = action
    for block in payload["message"]["blocks"]:
        for element in block.get("elements", []) if block.get("block_id") == "answer" else []:
            element["action_id"] = element["action_id"].partition(":")[0]

    assert (await ann.interact(payload))[0] == 200

    event = await answered_once(slack, store, ann)
    assert {k: v for k, v in event["payload"]["decision"].items() if v is not None} == expected


async def test_several_labels_from_the_multi_select(ann: SlackUser, slack: SlackEmulator,
                                                    store: RedisStore,
                                                    coordinator: Coordinator) -> None:
    await post_kind(coordinator, "label", labels=["contract", "tort", "tax"], multi=True)
    await first_card(ann)

    await ann.press("el_labels_pick", selected=["contract", "tax"])
    await ann.press("el_labels", "labels", selected=["contract", "tax"])

    event = await answered_once(slack, store, ann)
    assert event["payload"]["decision"]["labels"] == ["contract", "tax"]
    assert len(await of_type(store, "opened")) == 1


async def open_modal(user: SlackUser, action: str) -> dict[str, Any]:
    status, _ = await user.press(action)
    assert status == 200
    opened = await user.slack.wait_for("views.open")
    assert opened, "no modal was opened"
    return user.slack.views[user.slack.opened[user.id][-1]]


async def test_rank_in_a_modal_of_ordered_selects(ann: SlackUser, slack: SlackEmulator,
                                                  store: RedisStore,
                                                  coordinator: Coordinator) -> None:
    await post_kind(coordinator, "rank")
    await first_card(ann)
    view = await open_modal(ann, "el_open_rank")
    assert [b["block_id"] for b in view["blocks"]] == ["place_0", "place_1", "place_2"]

    status, _ = await ann.submit({"place_0": "C", "place_1": "A", "place_2": "B"})

    assert status == 200
    event = await answered_once(slack, store, ann)
    assert event["payload"]["decision"]["order"] == ["C", "A", "B"]


async def test_a_ranking_that_names_a_draft_twice_stays_open_with_an_error(
        ann: SlackUser, slack: SlackEmulator, store: RedisStore,
        coordinator: Coordinator) -> None:
    await post_kind(coordinator, "rank")
    await first_card(ann)
    await open_modal(ann, "el_open_rank")

    status, text = await ann.submit({"place_0": "A", "place_1": "A", "place_2": "B"})

    assert status == 200  # Slack shows the errors in the modal, which stays open
    assert json.loads(text) == {"response_action": "errors",
                                "errors": {"place_0": "place every draft exactly once"}}
    assert await of_type(store, "answered") == []


@pytest.mark.parametrize(("kind", "opener", "values", "decision"), [
    ("correct", "el_open_correct", {"text_0": "Take it with food and water."},
     {"type": "correct", "text": "Take it with food and water."}),
    ("write", "el_open_write", {"text_0": "Ask your doctor."},
     {"type": "write", "text": "Ask your doctor."}),
    ("verify", "el_open_override", {"text_0": "Never with warfarin.", "reason": "bleeding"},
     {"type": "verify", "verdict": "override", "text": "Never with warfarin.",
      "reason": "bleeding"}),
])
async def test_edits_happen_in_a_modal_prefilled_with_the_draft(
        ann: SlackUser, slack: SlackEmulator, store: RedisStore, coordinator: Coordinator,
        kind: str, opener: str, values: dict[str, str], decision: dict[str, Any]) -> None:
    await post_kind(coordinator, kind)
    await first_card(ann)
    view = await open_modal(ann, opener)
    prefill = view["blocks"][0]["element"].get("initial_value", "")
    assert prefill == ("" if kind == "write" else DRAFTS[0]["text"])
    assert len(await of_type(store, "opened")) == 1  # opening the modal is the first touch

    await ann.submit(values)

    event = await answered_once(slack, store, ann)
    assert {k: v for k, v in event["payload"]["decision"].items() if v is not None} == decision


# long drafts


async def test_a_6000_character_draft_is_shown_whole_and_edited_whole(
        ann: SlackUser, slack: SlackEmulator, store: RedisStore,
        coordinator: Coordinator) -> None:
    long = "".join(f"Sentence {n} says <something> & more. " for n in range(170))[:6000]
    await post_kind(coordinator, "correct", drafts=[{"text": long, "model": "m"}])
    card = await first_card(ann)
    shown = "".join(b["text"]["text"].split("\n", 1)[1] for b in card["blocks"]
                    if b["type"] == "section" and b["text"]["text"].startswith("*Draft A"))
    assert shown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == long

    view = await open_modal(ann, "el_open_correct")
    parts = {b["block_id"]: b["element"]["initial_value"] for b in view["blocks"]}
    assert len(parts) == 2 and "".join(parts.values()) == long
    await ann.submit({**parts, "text_1": parts["text_1"] + " Added."})

    event = await answered_once(slack, store, ann)
    assert event["payload"]["decision"]["text"] == long + " Added."


# what must not record, or not record twice


async def test_a_forged_signature_is_refused_and_records_nothing(
        ann: SlackUser, slack: SlackEmulator, store: RedisStore,
        coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    await first_card(ann)

    status, _ = await ann.interact(ann.block_action("el_choose", "A"), secret="not-the-secret")
    unsigned = await ann.interact(ann.block_action("el_choose", "A"),
                                  headers={"X-Slack-Signature": "", "X-Slack-Request-Timestamp":
                                           "soon"})

    assert status == unsigned[0] == 401
    assert await store.client.keys(k.inbox_key("slack", "seen:*")) == []  # nothing was kept
    assert await of_type(store, "answered") == []
    assert slack.called("chat.update") == []
    await ann.press("el_choose", "A")  # the same press, signed: kept, then recorded
    assert len(await store.client.keys(k.inbox_key("slack", "seen:*"))) == 1
    assert len(await of_type(store, "answered")) == 1


async def test_a_stale_timestamp_is_refused(ann: SlackUser, slack: SlackEmulator,
                                            store: RedisStore, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    await first_card(ann)

    status, _ = await ann.interact(ann.block_action("el_choose", "A"), age_s=6 * 60)
    replayed_command, _ = await ann.command("next", age_s=6 * 60)

    assert status == replayed_command == 401
    assert await of_type(store, "answered") == []


async def test_a_retried_delivery_is_kept_once_and_a_double_click_records_once(
        ann: SlackUser, slack: SlackEmulator, store: RedisStore,
        coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    await first_card(ann)
    payload = ann.block_action("el_choose", "A")

    statuses = [(await ann.interact(payload))[0],
                (await ann.interact(payload, headers={"X-Slack-Retry-Num": "1",
                                                      "X-Slack-Retry-Reason": "http_timeout"}))[0]]
    assert len(slack.called("chat.update")) == 1  # the retry was acknowledged, not run again
    await ann.interact(ann.block_action("el_choose", "B", message=payload["message"]))

    assert statuses == [200, 200]
    answered = await of_type(store, "answered")
    assert len(answered) == 1 and answered[0]["payload"]["decision"]["choice"] == "A"
    assert len(slack.called("chat.update")) == 2  # the double click shows the first answer
    assert len(slack.called("chat.postMessage")) == 2  # the first card and the next, once


async def test_a_press_waits_in_redis_for_a_worker_while_a_modal_opens_at_once(
        slack: SlackEmulator, service: Service, coordinator: Coordinator, channel: SlackChannel,
        store: RedisStore) -> None:
    """With no worker running, the web process still opens a modal (its trigger_id lives 3 s,
    so it cannot wait) and keeps a button press; the press is recorded once a worker runs."""
    await post_kind(coordinator, "verify")
    await coordinator.add_expert(Expert(id="ann", name="Ann", identities=["slack:UANN"]))
    async with web_process(slack, channel) as url:
        await channel.send_next("UANN", "ann")
        ann = SlackUser(slack, url, "UANN")
        assert (await ann.press("el_open_override"))[0] == 200
        assert await slack.wait_for("views.open")
        assert (await ann.press("el_verify", "accept"))[0] == 200
        assert await store.inbox_size("slack") == 1
        assert await of_type(store, "answered") == []

        async with handling_presses(_settings(slack), service, coordinator):
            await asyncio.wait_for(settled(store, "slack"), 10)
    answered = await of_type(store, "answered")
    assert len(answered) == 1 and answered[0]["payload"]["decision"]["verdict"] == "accept"
    assert len(slack.called("chat.postMessage")) == 2  # the worker posted the next card


async def test_a_press_whose_handling_failed_is_tried_again_and_recorded(
        ann: SlackUser, slack: SlackEmulator, store: RedisStore,
        coordinator: Coordinator) -> None:
    """The drain's Bolt app asks auth.test before its first listener; Slack failing it (past
    the client's retries) makes Bolt answer 200 with an apology and run nothing. The press,
    already acknowledged, must not be lost with it."""
    await post_kind(coordinator, "pairwise")
    card = await first_card(ann)
    slack.fail_next("auth.test", 500, retry_after=0, times=4)

    status, _ = await ann.press("el_choose", "B")

    assert status == 200
    assert slack.failures["auth.test"] == []  # it did fail, every time the client asked
    event = await answered_once(slack, store, ann)
    assert event["lease"] == lease_of(card)
    assert event["payload"]["decision"]["choice"] == "B"
    assert slack.called("chat.postEphemeral") == []  # no "tap again": it was tried again


async def test_a_press_taken_by_a_stuck_worker_is_recorded_by_another(
        slack: SlackEmulator, service: Service, coordinator: Coordinator, channel: SlackChannel,
        store: RedisStore) -> None:
    """The web process keeps the press and acknowledges it; worker A takes it and hangs on it
    (its Slack calls never return: a stuck or dead process). Worker B takes it over after
    `stale_ms` and records it, once."""
    await post_kind(coordinator, "pairwise")
    await coordinator.add_expert(Expert(id="ann", name="Ann", identities=["slack:UANN"]))
    hanging = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = hanging.sockets[0].getsockname()[1]
    stuck = SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                          api_url=f"http://127.0.0.1:{port}/api/", post_interval_s=0.0)
    try:
        async with web_process(slack, channel) as url:
            await channel.send_next("UANN", "ann")
            ann = SlackUser(slack, url, "UANN")
            async with handling_presses(stuck, service, coordinator) as a:
                assert (await ann.press("el_choose", "A"))[0] == 200
                assert await slack.until(lambda: bool(a.running))  # A holds it, and is stuck
                async with handling_presses(_settings(slack), service, coordinator, stale_ms=300):
                    await asyncio.wait_for(settled(store, "slack"), 10)
    finally:
        hanging.close()
    answered = await of_type(store, "answered")
    assert len(answered) == 1 and answered[0]["payload"]["decision"]["choice"] == "A"
    assert len(slack.called("chat.postMessage")) == 2  # B posted the next card
    assert len(slack.called("chat.update")) == 1


async def test_a_stale_button_after_the_lease_expired_explains_and_records_nothing(
        ann: SlackUser, slack: SlackEmulator, store: RedisStore, coordinator: Coordinator,
        service: Service, clock: SetClock) -> None:
    await post_kind(coordinator, "pairwise", time_limit_s=60)
    await first_card(ann)
    clock.advance(61)
    assert await service.expire_leases("c1") == 1

    await ann.press("el_choose", "A")

    told = await slack.wait_for("chat.postEphemeral")
    assert told and "time ran out" in told[0]["text"] and told[0]["user"] == "UANN"
    assert await of_type(store, "answered") == []
    assert slack.called("chat.update") == []


async def test_someone_not_linked_is_told_how_to_join(slack: SlackEmulator, events_url: str,
                                                      store: RedisStore,
                                                      coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    await coordinator.add_expert(Expert(id="ann", name="Ann", identities=["slack:UANN"]))
    ann, eve = SlackUser(slack, events_url, "UANN"), SlackUser(slack, events_url, "UEVE")
    card = await first_card(ann)

    status, text = await eve.command("next")
    await eve.interact(eve.block_action("el_choose", "A", message=card))

    assert status == 200 and "not linked" in text
    assert (await slack.wait_for("chat.postEphemeral"))[0]["user"] == "UEVE"
    assert await of_type(store, "answered") == []


# the Web API misbehaving


async def test_a_429_is_waited_out_and_the_card_still_arrives(
        ann: SlackUser, slack: SlackEmulator, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    slack.fail_next("chat.postMessage", 429, retry_after=0, times=2)

    await ann.command("next")

    posted = await slack.wait_for("chat.postMessage")
    assert len(posted) == 1 and slack.cards("UANN")


async def test_a_5xx_is_retried(ann: SlackUser, slack: SlackEmulator,
                                coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    slack.fail_next("conversations.open", 503, retry_after=0)

    await ann.command("next")

    assert await slack.wait_for("chat.postMessage")


async def test_a_card_slack_refuses_for_good_is_resent_from_the_outbox(
        ann: SlackUser, slack: SlackEmulator, store: RedisStore, coordinator: Coordinator,
        channel: SlackChannel) -> None:
    await post_kind(coordinator, "pairwise")
    await first_card(ann)
    slack.fail_next("chat.postMessage", 500, times=4)  # more than the client's three retries

    await ann.press("el_choose", "A")

    told = await slack.wait_for("chat.postEphemeral", within_s=20)
    assert told and told[0]["text"].startswith("Saved.")
    assert len(await of_type(store, "answered")) == 1
    assert len(slack.called("chat.postMessage")) == 1

    worker = delivery(slack, channel)
    assert await worker.drain() == 1  # what the worker does every tick
    assert await worker.drain() == 0
    assert len(await slack.wait_for("chat.postMessage", 2)) == 2
    assert len(slack.cards("UANN")) == 1  # the first lost its buttons, the next one arrived


async def test_a_confirmation_slack_refuses_is_resent_with_the_card(
        ann: SlackUser, slack: SlackEmulator, store: RedisStore, coordinator: Coordinator,
        channel: SlackChannel) -> None:
    await post_kind(coordinator, "pairwise")
    card = await first_card(ann)
    slack.fail_next("chat.update", 500, times=4)

    await ann.press("el_choose", "A")
    told = await slack.wait_for("chat.postEphemeral", within_s=20)
    assert told and told[0]["text"].startswith("Saved.")
    assert len(slack.called("chat.postMessage")) == 2  # the next card did not wait for it

    assert await delivery(slack, channel).drain() == 1
    assert not any(b["type"] == "actions" for b in slack.messages[("DANN", card["ts"])]["blocks"])
    assert len(slack.called("chat.postMessage")) == 2
    assert len(await of_type(store, "answered")) == 1


async def test_the_outbox_keeps_one_entry_per_key(store: RedisStore) -> None:
    await store.outbox_put("slack", "card:U1", "first")
    await store.outbox_put("slack", "card:U1", "again")
    await store.outbox_put("slack", "card:U2", "other")
    owed = await store.outbox_items("slack", 10)
    assert {key: o.entry for key, o in owed.items()} == {"card:U1": "again", "card:U2": "other"}
    assert await store.outbox_done("slack", "card:U1", owed["card:U1"])
    assert list(await store.outbox_items("slack", 10)) == ["card:U2"]
    assert await store.outbox_items("telegram", 10) == {}


async def test_an_entry_owed_again_while_it_was_being_sent_stays_owed(store: RedisStore) -> None:
    await store.outbox_put("slack", "card:U1", "same")
    sending = (await store.outbox_items("slack", 10))["card:U1"]
    await store.outbox_put("slack", "card:U1", "same")  # a newer card failed meanwhile

    assert not await store.outbox_done("slack", "card:U1", sending)
    again = await store.outbox_items("slack", 10)
    assert list(again) == ["card:U1"]
    assert await store.outbox_done("slack", "card:U1", again["card:U1"])
    assert await store.outbox_items("slack", 10) == {}


# Socket Mode: the same app, reached over a websocket the process opens


async def test_socket_mode_answers_through_the_same_listeners(
        slack: SlackEmulator, channel: SlackChannel, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise")
    await coordinator.add_expert(Expert(id="ann", name="Ann", identities=["slack:UANN"]))
    settings = SlackSettings(bot_token=BOT_TOKEN, api_url=slack.url, post_interval_s=0.0)
    handler = AsyncSocketModeHandler(build_app(channel, settings), APP_TOKEN)
    await handler.connect_async()
    try:
        assert await slack.until(lambda: bool(slack.sockets))
        ann = SlackUser(slack, "unused: Socket Mode", "UANN")
        await channel.send_next("UANN", "ann")

        sent = await slack.envelope("interactive", ann.block_action("el_choose", "B"))

        assert await slack.until(lambda: any(a.get("envelope_id") == sent for a in slack.acks))
        assert len(await slack.wait_for("chat.postMessage", 2)) == 2
        answered = await of_type(store, "answered")
        assert len(answered) == 1 and answered[0]["payload"]["decision"]["choice"] == "B"
    finally:
        await handler.close_async()


# commands, App Home, joining, pushes


async def test_commands_pause_resume_stats_and_help(ann: SlackUser, slack: SlackEmulator,
                                                    coordinator: Coordinator,
                                                    store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise")

    replies = {verb: (await ann.command(verb))[1]
               for verb in ("pause", "stats", "help")}
    assert (await store.load_expert("ann")).paused  # type: ignore[union-attr]
    assert "Today:* 0 of 200" in replies["stats"] and "join <token>" in replies["help"]
    assert "Agreement with peers:* not known yet" in replies["stats"]
    assert slack.called("chat.postMessage") == []

    await ann.command("resume")

    assert await slack.wait_for("chat.postMessage")
    assert not (await store.load_expert("ann")).paused  # type: ignore[union-attr]


async def test_app_home_shows_stats_and_pauses(ann: SlackUser, slack: SlackEmulator,
                                               coordinator: Coordinator,
                                               store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise")
    await first_card(ann)
    await ann.press("el_choose", "A")
    await slack.wait_for("chat.postMessage", 2)

    await ann.open_home()
    home = (await slack.wait_for("views.publish"))[0]["view"]
    assert "*All told:* 1 answers" in json.dumps(home)

    message = {"blocks": home["blocks"], "ts": "0"}
    await ann.interact(ann.block_action("el_home_pause", message=message))
    await slack.wait_for("views.publish", 2)
    assert (await store.load_expert("ann")).paused  # type: ignore[union-attr]
    assert "el_home_start" in json.dumps(slack.homes["UANN"])


async def test_join_with_a_single_use_token(slack: SlackEmulator, events_url: str,
                                            coordinator: Coordinator, store: RedisStore) -> None:
    await coordinator.add_expert(Expert(id="bob", name="Bob"))
    token = await coordinator.new_invite("bob")
    bob, eve = SlackUser(slack, events_url, "UBOB"), SlackUser(slack, events_url, "UEVE")

    _, joined = await bob.command(f"join {token}")
    _, again = await eve.command(f"join {token}")

    assert "Linked" in joined
    assert "Not linked" in again
    assert await store.expert_for_identity("slack:UBOB") == "bob"
    assert await store.expert_for_identity("slack:UEVE") is None


# done when: three experts, a 30-item campaign of mixed kinds, overlap 2, only through Slack


KINDS: list[tuple[str, int, dict[str, Any]]] = [
    ("pairwise", 6, {}), ("rank", 4, {}), ("rate", 4, {"scale": {"min": 1, "max": 5}}),
    ("correct", 4, {}), ("verify", 4, {}), ("label", 4, {"labels": ["ok", "wrong", "unsafe"]}),
    ("write", 4, {}),
]


async def answer_latest(user: SlackUser, turn: int) -> None:
    """Answer the user's current card the way a person would on that kind, varying a little."""
    card = user.slack.cards(user.id)[-1]
    first = next(b for b in card["blocks"] if b.get("block_id") == "answer")["elements"][0]
    action, value = first["action_id"].partition(":")[0], first.get("value", "")
    if action in ("el_choose", "el_rate", "el_label"):
        await user.press(action, value.split("|")[1] if turn % 2 else None)
    elif action == "el_verify":
        await user.press(action, "accept")
    else:
        opened = len(user.slack.opened.get(user.id, []))
        await user.press(action)
        assert await user.slack.until(lambda: len(user.slack.opened.get(user.id, [])) > opened)
        view = user.slack.views[user.slack.opened[user.id][-1]]
        inputs = [b for b in view["blocks"] if b["type"] == "input"]
        if action == "el_open_rank":
            labels = [o["value"] for o in inputs[0]["element"]["options"]]
            places = zip(inputs, labels, strict=True)
            await user.submit({b["block_id"]: label for b, label in places})
        else:
            await user.submit({b["block_id"]: f"{user.id} edit {turn}" for b in inputs})


async def work_until_idle(user: SlackUser) -> int:
    """Ask once, then answer each card as it arrives; every answer brings exactly one new
    message, the next card or the notice that there is nothing left."""
    await user.command("next")
    answered = 0
    while True:
        await user.slack.wait_for("chat.postMessage", answered + 1,
                                  where=lambda args: args["channel"] == user.channel)
        latest = user.slack.dm(user.id)[-1]
        if not any(b["type"] == "actions" for b in latest["blocks"]):
            return answered
        await answer_latest(user, answered)
        answered += 1


async def test_three_experts_answer_a_mixed_campaign_with_overlap_two(
        slack: SlackEmulator, events_url: str, coordinator: Coordinator, store: RedisStore,
        ledger: Ledger) -> None:
    for kind, n_items, spec in KINDS:
        await post_kind(coordinator, kind, n_items=n_items, campaign_id=f"mix-{kind}",
                        overlap=2, **spec)
    users = []
    for name in ("ana", "ben", "cy"):
        await coordinator.add_expert(Expert(id=name, name=name.title(),
                                            identities=[f"slack:U{name.upper()}"]))
        users.append(SlackUser(slack, events_url, f"U{name.upper()}"))

    done = await asyncio.gather(*(work_until_idle(user) for user in users))  # side by side

    assert sum(done) == 2 * 30
    for kind, n_items, _ in KINDS:
        answered = [e for e in await events(store, f"mix-{kind}") if e["type"] == "answered"]
        per_item = Counter(e["item"] for e in answered)
        assert per_item == {f"{kind}{i}": 2 for i in range(n_items)}, kind
        assert len({(e["item"], e["expert"]) for e in answered}) == len(answered)
        assert all(e["payload"]["channel"] == "slack" for e in answered)
        await ledger.seal(f"mix-{kind}")
        verdict = await ledger.verify(f"mix-{kind}")
        assert verdict.ok and verdict.unsealed == 0, verdict


async def test_three_experts_answer_a_pairwise_campaign_with_overlap_two(
        slack: SlackEmulator, events_url: str, coordinator: Coordinator,
        store: RedisStore) -> None:
    """Done when of issue 12: through bolt and the strict emulator, every slot once."""
    await post_kind(coordinator, "pairwise", n_items=5, campaign_id="pairs", overlap=2)
    users = []
    for name in ("ana", "ben", "cy"):
        await coordinator.add_expert(Expert(id=name, name=name.title(),
                                            identities=[f"slack:U{name.upper()}"]))
        users.append(SlackUser(slack, events_url, f"U{name.upper()}"))

    done = await asyncio.gather(*(work_until_idle(user) for user in users))

    assert sum(done) == 2 * 5
    answered = [e for e in await events(store, "pairs") if e["type"] == "answered"]
    assert Counter(e["item"] for e in answered) == {f"pairwise{i}": 2 for i in range(5)}
    assert len({(e["item"], e["expert"]) for e in answered}) == len(answered) == 10
    assert {e["payload"]["decision"]["choice"] for e in answered} <= {"A", "B", "tie"}
    posted = [m for user in users for m in slack.dm(user.id)]
    assert len(posted) == len(slack.called("chat.postMessage"))  # Slack took every card


# Block Kit limits, without the network


def test_a_huge_card_continues_over_several_messages_and_loses_nothing() -> None:
    texts = [f"{label} " + "x&y<z> " * 2000 for label in "ABCDEFGHIJKL"]  # 12 drafts, ~14k each
    big = Card(lease="1.abcdefghijklmnopq", campaign="c1", title="Rank these", instructions="I",
               kind=Kind.rank, item="q1", prompt="P", expires_at=0,
               drafts=[CardDraft(label=t[0], text=t) for t in texts],
               allowed=["rank"], estimate=Estimate(seconds=60))

    messages = render_card(big)

    assert len(messages) > 1
    assert all(refusals_of_message(blocks) == [] for blocks in messages)
    assert all(not any(b["type"] == "actions" for b in m) for m in messages[:-1])
    sections = [b["text"]["text"] for m in messages for b in m if b["type"] == "section"]
    for text in texts:
        pieces = [s.split("\n", 1)[1] for s in sections if s.startswith(f"*Draft {text[0]}")]
        joined = "".join(pieces)
        assert joined.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == text


def test_button_values_are_short_tokens() -> None:
    card = Card(lease="1.abcdefghijklmnopq", campaign="c1", title="t", instructions="",
                kind=Kind.label, item="q1", prompt="p", drafts=[], allowed=["label"],
                labels=["a", "b"], expires_at=0, estimate=Estimate(seconds=60))
    values = [e.get("value") for b in render_card(card)[-1] if b["type"] == "actions"
              for e in b["elements"] if e.get("value")]
    assert values and all(len(v) <= 40 and v.startswith("1.abcdefghijklmnopq|") for v in values)


@pytest.mark.parametrize("body", [
    {"actions": [{"action_id": "el_home_start", "value": "start"}]},
    {"actions": [{"action_id": "el_choose", "value": "no-choice"}]},
    {"actions": [{"action_id": "el_choose", "value": "1.abc|C"}]},
    {"actions": [{"action_id": "el_rate", "value": "1.abc|five"}]},
])
def test_a_payload_that_makes_no_decision_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidPayload):
        answer_from_block_action("ann", body)


async def test_presses_kept_in_time_count_when_they_were_made_though_handled_later(
        slack: SlackEmulator, service: Service, coordinator: Coordinator, channel: SlackChannel,
        store: RedisStore, clock: SetClock) -> None:
    """The web process keeps a menu pick at 20 s and the answer at 30 s, and no worker gets to
    them for 100 s: the expert's time runs from the pick to the answer, not to the handling."""
    await post_kind(coordinator, "label", labels=["contract", "tort", "tax"], multi=True,
                    time_limit_s=600)
    await coordinator.add_expert(Expert(id="ann", name="Ann", identities=["slack:UANN"]))
    async with web_process(slack, channel) as url:
        await channel.send_next("UANN", "ann")
        ann = SlackUser(slack, url, "UANN")
        clock.advance(20)
        assert (await ann.press("el_labels_pick", selected=["contract", "tax"]))[0] == 200
        clock.advance(10)
        assert (await ann.press("el_labels", "labels", selected=["contract", "tax"]))[0] == 200
        clock.advance(100)
        async with handling_presses(_settings(slack), service, coordinator):
            await asyncio.wait_for(settled(store, "slack"), 10)

    (event,) = await of_type(store, "answered")
    assert event["payload"]["timing"]["active_seconds"] == 10
    assert "10 s" in slack.called("chat.update")[0]["text"]
