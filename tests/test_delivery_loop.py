"""The one delivery loop every chat channel's worker runs (core/service/delivery.py), against a tiny
platform of its own: it records what it is asked to show, can be down, refuse for now, or have
a member in do-not-disturb. The store is the embedded Redis; the service is the real one."""

from __future__ import annotations

import asyncio
import json

from adapters.redis.store import RedisStore
from core.domain.answers import Outcome
from core.domain.cards import Card
from core.domain.experts import Expert
from core.ports import Clock, Delivery
from core.service.coordinator import Coordinator
from core.service.delivery import DeliveryLoop, owe_card
from core.service.health import Backoff, ChannelHealth
from core.service.service import Service
from tests.test_service import of_type
from tests.test_slack import post_kind

NAME = "web"  # an identity prefix profiles accept; this platform is the test's own


class Platform:
    """A chat platform as the loop sees it: what it showed, per address, in order."""

    name = NAME

    def __init__(self, clock: Clock, push_interval_ms: int = 30_000) -> None:
        self.clock = clock
        self.push_interval_ms = push_interval_ms
        self.down = ""  # why it does not answer, while it does not
        self.refusing = 0  # sends that fail (a network error) before one goes through
        self.dnd: set[str] = set()
        self.shown: list[tuple[str, str]] = []  # (address, a card's lease or an edit's text)
        self.handled_kept = False
        self.probes = 0

    async def probe(self) -> None:
        self.probes += 1
        if self.down:
            raise ConnectionError(self.down)

    async def handle_kept(self, stop: asyncio.Event) -> None:
        self.handled_kept = True

    def messenger_for(self, expert: Expert | None) -> Screen:
        return Screen(self)

    async def may_disturb(self, address: str) -> bool:
        return address not in self.dnd

    async def send_edit(self, entry: str) -> None:
        edit = json.loads(entry)
        self.take()
        self.shown.append((edit["address"], edit["text"]))

    def worth_retrying(self, exc: Exception) -> bool:
        return isinstance(exc, ConnectionError)

    async def close(self) -> None:
        pass

    def take(self) -> None:
        if self.refusing:
            self.refusing -= 1
            raise ConnectionError("connection reset")

    def cards(self, address: str) -> list[str]:
        return [what for where, what in self.shown if where == address and "." in what]


class Screen:
    """The platform's messenger: it shows a card or a notice by recording it."""

    channel = NAME

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def send_card(self, address: str, card: Card) -> Delivery:
        self.platform.take()
        self.platform.shown.append((address, card.lease))
        return Delivery(message_id=f"{address}:{len(self.platform.shown)}",
                        at=self.platform.clock.now_ms())

    async def send_notice(self, address: str, text: str) -> Delivery:
        self.platform.shown.append((address, text))
        return Delivery(message_id=f"{address}:{len(self.platform.shown)}",
                        at=self.platform.clock.now_ms())

    async def show_outcome(self, address: str, outcome: Outcome) -> None:
        self.platform.shown.append((address, outcome.status))


async def linked(coordinator: Coordinator, name: str, **profile: object) -> str:
    await coordinator.add_expert(Expert(id=name, name=name.title(),
                                        identities=[f"{NAME}:{name}-chat"], **profile))
    return f"{name}-chat"


