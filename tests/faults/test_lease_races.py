"""Races across two web processes on one Redis, as behind a load balancer: four experts ask at
once for three slots, and each card is answered from two devices at once (a phone and a
desktop, each update to another process). No slot goes to two experts, each answer is recorded
once, and every tap is acknowledged. (Late answers after a lease expired, and concurrent
experts on one process, are in tests/test_service.py and tests/test_properties.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from adapters.telegram.app import CHANNEL
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.inbox import settled
from core.service.service import Service
from tests.emulators.telegram import TelegramEmulator
from tests.faults.processes import Expertloop, RedisServer, web_environment
from tests.faults.scene import BUTTONS, CHOICE, answered_leases, lease_of, telegram_experts
from tests.telegram_session import SECRET, User, post_kind

SLOTS = 3


async def test_two_web_processes_give_a_slot_once_and_record_a_two_device_answer_once(
        redis_server: RedisServer, emulator: TelegramEmulator, telegram_env: dict[str, str],
        spawn: Callable[..., Expertloop], coordinator: Coordinator, service: Service,
        ledger: Ledger) -> None:
    await post_kind(coordinator, BUTTONS, n_items=SLOTS, overlap=1)
    users = await telegram_experts(coordinator, emulator, SLOTS + 1)
    webs = [spawn("serve", {**telegram_env, **web_environment(redis_server.url)})
            for _ in range(2)]
    workers = [spawn("worker", telegram_env) for _ in range(2)]  # they handle kept updates
    await asyncio.gather(*(process.start() for process in webs + workers))

    asked = [emulator.message_update(user.id, "/next") for user in users]
    statuses = await asyncio.gather(*(post(webs[i % 2], update)
                                      for i, update in enumerate(asked)))
    assert statuses == [200] * len(users)
    await settled(service.stores.inbox, CHANNEL)
    holders = [user for user in users if with_card(user)]
    assert len(holders) == SLOTS  # the fourth expert was told there is nothing for now

    taps = [[press(user), press(user)] for user in holders]  # two devices, two callback ids
    statuses = await asyncio.gather(*(post(webs[device], tap)
                                      for pair in taps for device, tap in enumerate(pair)))
    assert statuses == [200] * 2 * SLOTS
    await settled(service.stores.inbox, CHANNEL)

    found = await answered_leases(service.stores.log, "c1")
    assert sorted(found.elements()) == sorted(lease_of(pair[0]) for pair in taps)
    await ledger.seal("c1")
    assert (await ledger.verify("c1")).ok
    answered = [a for a in emulator.callback_answers if "Saved" in a.get("text", "")]
    assert len(answered) == 2 * SLOTS  # both devices were told it is saved


def with_card(user: User) -> bool:
    """A task card has the choice buttons (an idle notice has only "Next")."""
    return any(CHOICE in user.emulator.buttons(m) for m in user.emulator.chat(user.id))


def press(user: User) -> dict[str, Any]:
    card = user.card()
    return user.emulator.press_update(user.id, card, user.emulator.buttons(card)[CHOICE])


async def post(web: Expertloop, update: dict[str, Any]) -> int:
    """One delivery of `update` to this web process, as Telegram would via a balancer."""
    async with aiohttp.ClientSession() as session, session.post(
            f"{web.url}/telegram/webhook", json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as reply:
        return reply.status
