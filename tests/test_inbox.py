"""The inbox keeps platform requests in Redis until a drain has handled them: a resend is kept
once, one user's requests run in order, a failure is tried again and then set aside, and what
a dead process had taken is picked up by another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.redis import keys as k
from adapters.redis.store import RedisStore
from core.service.inbox import InboxDrain, settled


class Drains:
    """Drains a test starts; stopped after it, their requests in hand finished."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, drain: InboxDrain) -> InboxDrain:
        self.tasks.append(asyncio.create_task(drain.run_until(self.stop)))
        return drain


@pytest.fixture
async def drains() -> AsyncIterator[Drains]:
    started = Drains()
    yield started
    started.stop.set()
    await asyncio.wait_for(asyncio.gather(*started.tasks), 10)


async def test_a_resent_request_is_kept_once(store: RedisStore) -> None:
    assert await store.inbox_put("t1", "7", "u1", "hello", 60_000, 0)
    assert not await store.inbox_put("t1", "7", "u1", "hello", 60_000, 0)
    assert await store.inbox_put("t2", "7", "u1", "hello", 60_000, 0)  # ids are per channel
    assert await store.inbox_size("t1") == 1


async def test_one_users_requests_run_in_order_and_each_once(
        store: RedisStore, drains: Drains) -> None:
    seen: list[str] = []

    async def handle(body: str, kept_at: int) -> bool:
        await asyncio.sleep(0.01 if body.endswith("0") else 0)  # the first is the slowest
        seen.append(body)
        return True

    for n in range(30):
        await store.inbox_put("order", str(n), f"u{n % 3}", f"u{n % 3}:{n}", 60_000, 0)
    drain = drains.start(InboxDrain(store, store, "order", handle, block_ms=50))
    await asyncio.wait_for(settled(store, drain.channel), 5)
    assert sorted(seen) == sorted(f"u{n % 3}:{n}" for n in range(30))
    for user in ("u0", "u1", "u2"):
        mine = [int(body.split(":")[1]) for body in seen if body.startswith(user)]
        assert mine == sorted(mine)


async def test_a_failing_request_is_tried_again_then_set_aside(
        store: RedisStore, drains: Drains) -> None:
    tries: dict[str, int] = {}

    async def handle(body: str, kept_at: int) -> bool:
        tries[body] = tries.get(body, 0) + 1
        if body == "broken":
            raise RuntimeError("always fails")
        return tries[body] >= 2  # "flaky" works the second time

    await store.inbox_put("fails", "1", "u", "flaky", 60_000, 0)
    await store.inbox_put("fails", "2", "u", "broken", 60_000, 0)
    drain = drains.start(InboxDrain(store, store, "fails", handle, block_ms=50, retry_pause_s=0.01,
                                     max_attempts=3))
    await asyncio.wait_for(settled(store, drain.channel), 5)
    assert tries == {"flaky": 2, "broken": 3}
    assert await store.client.lrange(k.inbox_key("fails", "dead"), 0, -1) == ["broken"]


async def test_what_a_dead_process_took_is_handled_by_another(
        store: RedisStore, drains: Drains) -> None:
    await store.inbox_put("orphans", "1", "u", "taken by the dead", 60_000, 0)
    await store.inbox_take("orphans", "dead-process", 10, 10)  # makes the group
    await store.inbox_put("orphans", "2", "u", "taken by the dead", 60_000, 0)
    assert len(await store.inbox_take("orphans", "dead-process", 10, 10)) == 2
    handled: list[str] = []

    async def handle(body: str, kept_at: int) -> bool:
        handled.append(body)
        return True

    drain = drains.start(InboxDrain(store, store, "orphans", handle, block_ms=50, stale_ms=100))
    await asyncio.wait_for(settled(store, drain.channel), 5)
    assert handled == ["taken by the dead"] * 2


async def test_a_slow_request_is_not_taken_twice_by_the_process_handling_it(
        store: RedisStore, drains: Drains) -> None:
    started: list[str] = []

    async def handle(body: str, kept_at: int) -> bool:
        started.append(body)
        await asyncio.sleep(0.3)  # far past stale_ms: it looks abandoned to XAUTOCLAIM
        return True

    await store.inbox_put("slow", "1", "u", "slow one", 60_000, 0)
    drain = drains.start(InboxDrain(store, store, "slow", handle, block_ms=10, stale_ms=40))
    await asyncio.wait_for(settled(store, drain.channel), 5)
    assert started == ["slow one"]


async def test_a_handler_is_told_when_each_request_was_kept(
        store: RedisStore, drains: Drains) -> None:
    kept: dict[str, int] = {}

    async def handle(body: str, kept_at: int) -> bool:
        kept[body] = kept_at
        return True

    await store.inbox_put("when", "1", "u", "first", 60_000, 1_000)
    await store.inbox_put("when", "2", "u", "second", 60_000, 2_500)
    drain = drains.start(InboxDrain(store, store, "when", handle, block_ms=50))
    await asyncio.wait_for(settled(store, drain.channel), 5)
    assert kept == {"first": 1_000, "second": 2_500}  # when kept, not when handled