async def test_two_workers_push_each_idle_expert_one_card_and_nobody_else_any(
        service: Service, coordinator: Coordinator, store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise", n_items=4)
    ann, bob = await linked(coordinator, "ann"), await linked(coordinator, "bob")
    paused = await linked(coordinator, "pat", paused=True)
    quiet = await linked(coordinator, "owl", quiet_hours="00:00-23:59")
    platform = Platform(service.clock)
    platform.dnd.add(bob)
    workers = [DeliveryLoop(service, platform) for _ in range(2)]

    pushed = await asyncio.gather(*(worker.push_idle() for worker in workers))
    again = await DeliveryLoop(service, Platform(service.clock, push_interval_ms=1)).push_idle()

    assert sorted(pushed) == [0, 1] and again == 0  # ann's card is still waiting for her
    assert len(platform.cards(ann)) == 1
    assert platform.cards(bob) == platform.cards(paused) == platform.cards(quiet) == []
    assert [e["expert"] for e in await of_type(store, "assigned")] == ["ann"]
    assert len(await of_type(store, "delivered")) == 1


async def test_a_card_the_platform_dropped_is_owed_then_sent_once_after_the_edits(
        service: Service, coordinator: Coordinator, store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise")
    ann = await linked(coordinator, "ann")
    platform = Platform(service.clock)
    loop = DeliveryLoop(service, platform)
    platform.refusing = 1
    assert await loop.push_idle() == 0  # leased, but it did not land: owed
    await store.outbox_put(NAME, f"edit:{ann}:7", json.dumps({"address": ann, "text": "done"}))
    await owe_card(store, NAME, ann, "ann")  # owed twice: sent once

    platform.refusing = 1  # the edit fails: the card waits behind it
    assert await loop.drain() == 0
    assert platform.shown == []
    assert await loop.drain() == 2
    assert await loop.drain() == 0

    [lease] = [e["lease"] for e in await of_type(store, "assigned")]
    assert platform.shown == [(ann, "done"), (ann, lease)]  # the lease pushed, shown at last


async def test_while_a_worker_waits_for_the_platform_its_outbox_and_pushes_wait_too(
        service: Service, coordinator: Coordinator, store: RedisStore) -> None:
    ann, platform, loop = await card_owed_while_down(service, coordinator, store, first_s=60)
    stop = asyncio.Event()

    waiting = asyncio.create_task(loop.handle_kept(stop))
    health = await noted(store, "degraded")
    assert await loop.drain() == 0 and await loop.push_idle() == 0
    stop.set()
    await asyncio.wait_for(waiting, 10)

    assert "connection refused" in health.reason
    assert platform.probes == 1  # the wait's own try: a tick does not pay for another
    assert not platform.handled_kept and platform.shown == []


async def test_once_the_platform_answers_the_kept_requests_and_what_is_owed_go_out(
        service: Service, coordinator: Coordinator, store: RedisStore) -> None:
    ann, platform, loop = await card_owed_while_down(service, coordinator, store, first_s=0.01)
    waiting = asyncio.create_task(loop.handle_kept(asyncio.Event()))
    await noted(store, "degraded")

    platform.down = ""
    await asyncio.wait_for(waiting, 10)

    assert platform.handled_kept
    assert (await store.channel_health(NAME)).state == "up"
    assert await loop.drain() == 1
    assert len(platform.cards(ann)) == 1


async def card_owed_while_down(service: Service, coordinator: Coordinator, store: RedisStore,
                               first_s: float) -> tuple[str, Platform, DeliveryLoop]:
    """Ann is owed a card while the platform refuses connections; the loop retries after
    `first_s`."""
    await post_kind(coordinator, "pairwise")
    ann = await linked(coordinator, "ann")
    await owe_card(store, NAME, ann, "ann")
    platform = Platform(service.clock)
    platform.down = "connection refused"
    return ann, platform, DeliveryLoop(service, platform, Backoff(first_s=first_s))


async def noted(store: RedisStore, state: str) -> ChannelHealth:
    """The platform's health once the loop noted `state` (it notes after each failed try)."""
    for _ in range(1000):
        health = await store.channel_health(NAME)
        if health.state == state:
            return health
        await asyncio.sleep(0.01)
    raise AssertionError(f"never {state}: {health}")


async def test_a_worker_stopped_while_the_platform_is_down_handles_nothing(
        service: Service) -> None:
    platform = Platform(service.clock)
    platform.down = "connection refused"
    stop = asyncio.Event()
    stop.set()

    await DeliveryLoop(service, platform, Backoff(first_s=0.01)).handle_kept(stop)

    assert not platform.handled_kept
