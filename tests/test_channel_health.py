"""What the expert never saw before: a request set aside after its tries, a card the platform
refuses, a platform unreachable at start. Real bolt and PTB against the emulators, the real
web app's /healthz and API, the real Redis; checked by what the chat shows and what is kept."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from adapters.redis.store import RedisStore
from adapters.slack.channel import SlackSettings, build_channel
from bots.channels import delivery_loop
from bots.commands import status as campaign_status
from bots.runtime import Runtime
from bots.settings import Settings
from bots.slack_wiring import slack_delivery
from bots.telegram_wiring import telegram_delivery
from bots.web import build_app
from core.domain.cards import Card
from core.domain.experts import Expert
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.inbox import SET_ASIDE_TEXT, settled
from core.service.service import Service
from tests.cluster import free_ports
from tests.emulators.slack import BOT_TOKEN, SIGNING_SECRET, SlackEmulator, SlackUser
from tests.emulators.telegram import TelegramEmulator
from tests.faults.processes import wait_until
from tests.telegram_session import FAST, SECRET, User, joined, webhook_bot
from tests.telegram_session import post_kind as post_telegram_kind
from tests.test_service import events
from tests.test_slack import handling_presses, post_kind, web_process

FAST_RETRY = {"EXPERTLOOP_CHANNEL_RETRY_S": 0.2, "EXPERTLOOP_CHANNEL_RETRY_MAX_S": 0.5}


def runtime_with(client: aioredis.Redis, service: Service, **env: Any) -> Runtime:
    settings = Settings(**env)  # type: ignore[arg-type]  # the environment's names
    return Runtime(settings, client, RedisStore(client),
                   service, Coordinator(service.stores, service.clock, service.catalog),
                   Ledger(service.stores.log))


@asynccontextmanager
async def web_app(runtime: Runtime) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    """The web process as `expertloop serve` builds it."""
    async with TestClient(TestServer(build_app(runtime))) as http:
        yield http


async def health(http: TestClient, channel: str) -> dict[str, Any]:  # type: ignore[type-arg]
    response = await http.get("/healthz")
    assert response.status == 200  # a channel's trouble never makes the process unhealthy
    found: dict[str, Any] = (await response.json())["channels"][channel]
    return found


async def status_json(runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """`expertloop campaign status c1 --json`."""
    capsys.readouterr()
    await campaign_status(runtime, argparse.Namespace(campaign="c1", json=True))
    found: dict[str, Any] = json.loads(capsys.readouterr().out)
    return found


def slack_settings(url: str) -> SlackSettings:
    return SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=url,
                         post_interval_s=0.0)


# a request set aside after its tries


async def test_a_slack_press_that_fails_every_try_is_told_ephemerally_and_counted(
        slack: SlackEmulator, service: Service, coordinator: Coordinator,
        client: aioredis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    channel = build_channel(slack_settings(slack.url), service, coordinator, service.stores)
    await post_kind(coordinator, "pairwise")
    await coordinator.add_expert(Expert(id="ann", name="Ann", identities=["slack:UANN"]))
    async with web_process(slack, channel) as url, handling_presses(
            slack_settings(slack.url), service, coordinator, retry_pause_s=0.01):
        ann = SlackUser(slack, url, "UANN")
        assert (await ann.command("next"))[0] == 200
        await slack.wait_for("chat.postMessage")
        slack.refuse_next("auth.test", "invalid_auth", times=5)  # Bolt runs no listener

        assert (await ann.press("el_choose", "B"))[0] == 200  # kept, then fails 5 times
        [told] = await slack.wait_for("chat.postEphemeral")

    assert told["text"] == SET_ASIDE_TEXT and told["user"] == "UANN"
    assert told["channel"] == ann.channel  # where the expert pressed
    assert not [e for e in await events(service.stores.log) if e["type"] == "answered"]
    runtime = runtime_with(client, service, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=slack.url)
    async with web_app(runtime) as http:
        assert (await health(http, "slack"))["dead_requests"] == 1
        assert (await (await http.get("/api/campaigns/c1")).json())["dead_requests"] == 1
    assert (await status_json(runtime, capsys))["dead_requests"] == 1


async def test_a_telegram_tap_that_fails_every_try_is_told_in_the_chat_and_counted(
        emulator: TelegramEmulator, service: Service, coordinator: Coordinator,
        client: aioredis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    one_try = FAST.model_copy(update={"server_error_tries": 1})
    async with webhook_bot(emulator, service, coordinator, limits=one_try) as telegram:
        telegram.drain.retry_pause_s = 0.01
        await post_telegram_kind(coordinator, "rank")
        ann = await joined(coordinator, emulator, "ann", 501)
        await ann.say("/next")
        card = ann.card()
        pick = next(data for data in emulator.buttons(card).values() if data.startswith("k|"))
        emulator.fail("answerCallbackQuery", 502, retry_after=None, times=5)

        assert await emulator.send(emulator.press_update(501, card, pick)) == 200
        await emulator.settle(lambda: SET_ASIDE_TEXT in ann.texts())

    assert emulator.chat(501)[-1]["text"] == SET_ASIDE_TEXT
    runtime = runtime_with(client, service)
    async with web_app(runtime) as http:
        assert (await health(http, "telegram"))["dead_requests"] == 1
    assert (await status_json(runtime, capsys))["dead_requests"] == 1


# a card the platform refuses


async def test_a_card_slack_refuses_goes_back_to_the_pool_at_once(
        slack: SlackEmulator, service: Service, coordinator: Coordinator, store: RedisStore,
        client: aioredis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    channel = build_channel(slack_settings(slack.url), service, coordinator, service.stores)
    await post_kind(coordinator, "pairwise", n_items=1, overlap=1)
    for name in ("ann", "bob"):
        await coordinator.add_expert(Expert(id=name, name=name, identities=[f"slack:U{name}"]))
    slack.refuse_next("chat.postMessage", "invalid_blocks")

    with caplog.at_level(logging.ERROR, "expertloop.delivery"):
        await channel.send_next("Uann", "ann")

    assert "invalid_blocks" in caplog.text  # logged at ERROR with Slack's error
    [notice] = slack.dm("Uann")  # and no card of a task they would hold
    assert "went back to the pool" in notice["text"]
    assert (await coordinator.status("c1")).in_progress == 0
    taken = await service.next_task("bob")  # the only slot is free for someone else
    assert isinstance(taken, Card) and taken.item == "pairwise0"
    await assert_undeliverable(service, coordinator, "invalid_blocks")
    async with web_app(runtime_with(client, service, SLACK_BOT_TOKEN=BOT_TOKEN,
                                    SLACK_API_URL=slack.url)) as http:
        assert (await health(http, "slack"))["refused_cards"] == 1


async def test_a_card_telegram_refuses_goes_back_to_the_pool_at_once(
        bot: Any, emulator: TelegramEmulator, service: Service, coordinator: Coordinator,
        client: aioredis.Redis) -> None:
    await post_telegram_kind(coordinator, "pairwise", n_items=1, overlap=1)
    ann = await joined(coordinator, emulator, "ann", 501)
    await coordinator.add_expert(Expert(id="bob", name="Bob"))
    emulator.fail("sendMessage", 403, retry_after=None)  # Forbidden: refused for good

    await ann.say("/next")

    shown = [m for m in emulator.chat(501) if m["from"]["is_bot"]]
    assert [list(emulator.buttons(m)) for m in shown] == [["Next task"]]  # no task on show
    assert "went back to the pool" in ann.texts()
    assert (await coordinator.status("c1")).in_progress == 0
    assert isinstance(await service.next_task("bob"), Card)
    await assert_undeliverable(service, coordinator, "Forbidden")
    async with web_app(runtime_with(client, service)) as http:
        assert (await health(http, "telegram"))["refused_cards"] == 1


async def assert_undeliverable(service: Service, coordinator: Coordinator, error: str) -> None:
    """One `undeliverable` event, by the system, with the platform's error; the chain holds."""
    [event] = [e for e in await events(service.stores.log) if e["type"] == "undeliverable"]
    assert event["actor"] == "system" and event["expert"] in ("ann",)
    assert error in event["payload"]["error"]
    ledger = Ledger(service.stores.log)
    await ledger.seal("c1")
    assert (await ledger.verify("c1")).ok


