"""`kill -9` of the web process and the worker in the middle of a burst of Telegram answers,
then a restart: an update kept in the Redis inbox before the kill is handled after it (what
the dead worker had taken is reclaimed), one that got no 2xx is resent by Telegram; the log
is complete, nothing is recorded twice (an answer recorded just before the kill is replayed,
not doubled), and every expert is told their answer was saved. Answers are written replies;
button taps are in tests/faults/test_telegram_resends.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapters.telegram.app import CHANNEL
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.emulators.telegram import TelegramEmulator
from tests.faults.processes import Expertloop, RedisServer, wait_until, web_environment
from tests.faults.scene import (
    WRITTEN,
    answer_update,
    answered_leases,
    lease_of,
    telegram_experts,
    use_webhook,
)
from tests.telegram_session import User, post_kind

EXPERTS = 6


@dataclass
class Burst:
    """A burst of written answers, one per expert, cut by `kill -9` of the web process once
    the first is recorded; the web process is started again and Telegram resends."""

    users: list[User]
    updates: list[dict[str, Any]]
    statuses: list[list[int]]
    unhandled_at_kill: int  # kept in the inbox, not yet handled, when the processes died


async def killed_mid_burst(redis_server: RedisServer, emulator: TelegramEmulator,
                           telegram_env: dict[str, str], spawn: Callable[..., Expertloop],
                           coordinator: Coordinator, service: Service) -> Burst:
    await post_kind(coordinator, WRITTEN, n_items=EXPERTS, overlap=2)
    users = await telegram_experts(coordinator, emulator, EXPERTS)
    web = spawn("serve", {**telegram_env, **web_environment(redis_server.url)})
    worker = spawn("worker", telegram_env)
    await asyncio.gather(web.start(), worker.start())
    use_webhook(emulator, web)
    await asyncio.gather(*(emulator.deliver(emulator.message_update(user.id, "/next"))
                           for user in users))
    updates = list(await asyncio.gather(*(answer_update(user, WRITTEN) for user in users)))

    deliveries = [asyncio.create_task(emulator.deliver(update)) for update in updates]
    await wait_until(lambda: _recorded_any(service), "a first answer is recorded")
    unhandled = await service.stores.inbox.inbox_size(CHANNEL)
    await asyncio.gather(web.kill(), worker.kill())
    await asyncio.gather(web.start(), worker.start())
    statuses = list(await asyncio.gather(*deliveries))
    assert web.starts == worker.starts == 2 and all(s[-1] == 200 for s in statuses)
    return Burst(users, updates, statuses, unhandled)


async def test_web_and_worker_killed_mid_burst_and_restarted_record_each_answer_once(
        redis_server: RedisServer, emulator: TelegramEmulator, telegram_env: dict[str, str],
        spawn: Callable[..., Expertloop], coordinator: Coordinator, service: Service,
        ledger: Ledger) -> None:
    burst = await killed_mid_burst(redis_server, emulator, telegram_env, spawn, coordinator,
                                   service)

    assert burst.unhandled_at_kill or any(0 in s for s in burst.statuses)  # the kill cut work
    found = await answered_leases(service.stores.log, "c1")
    assert sorted(found.elements()) == sorted(lease_of(update) for update in burst.updates)
    await ledger.seal("c1")
    assert (await ledger.verify("c1")).ok
    for user in burst.users:  # and each expert was told, whichever process told them
        assert "✅ Saved" in "\n".join(emulator.texts(user.id)), emulator.texts(user.id)


async def _recorded_any(service: Service) -> bool:
    return bool(await answered_leases(service.stores.log, "c1"))
