"""Work pushed to Slack experts by the worker, and chat.postMessage paced across processes:
the real slack_sdk client against tests/emulators/slack.py, the store on the embedded Redis."""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from adapters.redis.store import RedisStore
from adapters.slack.channel import SlackSettings, build_channel, web_client
from adapters.slack.delivery import SlackDelivery
from adapters.slack.messenger import Pacer, SlackMessenger
from bots.runtime import Runtime
from bots.settings import Settings
from bots.worker import run_worker
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.delivery import DeliveryLoop
from core.service.service import Service
from tests.conftest import NOW
from tests.emulators.slack import BOT_TOKEN, SIGNING_SECRET, SlackEmulator
from tests.test_service import events
from tests.test_slack import lease_of, post_kind


def worker(slack: SlackEmulator, service: Service, coordinator: Coordinator,
           push_interval_s: float = 30.0) -> DeliveryLoop:
    """What one worker process builds: its own Web API client and messenger, and the loop."""
    settings = SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                             api_url=slack.url, post_interval_s=0.0,
                             push_interval_s=push_interval_s)
    return DeliveryLoop(service, SlackDelivery(build_channel(settings, service, coordinator,
                                                             service.stores),
                                               settings))


async def link(coordinator: Coordinator, name: str, **profile: object) -> str:
    await coordinator.add_expert(Expert(id=name, name=name.title(),
                                        identities=[f"slack:U{name.upper()}"], **profile))
    return f"U{name.upper()}"


