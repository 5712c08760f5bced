"""Redis stopped and started again under a running web process and worker (AOF `everysec`, as
docs/deploy.md says to run it): first cleanly (SIGTERM), then by a crash (SIGKILL). While Redis
is away the webhook refuses at once with 503 and Retry-After, so Telegram sends the update
again; both processes reconnect by themselves; and the log ends as docs/deploy.md "What
survives a crash" promises. Answers here are written replies; button taps meet a known bug
(tests/faults/test_telegram_resends.py)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.emulators.telegram import TelegramEmulator
from tests.faults.processes import (
    Expertloop,
    RedisServer,
    wait_until,
    web_environment,
)
from tests.faults.scene import (
    WRITTEN,
    answer_update,
    answered_leases,
    lease_of,
    post_once,
    telegram_experts,
    use_webhook,
)
from tests.telegram_session import User, post_kind

RESEND_WITHIN_S = 30.0  # Redis is back: a resend succeeds within a few tries
T = TypeVar("T")


async def each(users: list[User], act: Callable[[User], Awaitable[T]]) -> list[T]:
    """Every user at once, as a burst of experts would."""
    return list(await asyncio.gather(*(act(user) for user in users)))


async def answer(user: User) -> str:
    """Answer the newest card with a written reply, resent until a 2xx; the lease answered."""
    update = await answer_update(user, WRITTEN)
    await user.emulator.deliver(update)
    return lease_of(update)


async def pending(user: User) -> dict[str, Any]:
    return await answer_update(user, WRITTEN)


async def refused_while_away(web: Expertloop, updates: list[dict[str, Any]]) -> None:
    """Each update is refused at once with 503 and Retry-After, in the API's error shape."""
    for update in updates:
        status, headers, body = await post_once(web, update)
        assert status == 503 and int(headers["Retry-After"]) > 0, (status, body)
        assert json.loads(body)["error"]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{web.url}/healthz") as health:
            assert health.status == 503
        async with session.get(f"{web.url}/api/campaigns") as api:  # the coordinator API too
            assert api.status == 503 and api.headers["Retry-After"]
            assert set(await api.json()) == {"error", "detail"}


async def resent(emulator: TelegramEmulator, updates: list[dict[str, Any]]) -> list[str]:
    """Telegram resends each update until it gets a 2xx; a 503 is the only refusal on the way
    (the first request after the restart may meet a connection the old server closed)."""
    for update in updates:
        statuses = await emulator.deliver(update, within=RESEND_WITHIN_S)
        assert set(statuses[:-1]) <= {503} and statuses[-1] == 200, statuses
    return [lease_of(update) for update in updates]


async def sealed_to(service: Service, seq: int) -> bool:
    return (await service.stores.log.chain_head("c1")).seq >= seq


async def test_redis_restarted_and_crashed_under_the_web_process(
        redis_server: RedisServer, emulator: TelegramEmulator, telegram_env: dict[str, str],
        spawn: Callable[..., Expertloop], coordinator: Coordinator, service: Service,
        ledger: Ledger) -> None:
    await post_kind(coordinator, WRITTEN, n_items=8, overlap=2)
    users = await telegram_experts(coordinator, emulator, 3)
    web = spawn("serve", {**telegram_env, **web_environment(redis_server.url)})
    worker = spawn("worker", telegram_env)  # it handles the updates the webhook kept
    await asyncio.gather(web.start(), worker.start())
    use_webhook(emulator, web)
    await each(users, lambda user: emulator.deliver(emulator.message_update(user.id, "/next")))
    before = await each(users, answer)

    waiting = await each(users, pending)  # each expert is typing an answer when Redis stops
    await redis_server.stop(signal.SIGTERM)  # a clean shutdown writes and fsyncs the AOF
    await refused_while_away(web, waiting)
    await redis_server.start()
    after_restart = await resent(emulator, waiting)
    found = await answered_leases(service.stores.log, "c1")
    assert sorted(found.elements()) == sorted(before + after_restart)  # each once, none lost

    waiting = await each(users, pending)
    await redis_server.stop(signal.SIGKILL)  # a crash: AOF everysec may lose the last second
    await refused_while_away(web, waiting)
    await redis_server.start()
    after_crash = await resent(emulator, waiting)

    assert web.alive() and web.starts == 1  # it reconnected by itself, twice
    last = await service.stores.log.last_seq("c1")
    await wait_until(lambda: sealed_to(service, last), "the worker seals on after the crash",
                     process=worker.process)
    assert worker.starts == 1  # so did the worker
    verdict = await ledger.verify("c1")  # sealed by the worker, not here
    assert verdict.ok and verdict.unsealed == 0
    found = await answered_leases(service.stores.log, "c1")
    assert max(found.values()) == 1
    assert set(before) <= set(found) <= set(before + after_restart + after_crash)
    if set(after_restart) <= set(found):  # the crash lost nothing: the resends complete it
        assert set(after_crash) <= set(found)
