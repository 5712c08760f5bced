"""A tap whose first delivery failed must succeed when Telegram resends it. The webhook runs
in-process here (the real PTB Application on a real HTTP server) against the test's own
redis-server, which is away for the first delivery."""

from __future__ import annotations

import signal

from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.emulators.telegram import TelegramEmulator
from tests.faults.processes import RedisServer
from tests.faults.scene import BUTTONS, answered_leases, lease_of, tap, telegram_experts
from tests.telegram_session import post_kind, webhook_bot


async def test_a_tap_refused_while_redis_was_away_is_recorded_when_telegram_resends_it(
        redis_server: RedisServer, emulator: TelegramEmulator, service: Service,
        coordinator: Coordinator) -> None:
    await post_kind(coordinator, BUTTONS, n_items=2)
    (user,) = await telegram_experts(coordinator, emulator, 1)
    async with webhook_bot(emulator, service, coordinator):
        await emulator.deliver(emulator.message_update(user.id, "/next"))
        update = tap(user)
        await redis_server.stop(signal.SIGTERM)
        assert await emulator.send(update) >= 500
        await redis_server.start()

        statuses = await emulator.deliver(update, within=3)

    assert statuses[-1] == 200
    assert (await answered_leases(service.stores.log, "c1"))[lease_of(update)] == 1