async def test_two_workers_at_once_push_an_idle_expert_exactly_one_card(
        slack: SlackEmulator, service: Service, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise")
    ann = await link(coordinator, "ann")
    first, second = worker(slack, service, coordinator), worker(slack, service, coordinator)

    pushed = await asyncio.gather(first.push_idle(), second.push_idle())

    assert sorted(pushed) == [0, 1]
    assert len(slack.cards(ann)) == 1
    logged = await events(store)
    assert [e["expert"] for e in logged if e["type"] == "assigned"] == ["ann"]
    assert [e["type"] for e in logged].count("delivered") == 1


async def test_two_worker_processes_side_by_side_push_one_card(
        slack: SlackEmulator, service: Service, coordinator: Coordinator, store: RedisStore,
        client: aioredis.Redis) -> None:
    """`expertloop worker` twice, as wired (bots/worker.py), ticking every 20 ms."""
    await post_kind(coordinator, "pairwise")
    ann = await link(coordinator, "ann")
    settings = Settings(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=slack.url,
                        EXPERTLOOP_WORKER_INTERVAL=0.02)
    runtime = Runtime(settings, client, store, service, coordinator, Ledger(store))
    stop = asyncio.Event()
    workers = [asyncio.create_task(run_worker(runtime, stop)) for _ in range(2)]

    assert await slack.until(lambda: len(slack.cards(ann)) >= 1)
    ticks = len(slack.called("dnd.info"))
    await asyncio.sleep(0.2)  # ten more ticks of each worker
    stop.set()
    await asyncio.gather(*workers)

    assert len(slack.cards(ann)) == 1
    assert len(slack.called("dnd.info")) == ticks == 1  # looked at once: then a card waited


async def test_a_card_waiting_for_an_answer_is_never_stacked_on(
        slack: SlackEmulator, service: Service, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    ann = await link(coordinator, "ann")
    pusher = worker(slack, service, coordinator)
    await pusher.send_live_task(ann, "ann")  # she asked for one and has not answered yet

    assert await pusher.push_idle() == 0

    assert len(slack.cards(ann)) == 1
    assert slack.called("dnd.info") == []


async def test_a_card_the_outbox_owes_is_left_to_the_outbox(
        slack: SlackEmulator, service: Service, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise")
    ann = await link(coordinator, "ann")
    await store.outbox_put("slack", f"card:{ann}",
                           json.dumps({"kind": "card", "user": ann, "expert": "ann"}))
    pusher = worker(slack, service, coordinator)

    assert await pusher.push_idle() == 0
    assert await pusher.drain() == 1

    assert len(slack.cards(ann)) == 1


async def test_nobody_paused_capped_in_quiet_hours_or_do_not_disturb_gets_a_push(
        slack: SlackEmulator, service: Service, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise", n_items=5)
    users = {name: await link(coordinator, name, **profile) for name, profile in [
        ("free", {}), ("paused", {"paused": True}), ("capped", {"daily_cap": 0}),
        ("quiet", {"quiet_hours": "00:00-23:59"}), ("snoozing", {}), ("away", {})]}
    await coordinator.add_expert(Expert(id="unlinked", name="Unlinked"))
    slack.dnd[users["snoozing"]] = {"snooze_enabled": True}
    slack.dnd[users["away"]] = {"dnd_enabled": True, "next_dnd_start_ts": 1,
                                "next_dnd_end_ts": 4_000_000_000}

    assert await worker(slack, service, coordinator).push_idle() == 1

    assert {name: len(slack.cards(user)) for name, user in users.items()} == {
        "free": 1, "paused": 0, "capped": 0, "quiet": 0, "snoozing": 0, "away": 0}
    assert slack.called("chat.postEphemeral") == []  # a push never sends a notice either


async def test_a_push_waits_for_do_not_disturb_to_end(
        slack: SlackEmulator, service: Service, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    ann = await link(coordinator, "ann")
    pusher = worker(slack, service, coordinator, push_interval_s=0.2)
    slack.dnd[ann] = {"snooze_enabled": True}
    assert not await pusher.push("ann")

    slack.dnd[ann] = {"snooze_enabled": False}
    assert not await pusher.push("ann")  # looked at once per interval, so dnd.info is spared
    assert len(slack.called("dnd.info")) == 1
    await asyncio.sleep(0.25)

    assert await pusher.push("ann")
    assert len(slack.cards(ann)) == 1


async def test_two_processes_pace_their_messages_to_one_channel_together(
        slack: SlackEmulator, service: Service, store: RedisStore) -> None:
    """Each messenger has its own client and Pacer, as two processes would; only Redis is
    shared. Slack saw the messages spaced by the interval, whoever sent them."""
    interval = 0.5
    settings = SlackSettings(bot_token=BOT_TOKEN, api_url=slack.url)
    senders = [SlackMessenger(web_client(settings), service.clock, Pacer(store, interval))
               for _ in range(2)]

    await asyncio.gather(*(sender.post("DPACED", [], f"{n}:{i}")
                           for i in range(3) for n, sender in enumerate(senders)))

    seen = sorted(slack.arrivals("chat.postMessage", "DPACED"))
    assert len(seen) == 6
    gaps = [later - earlier for earlier, later in zip(seen, seen[1:], strict=False)]
    assert min(gaps) > interval * 0.6, gaps  # unpaced, the two senders' messages land at once


async def test_pushes_and_pacing_work_on_a_redis_cluster(
        slack: SlackEmulator, cluster_client: RedisCluster) -> None:
    """Campaigns, the expert and the pacing keys sit in different slots."""
    store = RedisStore(cluster_client)  # type: ignore[arg-type]
    service = Service(store.roles(), SetClock(NOW))
    coordinator = Coordinator(store.roles(), service.clock, service.catalog)
    for campaign in ("pairs", "more-pairs"):
        await post_kind(coordinator, "pairwise", campaign_id=campaign)
    ann = await link(coordinator, "ann")
    pusher = worker(slack, service, coordinator)

    assert await pusher.push_idle() == 1

    assert len(slack.cards(ann)) == 1
    waiting = await store.held_leases("ann", ["pairs", "more-pairs"], NOW)
    assert waiting == [lease_of(slack.cards(ann)[0])]
    pacer = Pacer(store, 60.0)
    await pacer.wait("DCLUSTER")  # the first slot is now
    assert await store.next_slot("slack:DCLUSTER", 60_000) > 59_000  # the next, a minute on
