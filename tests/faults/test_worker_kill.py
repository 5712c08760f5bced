"""`kill -9` of the worker while abandoned leases wait to be returned and while it seals a long
log, then a restart: the leases return to the pool once each, sealing goes on from the stored
chain head, and the chain completes and verifies with every answer in it once."""

from __future__ import annotations

import json
from collections.abc import Callable

from core.domain.answers import Answer
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import Choose
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.faults.processes import Expertloop, RedisServer, environment, wait_until
from tests.faults.scene import BUTTONS, answered_leases
from tests.telegram_session import post_kind

ITEMS = 30_000  # about a second of sealing: long enough to be killed in the middle
ABANDONED = 4
HALF_AN_HOUR_MS = 30 * 60 * 1000


async def test_the_worker_killed_mid_seal_is_restarted_and_the_chain_completes(
        redis_server: RedisServer, spawn: Callable[..., Expertloop], coordinator: Coordinator,
        service: Service, ledger: Ledger) -> None:
    await post_kind(coordinator, BUTTONS, n_items=ITEMS, overlap=1, time_limit_s=600)
    experts = [f"e{i}" for i in range(ABANDONED + 1)]
    for expert in experts:
        await coordinator.add_expert(Expert(id=expert, name=expert))
    abandoned = await leases_taken_long_ago(service, experts[:ABANDONED])
    answered = [await answer_now(service, experts[-1]) for _ in range(3)]
    last = await service.stores.log.last_seq("c1")

    worker = spawn("worker", environment(redis_server.url, EXPERTLOOP_WORKER_INTERVAL="0.2"))
    await worker.start()
    await wait_until(lambda: sealing_started(service), "the worker starts sealing",
                     process=worker.process, within=60)
    await worker.kill()
    cut_at = (await service.stores.log.chain_head("c1")).seq
    assert 0 < cut_at < last  # killed in the middle of sealing
    await worker.start()
    await wait_until(lambda: sealed_to(service, last), "the worker seals the whole log",
                     process=worker.process)

    verdict = await ledger.verify("c1")  # no sealing here: the worker did it all
    assert verdict.ok and verdict.unsealed == 0 and verdict.checked >= last
    status = await coordinator.status("c1")
    assert (status.in_progress, status.expired) == (1, ABANDONED)  # 1: e4's next card
    expired = [json.loads(e.body) for e in await service.stores.log.read_events("c1", 0, last + 99)]
    assert sorted(e["lease"] for e in expired if e["type"] == "lease_expired") == sorted(abandoned)
    found = await answered_leases(service.stores.log, "c1")
    assert sorted(found.elements()) == sorted(answered)
    late = await service.submit(Answer(expert=experts[0], lease=abandoned[0],
                                       decision=Choose(choice="A"), channel="telegram"))
    assert late.status == "refused" and abandoned[0] not in await answered_leases(
        service.stores.log, "c1")


async def leases_taken_long_ago(service: Service, experts: list[str]) -> list[str]:
    """Cards handed out half an hour ago (ten-minute time limit) and never answered."""
    past = Service(service.stores, SetClock(service.clock.now_ms() - HALF_AN_HOUR_MS))
    cards = [await past.next_task(expert) for expert in experts]
    assert all(isinstance(card, Card) for card in cards)
    return [card.lease for card in cards if isinstance(card, Card)]


async def answer_now(service: Service, expert: str) -> str:
    card = await service.next_task(expert)
    assert isinstance(card, Card)
    outcome = await service.submit(Answer(expert=expert, lease=card.lease,
                                          decision=Choose(choice="A"), channel="telegram"))
    assert outcome.status == "recorded"
    return card.lease


async def sealing_started(service: Service) -> bool:
    return (await service.stores.log.chain_head("c1")).seq > 0


async def sealed_to(service: Service, seq: int) -> bool:
    return (await service.stores.log.chain_head("c1")).seq >= seq