# a platform unreachable at start


async def test_telegram_unreachable_at_start_degrades_the_channel_until_it_answers(
        service: Service, coordinator: Coordinator, client: aioredis.Redis) -> None:
    (port,) = free_ports(1)  # nothing listens there yet: the Bot API refuses connections
    emulator = TelegramEmulator()
    runtime = runtime_with(client, service, TELEGRAM_BOT_TOKEN=emulator.token,
                           TELEGRAM_API_URL=f"http://127.0.0.1:{port}/bot",
                           TELEGRAM_WEBHOOK_SECRET=SECRET, **FAST_RETRY)
    stop = asyncio.Event()
    async with web_app(runtime) as http:  # started: getMe failed, and no traceback
        telegram = telegram_delivery(runtime)
        assert telegram is not None
        loop = delivery_loop(runtime, telegram)
        worker = asyncio.create_task(loop.handle_kept(stop))  # what the worker runs
        try:
            down = await health(http, "telegram")
            assert down["state"] == "degraded" and "connect" in down["reason"].lower()
            await served_meanwhile(http)
            await emulator.start(port)  # the Bot API comes back
            await wait_until(partial(is_up, http, "telegram"), "telegram up")
            await a_card_arrives(emulator, http, coordinator, service)
        finally:
            stop.set()
            await worker
            await loop.close()
            await emulator.stop()


