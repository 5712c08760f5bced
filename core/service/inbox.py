"""Platform requests are kept in Redis before they are acknowledged, then handled here.

A webhook that does an answer's whole work before replying makes the platform wait (Slack
gives up after 3 seconds) and loses the request if the process dies after acknowledging.
So a web process only keeps the request (`Inbox.inbox_put`) and says 200, and stays quick
for the next one; the workers, each running an `InboxDrain` per channel, take requests and
hand them to the channel (add workers for more answers per second, web processes for more
requests). A
request whose handling fails is tried again, up to `max_attempts`, then set aside for an
operator; one taken by a process that died is reclaimed after `stale_ms`. In a process,
requests of one lane (one user) run one after another, in the order they came; lanes run side
by side. Two workers may each hold a request of the same lane: a user's two quick taps can
then run at once, as they could when the platform posted them to two web processes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.ports import Health, Inbox, Inboxed

log = logging.getLogger("expertloop.inbox")
# A request body and when it was kept (ms: when the sender acted, not when a worker got to it,
# so a backlog costs no one their pay or their lease) -> handled (False: try again).
Handler = Callable[[str, int], Awaitable[bool]]
# A request body set aside -> its campaign (None if it names none), once its sender was told.
SetAside = Callable[[str], Awaitable[str | None]]
SET_ASIDE_TEXT = "Not saved, please try again."


def consumer_name() -> str:
    """Unique per process and start, so a restarted process never inherits a dead one's
    requests by name (it reclaims them after `stale_ms` like any other process)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class InboxDrain:
    inbox: Inbox
    health: Health  # counts the requests set aside
    channel: str
    handle: Handler
    set_aside: SetAside | None = None  # tells the sender of a request that failed every try
    consumer: str = field(default_factory=consumer_name)
    limit: int = 64  # requests in flight at once in this process
    block_ms: int = 1_000
    stale_ms: int = 15_000  # longer than a handler takes, even one waiting out a 429
    max_attempts: int = 5
    retry_pause_s: float = 0.2  # times the attempt number: a failing request backs off
    running: set[asyncio.Task[None]] = field(default_factory=set)
    lanes: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    in_hand: set[str] = field(default_factory=set)  # entry ids: a slow one is not reclaimed twice

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set (seen within `block_ms`: no read is cut off mid-way) or the task
        is cancelled; a Redis outage pauses it, never ends it."""
        reclaim_at = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            free = self.limit - len(self.running)
            if free <= 0:
                await asyncio.wait(self.running, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                if loop.time() >= reclaim_at:
                    reclaim_at = loop.time() + self.stale_ms / 2000
                    entries = await self.inbox.inbox_reclaim(self.channel, self.consumer,
                                                             free, self.stale_ms)
                else:
                    entries = await self.inbox.inbox_take(self.channel, self.consumer, free,
                                                          self.block_ms)
            except Exception:  # noqa: BLE001 - Redis restarting; the requests are safe there
                if _cancelling():  # a client library may turn a cancelled read into an error
                    raise
                log.warning("%s inbox unreachable; trying again", self.channel, exc_info=True)
                await asyncio.sleep(1)
                continue
            for entry in entries:
                self._start(entry)

    async def run_until(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then let the requests in hand finish."""
        await self.run(stop)
        await self.stop()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let the requests in hand finish (else they wait `stale_ms` for another process)."""
        if self.running:
            await asyncio.wait(self.running, timeout=grace_s)
        for task in self.running:
            task.cancel()

    def _start(self, entry: Inboxed) -> None:
        if entry.id in self.in_hand:
            return
        task = asyncio.create_task(self._after(self.lanes.get(entry.lane), entry))
        self.lanes[entry.lane] = task
        self.running.add(task)
        self.in_hand.add(entry.id)
        task.add_done_callback(lambda done: self._finished(entry, done))

    def _finished(self, entry: Inboxed, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        self.in_hand.discard(entry.id)
        if self.lanes.get(entry.lane) is task:
            del self.lanes[entry.lane]

    async def _after(self, before: asyncio.Task[None] | None, entry: Inboxed) -> None:
        if before is not None:
            await asyncio.wait([before])
        try:
            handled = await self.handle(entry.body, entry.kept_at)
        except Exception:  # noqa: BLE001 - one bad request must not stop the others
            log.exception("%s request %s failed", self.channel, entry.id)
            handled = False
        try:
            await self._settle(entry, handled)
        except Exception:  # noqa: BLE001 - it stays taken; reclaimed after stale_ms
            log.warning("%s request %s not settled", self.channel, entry.id, exc_info=True)

    async def _settle(self, entry: Inboxed, handled: bool) -> None:
        if handled:
            await self.inbox.inbox_done(self.channel, entry.id)
            return
        await asyncio.sleep(self.retry_pause_s * (entry.attempts + 1))
        if not await self.inbox.inbox_retry(self.channel, entry, self.max_attempts):
            log.error("%s request %s failed %d times; set aside in its inbox's dead list",
                      self.channel, entry.id, self.max_attempts)
            await self._told(entry)

    async def _told(self, entry: Inboxed) -> None:
        """The sender hears their request was not saved (where the platform allows it), and it
        is counted for the channel and its campaign."""
        campaign_id = None
        if self.set_aside is not None:
            try:
                campaign_id = await self.set_aside(entry.body)
            except Exception:  # noqa: BLE001 - the platform may be what failed all along
                log.warning("%s request %s: its sender was not told", self.channel, entry.id,
                            exc_info=True)
        await self.health.count_trouble(self.channel, "dead_requests", campaign_id)


async def settled(store: Inbox, channel: str, poll_s: float = 0.005) -> None:
    """Wait until every request kept for the channel was handled, by whichever process: a
    request leaves the inbox only once handled (or set aside)."""
    while await store.inbox_size(channel):  # noqa: ASYNC110 - no Event spans processes
        await asyncio.sleep(poll_s)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
