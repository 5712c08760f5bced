"""Showing tasks on a channel, the same way for every channel: send the card, then tell the
core when and where it was delivered, so the expert's time starts when they could see it; and
the one loop every channel's worker runs (`DeliveryLoop`) behind a small `Channel` port."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from typing import Protocol

from core.domain.answers import Answer, Outcome
from core.domain.cards import Card, NextTask
from core.domain.experts import Expert
from core.errors import CardRefused
from core.ports import Messenger, Outbox
from core.service.health import Backoff, try_once, wait_until_up
from core.service.service import Service

log = logging.getLogger("expertloop.delivery")
REFUSED_NOTICE = ("A task could not be shown here, so it went back to the pool. "
                  "Ask for your next task to go on.")
CARD = "card:"  # an outbox key `card:<address>` owes the expert there their live task


async def deliver(service: Service, messenger: Messenger, address: str, task: NextTask) -> None:
    if isinstance(task, Card):
        try:
            landed = await messenger.send_card(address, task)
        except CardRefused as exc:
            await _refused(service, messenger, address, task, str(exc))
            return
        await service.delivered(task.lease, landed.at, messenger.channel, landed.message_id,
                                images=list(landed.images) or None)
    else:
        await messenger.send_notice(address, task.message)


async def _refused(service: Service, messenger: Messenger, address: str, card: Card,
                   error: str) -> None:
    """A card the platform will never take: its slot goes back to the pool at once, so the
    expert is never left holding a task they cannot see, and they are told in a line."""
    log.error("%s refused the card of lease %s: %s", messenger.channel, card.lease, error)
    await service.give_back(card.lease, messenger.channel, error)
    await service.stores.health.count_trouble(messenger.channel, "refused_cards", None)
    with suppress(Exception):  # the platform may refuse this too (a bot blocked by the user)
        await messenger.send_notice(address, REFUSED_NOTICE)


async def answer(service: Service, messenger: Messenger, address: str,
                 given: Answer) -> Outcome:
    """Record an answer, show what happened to it, then show what comes next."""
    outcome = await service.submit(given)
    await messenger.show_outcome(address, outcome)
    if outcome.next is not None:
        await deliver(service, messenger, address, outcome.next)
    return outcome


async def owe_card(store: Outbox, channel: str, address: str, expert_id: str) -> None:
    """Into the channel's outbox: the expert's live task, sent by the next drain. One entry
    per address, so owing it twice sends it once."""
    entry = json.dumps({"kind": "card", "address": address, "expert": expert_id})
    await store.outbox_put(channel, f"{CARD}{address}", entry)


class Channel(Protocol):
    """A chat platform as the delivery loop sees it; its wire format, limits and error words
    stay in its adapter."""

    name: str  # its identities (`<name>:<address>`), outbox, inbox and health in the store
    push_interval_ms: int  # how often one expert is looked at for a push, across workers

    async def probe(self) -> None:
        """Returns once the platform answers (connected, where it needs that); raises if not."""

    async def handle_kept(self, stop: asyncio.Event) -> None:
        """Until `stop`: the requests its web route kept for the workers (core/service/inbox.py)."""

    def messenger_for(self, expert: Expert | None) -> Messenger:
        """A messenger for a card the expert did not just ask for (a push, an owed card)."""

    async def may_disturb(self, address: str) -> bool:
        """The platform's own do-not-disturb, asked after the core's rules allow a push."""

    async def send_edit(self, entry: str) -> None:
        """An owed edit of a card already shown, as the adapter wrote it into the outbox."""

    def worth_retrying(self, exc: Exception) -> bool:
        """A failed card send the outbox should try again later (not our mistake)."""

    async def close(self) -> None:
        """Let go of the connection once the worker stops."""


class DeliveryLoop:
    """What a worker does for one channel: wait until the platform answers, handle the
    requests kept for it, send what the outbox owes and offer idle experts a card. Any number
    of workers may run it side by side."""

    def __init__(self, service: Service, channel: Channel, backoff: Backoff | None = None
                 ) -> None:
        self.service = service
        self.stores = service.stores  # the roles of the store the service runs on
        self.channel = channel
        self.backoff = backoff or Backoff()
        self.up = False  # the platform answered once: it is tried no more
        self.waiting = False  # `handle_kept` waits for the platform: the rest waits with it

    async def handle_kept(self, stop: asyncio.Event) -> None:
        """Until `stop`: the kept requests, once the platform answers (tried with backoff, the
        channel degraded in /healthz meanwhile; the requests are safe in Redis)."""
        if not self.up:
            self.waiting = True
            self.up = await wait_until_up(self.stores.health, self.channel.name,
                                          self.channel.probe, self.backoff, stop)
            self.waiting = False
        if self.up:
            await self.channel.handle_kept(stop)

    async def tick(self, pushing: bool) -> None:
        """One worker tick: drain the outbox, then, on the tick whose turn it is, push."""
        await self.drain()
        if pushing:
            await self.push_idle()

    async def ready(self) -> bool:
        """Whether the platform answers; tried here only when `handle_kept` is not waiting
        for it already, so a tick never pays the platform's failed tries twice."""
        if not self.up and not self.waiting:
            self.up = await try_once(self.stores.health, self.channel.name, self.channel.probe)
        return self.up

    async def drain(self, limit: int = 100) -> int:
        """Send what is owed, each address's edits before its card. An entry leaves only once
        the platform took it; an address whose edit failed waits for the next drain, so no
        expert sees the next card above one that looks unanswered."""
        outbox, name = self.stores.outbox, self.channel.name
        items = await outbox.outbox_items(name, limit)
        if not items or not await self.ready():
            return 0
        sent, stuck = 0, set()
        for key, owed in sorted(items.items(), key=lambda item: _order(item[0])):
            address = key.split(":")[1]
            if address in stuck:
                continue
            try:
                await self._send_owed(key, owed.entry)
            except Exception:  # noqa: BLE001 - the platform refused for now: the next drain
                log.warning("%s outbox %s not sent yet", name, key, exc_info=True)
                stuck.add(address)
                continue
            sent += await outbox.outbox_done(name, key, owed)
        return sent

    async def _send_owed(self, key: str, entry: str) -> None:
        if key.startswith(CARD):
            await self.send_live_task(key.removeprefix(CARD), json.loads(entry)["expert"])
        else:
            await self.channel.send_edit(entry)

    async def send_live_task(self, address: str, expert_id: str) -> None:
        """The expert's live task shown again: `next_task` hands back the lease they hold."""
        expert = await self.stores.experts.load_expert(expert_id)
        task = await self.service.next_task(expert_id)
        await deliver(self.service, self.channel.messenger_for(expert), address, task)

    async def push_idle(self) -> int:
        """Offer a card to every linked expert free for one. Returns how many cards went out."""
        if not await self.ready():
            return 0
        linked = await self.stores.experts.identities_on(self.channel.name)
        experts = sorted(set(linked.values()))
        if not experts or not await self._any_campaign(experts[0]):
            return 0
        pushed = 0
        campaigns = await self.stores.campaigns.list_campaigns()
        owed = await self._owed_cards()
        for expert_id in experts:
            try:
                pushed += await self.push(expert_id, campaigns, owed)
            except Exception:  # noqa: BLE001 - the platform or Redis away for this one: next tick
                log.warning("could not push to %s", expert_id, exc_info=True)
        return pushed

    async def _any_campaign(self, expert_id: str) -> bool:
        """An active campaign exists (the routing set, read with one expert's routing): with
        none, no expert can be offered a task, so the pass over all of them is skipped."""
        return bool((await self.stores.experts.routing(expert_id, [])).routes)

    async def push(self, expert_id: str, campaigns: list[str] | None = None,
                   owed: set[str] | None = None) -> bool:
        """Offer work unasked, one card at a time: never to a paused expert, in their quiet
        hours, in the platform's do-not-disturb, past their daily cap, on top of a card still
        waiting for them, or a notice. The turn on `push:<channel>:<expert>` lets one process
        push one expert, and only once per push interval (so the platform is asked little)."""
        found = await self._pushable(expert_id, campaigns, owed)
        if found is None or not await self.stores.turns.take_turn(
                f"push:{self.channel.name}:{expert_id}", self.channel.push_interval_ms):
            return False
        expert, address = found
        if not await self.channel.may_disturb(address):
            return False
        task = await self.service.next_task(expert_id, pushed=True)
        if not isinstance(task, Card) or task.resumed:  # taken since we looked: shown by them
            return False
        try:
            await deliver(self.service, self.channel.messenger_for(expert), address, task)
        except Exception as exc:  # leased but maybe not shown: owed, and the drain resends it
            if self.channel.worth_retrying(exc):
                await owe_card(self.stores.outbox, self.channel.name, address, expert_id)
            raise
        return True

    async def _pushable(self, expert_id: str, campaigns: list[str] | None,
                        owed: set[str] | None) -> tuple[Expert, str] | None:
        """The expert and their address here when nothing rules a push out, from reads of our
        own (no platform call) before the turn: the core's rules, and no card owed to them."""
        prefix = f"{self.channel.name}:"
        expert = await self.service.may_push(expert_id, campaigns if campaigns is not None
                                             else await self.stores.campaigns.list_campaigns())
        addresses = [i.removeprefix(prefix) for i in (expert.identities if expert else [])
                     if i.startswith(prefix)]
        if expert is None or not addresses:
            return None
        if addresses[0] in (owed if owed is not None else await self._owed_cards()):
            return None
        return expert, addresses[0]

    async def _owed_cards(self) -> set[str]:
        """Addresses the outbox owes a card: the drain sends them their live task."""
        keys = await self.stores.outbox.outbox_items(self.channel.name, 10_000)
        return {key.removeprefix(CARD) for key in keys if key.startswith(CARD)}

    async def close(self) -> None:
        await self.channel.close()


def _order(key: str) -> tuple[bool, str, list[tuple[int, int | str]]]:
    """Edits before cards; an address's edits oldest first (message ids compared as numbers)."""
    parts = key.split(":")
    return (key.startswith(CARD), parts[1] if len(parts) > 1 else "",
            [(0, int(p)) if p.isdigit() else (1, p) for p in parts[2:]])