async def served_meanwhile(http: TestClient) -> None:  # type: ignore[type-arg]
    """The dashboard and the API answer; an invite says Telegram is not up instead of a link."""
    assert (await http.get("/")).status == 200
    assert (await http.get("/api/campaigns")).status == 200
    made = await http.post("/api/experts", json={"id": "ann", "name": "Ann"})
    invites = (await made.json())["invites"]
    assert made.status == 201 and invites["telegram"] is None
    assert "not up yet" in invites["telegram_note"]


async def is_up(http: TestClient, channel: str) -> bool:  # type: ignore[type-arg]
    return (await health(http, channel))["state"] == "up"


async def a_card_arrives(emulator: TelegramEmulator, http: TestClient,  # type: ignore[type-arg]
                         coordinator: Coordinator, service: Service) -> None:
    """Through the webhook and the worker, now that Telegram answers."""
    emulator.webhook = (str(http.make_url("/telegram/webhook")), SECRET)
    emulator.handled = partial(settled, service.stores.inbox, "telegram")
    await post_telegram_kind(coordinator, "pairwise")
    await coordinator.link("ann", "telegram:501")
    await User(emulator, 501).say("/next")
    assert "A is better" in emulator.buttons(emulator.last(501, with_buttons=True))
    made = await http.post("/api/experts", json={"id": "bob", "name": "Bob"})
    assert (await made.json())["invites"]["telegram"].startswith("https://t.me/")


async def test_slack_unreachable_at_start_degrades_the_channel_until_it_answers(
        service: Service, coordinator: Coordinator, client: aioredis.Redis) -> None:
    (port,) = free_ports(1)
    slack = SlackEmulator()
    runtime = runtime_with(client, service, SLACK_BOT_TOKEN=BOT_TOKEN,
                           SLACK_SIGNING_SECRET=SIGNING_SECRET,
                           SLACK_API_URL=f"http://127.0.0.1:{port}/api/", **FAST_RETRY)
    stop = asyncio.Event()
    async with web_app(runtime) as http:
        slack_channel = slack_delivery(runtime)
        assert slack_channel is not None
        worker = asyncio.create_task(  # waits for auth.test
            delivery_loop(runtime, slack_channel).handle_kept(stop))
        try:
            down = await health(http, "slack")
            assert down["state"] == "degraded" and down["reason"]
            await served_meanwhile_without_telegram(http)
            await slack.start(port)
            await wait_until(partial(is_up, http, "slack"), "slack up")
            await post_kind(coordinator, "pairwise")
            await coordinator.add_expert(Expert(id="ann", name="Ann", identities=["slack:UANN"]))
            ann = SlackUser(slack, str(http.make_url("/slack/events")), "UANN")
            assert (await ann.command("next"))[0] == 200
            await slack.wait_for("chat.postMessage")
            assert slack.cards("UANN"), "no card after Slack came up"
            assert (await ann.press("el_choose", "A"))[0] == 200  # kept; the worker handles it
            [update] = await slack.wait_for("chat.update")
            assert "Saved" in update["text"]
        finally:
            stop.set()
            await worker
            await slack.stop()


async def served_meanwhile_without_telegram(http: TestClient) -> None:  # type: ignore[type-arg]
    assert (await http.get("/")).status == 200
    assert (await http.get("/api/campaigns")).status == 200
    assert (await health(http, "telegram"))["state"] == "off"
