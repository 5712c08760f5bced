"""The push of live asks, run by every worker beside its ticks: an ask's card goes to each chat
account of each expert it is offered to as soon as it is queued (a blocking read, not a tick),
through the same `deliver` as any card, and a card nobody needs to answer any more (decided by
another expert, withdrawn, expired) is edited to say so, in the message recorded at delivery.
The queues are Redis streams read in a consumer group, so workers share them, and an entry a
dead worker took is taken again (core/service/asks.py, take_deliveries / take_notices)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from redis.exceptions import RedisError

from bots.runtime import Runtime
from core.domain.asks import ASKS_LOG
from core.domain.cards import Card
from core.domain.experts import Expert
from core.ports import Messenger
from core.service.ask_queues import AskDelivery, AskNotice
from core.service.ask_views import card_for, request_of
from core.service.delivery import DeliveryLoop, deliver
from core.service.service import Service

log = logging.getLogger("expertloop.asks")
BATCH = 50  # entries taken at once
BLOCK_MS = 1000  # a read waits this long for new entries, so a stop is seen within a second


@runtime_checkable
class AskChannel(Protocol):
    """What a chat channel's delivery (adapters/*/delivery.py) adds for live asks."""

    name: str

    def messenger_for(self, expert: Expert | None) -> Messenger: ...

    async def retire_ask(self, address: str, token: str, message_ids: list[str],
                         card: Card | None, shown_at: int | None, text: str) -> None: ...


class AskPush:
    """Pushes and notices for the channels that are on; one per worker."""

    def __init__(self, service: Service, loops: list[DeliveryLoop], consumer: str) -> None:
        self.service = service
        self.loops = {loop.channel.name: loop for loop in loops
                      if isinstance(loop.channel, AskChannel)}
        self.consumer = consumer  # this worker's name in the streams' consumer group

    async def run(self, stop: asyncio.Event) -> None:
        if self.loops:
            await asyncio.gather(self._keep(self.push, stop), self._keep(self.notify, stop))

    async def _keep(self, step: Callable[[int], Awaitable[int]], stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await step(BLOCK_MS)
            except (RedisError, OSError) as exc:
                log.warning("live asks: redis unavailable, retrying: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)

    async def push(self, block_ms: int) -> int:
        """The cards queued now, each to its chat account: chats side by side (one chat's
        pacing must not hold up the others), each chat's cards in order. The batch's experts
        are read at once, and the cards shown leave the queue together. One the platform
        would not take is left in the queue: taken again after a minute (by any worker)."""
        deliveries = await self.service.asks.take_deliveries(self.consumer, BATCH, block_ms)
        if not deliveries:
            return 0
        experts = await self.service.asks.experts_named([d.expert for d in deliveries])
        by_chat: dict[str, list[AskDelivery]] = {}
        for delivery in deliveries:
            by_chat.setdefault(delivery.identity, []).append(delivery)
        shown = await asyncio.gather(*(self._push_chat(chat, experts)
                                       for chat in by_chat.values()))
        finished = [(delivery, sent) for chat in shown for delivery, sent in chat]
        await self.service.asks.delivery_done(*(delivery for delivery, _ in finished))
        return sum(sent for _, sent in finished)

    async def _push_chat(self, deliveries: list[AskDelivery], experts: dict[str, Expert]
                         ) -> list[tuple[AskDelivery, bool]]:
        """The chat's deliveries done with, each with whether it was sent."""
        finished = []
        for delivery in deliveries:
            try:
                finished.append((delivery, await self._push_one(delivery, experts)))
            except Exception:  # noqa: BLE001 - the platform or Redis away for this one: later
                log.warning("ask card %s not sent yet", delivery.card.lease, exc_info=True)
        return finished

    async def _push_one(self, delivery: AskDelivery, experts: dict[str, Expert]) -> bool:
        """True once sent; False for a channel this worker does not run (nobody can show
        it there)."""
        name, _, address = delivery.identity.partition(":")
        loop = self.loops.get(name)
        if loop is None:
            return False
        if not await loop.ready():
            raise ConnectionError(f"{name} does not answer yet")
        channel = loop.channel
        assert isinstance(channel, AskChannel)
        await deliver(self.service, channel.messenger_for(experts.get(delivery.expert)),
                      address, delivery.card)
        return True

    async def notify(self, block_ms: int) -> int:
        """The cards to update, each in the messages that show it."""
        done = 0
        for notice in await self.service.asks.take_notices(self.consumer, BATCH, block_ms):
            try:
                done += await self._notify_one(notice)
            except Exception:  # noqa: BLE001 - the platform or Redis away for this one: later
                log.warning("ask notice on %s not shown yet", notice.token, exc_info=True)
        return done

    async def _notify_one(self, notice: AskNotice) -> int:
        name, _, address = notice.identity.partition(":")
        loop = self.loops.get(name)
        if loop is not None and not await loop.ready():
            raise ConnectionError(f"{name} does not answer yet")
        if loop is not None:
            channel = loop.channel
            assert isinstance(channel, AskChannel)
            card, shown_at, messages = await self.shown(notice.token, name)
            await channel.retire_ask(address, notice.token, messages, card, shown_at,
                                     notice.text)
        await self.service.asks.notice_done(notice)
        return 1

    async def shown(self, token: str, channel: str) -> tuple[Card | None, int | None, list[str]]:
        """The card as it was sent (for its text), when, and the messages it went in on this
        channel, as the `ask_delivered` events recorded them."""
        held = await self.service.asks.store.token_ask(token)
        if held is None:
            return None, None, []
        events = await self.service.log.read_events_at(ASKS_LOG, held.ask.seqs)
        messages = []
        for stored in events:
            event = json.loads(stored.body)
            payload = event.get("payload") or {}
            if event.get("type") == "ask_delivered" and event.get("lease") == token \
                    and payload.get("channel") == channel and payload.get("message_id"):
                messages.append(str(payload["message_id"]))
        return card_for(held, request_of(held.ask)), held.delivered_at, messages


def consumer_name() -> str:
    """This worker in the streams' consumer group: unique per process."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def push_asks(runtime: Runtime, loops: list[DeliveryLoop], stop: asyncio.Event) -> None:
    """The worker's task: live asks pushed and retired on the channels `loops` run."""
    await AskPush(runtime.service, loops, consumer_name()).run(stop)
