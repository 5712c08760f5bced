"""Whether each chat channel works, as every process sees it: its platform answered at start
or not (a channel whose platform is down must not take the dashboard, the API or the other
channels down with it), and how many requests and cards it could not handle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from core.ports import Health

log = logging.getLogger("expertloop.health")
State = Literal["up", "degraded", "off"]
Probe = Callable[[], Awaitable[object]]  # a cheap call the platform answers when it is up


class ChannelHealth(BaseModel):
    """One channel in `/healthz`: counts are since the store was made, across processes."""

    state: State = "up"
    reason: str = ""
    dead_requests: int = 0  # requests set aside after their last try
    refused_cards: int = 0  # cards the platform refused for good (their tasks went back)


class Backoff(BaseModel):
    """How long to wait between tries of a platform that does not answer: doubling, capped."""

    first_s: float = Field(default=2.0, gt=0)
    most_s: float = Field(default=60.0, gt=0)


async def wait_until_up(store: Health, channel: str, probe: Probe, backoff: Backoff,
                        stop: asyncio.Event, *, at_once: bool = True) -> bool:
    """Try `probe` until it answers (True) or `stop` is set (False), the channel marked
    degraded with the platform's error meanwhile, and up once it answers."""
    if at_once and await try_once(store, channel, probe):
        return True
    pause = backoff.first_s
    while not stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)
        if not stop.is_set() and await try_once(store, channel, probe):
            return True
        pause = min(pause * 2, backoff.most_s)
    return False


@asynccontextmanager
async def watched(store: Health, channel: str, probe: Probe,
                  backoff: Backoff) -> AsyncIterator[None]:
    """A web process's life with its platform tried at start and, while it does not answer,
    again in the background: everything else is served meanwhile."""
    stop, retrying = asyncio.Event(), None
    if not await try_once(store, channel, probe):
        retrying = asyncio.create_task(
            wait_until_up(store, channel, probe, backoff, stop, at_once=False))
    try:
        yield
    finally:
        stop.set()
        if retrying is not None:
            retrying.cancel()
            with suppress(asyncio.CancelledError):
                await retrying


async def try_once(store: Health, channel: str, probe: Probe) -> bool:
    """One try of the platform, its outcome noted for `/healthz`."""
    try:
        await probe()
    except Exception as exc:  # noqa: BLE001 - any failure of the platform: wait it out
        reason = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("%s is not up: %s", channel, reason)
        await note(store, channel, "degraded", reason)
        return False
    await note(store, channel, "up", "")
    return True


async def note(store: Health, channel: str, state: State, reason: str) -> None:
    """Best effort: with Redis away, `/healthz` says so already."""
    try:
        await store.note_channel(channel, state, reason)
    except Exception:  # noqa: BLE001 - the store's own outage is reported elsewhere
        log.warning("%s health not noted", channel, exc_info=True)
