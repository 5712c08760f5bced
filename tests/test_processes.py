"""The worker and the web process, wired as `expertloop worker` and `serve` wire them."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from adapters.redis.store import RedisStore
from bots.runtime import Runtime
from bots.settings import Settings
from bots.web import build_app
from bots.worker import keep_agreements, tick
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import Choose
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.campaign_play import add_expert, draft_index, post_items, work
from tests.test_service import post


def runtime_for(client: aioredis.Redis, service: Service) -> Runtime:
    store = RedisStore(client)
    return Runtime(Settings(), client, store, service,
                   Coordinator(store.roles(), service.clock, service.catalog), Ledger(store))


async def test_worker_tick_returns_abandoned_tasks_and_seals_the_log(
        client: aioredis.Redis, service: Service, clock: SetClock) -> None:
    runtime = runtime_for(client, service)
    await post(runtime.coordinator, n_items=1, overlap=1)
    for expert_id in ("ann", "bob"):
        await runtime.coordinator.add_expert(Expert(id=expert_id, name=expert_id))
    assert isinstance(await service.next_task("ann"), Card)
    assert not isinstance(await service.next_task("bob"), Card)  # the only slot is taken

    clock.advance(601)
    expired, sealed = await tick(runtime)

    assert expired == 1 and sealed > 0
    assert isinstance(await service.next_task("bob"), Card)
    assert (await runtime.ledger.verify("c1")).ok


async def test_experts_see_their_agreement_with_peers_once_the_worker_has_kept_it(
        client: aioredis.Redis, service: Service, clock: SetClock) -> None:
    runtime = runtime_for(client, service)
    drafts = [{"text": "good", "model": "m1"}, {"text": "bad", "model": "m2"}]
    await post_items(runtime.coordinator, [{"id": f"q{n}", "prompt": "?", "drafts": drafts}
                                           for n in range(4)], kind="pairwise", overlap=4)
    for name, choice in (("ann", "good"), ("bob", "good"), ("dan", "good"), ("cy", "bad")):
        await add_expert(runtime.coordinator, name)
        await work(service, clock, name,
                   lambda card, text=choice: Choose(choice=draft_index(card, text)))
    assert (await service.stats("ann")).agreement is None  # not kept yet: nothing to show

    assert await keep_agreements(runtime) == 1
    assert await keep_agreements(runtime) == 0  # not this worker's turn again so soon

    ann, cy = await service.stats("ann"), await service.stats("cy")
    assert (ann.agreement, ann.compared) == (1.0, 4) and (cy.agreement, cy.compared) == (0.0, 4)
    assert ("Agreement with peers", "100% of 4 compared") in ann.lines()


async def test_worker_goes_on_past_a_campaign_whose_log_was_cut(
        client: aioredis.Redis, service: Service) -> None:
    runtime = runtime_for(client, service)
    for campaign_id in ("cut", "fine"):
        await post(runtime.coordinator, campaign_id, n_items=3)
    await client.xdel("el:{cut}:log", "0-2")

    await tick(runtime)

    assert (await runtime.ledger.verify("fine")).ok
    assert not (await runtime.ledger.verify("cut")).ok


@pytest.fixture
async def web(client: aioredis.Redis, service: Service):  # type: ignore[no-untyped-def]
    async with TestClient(TestServer(build_app(runtime_for(client, service)))) as http:
        yield http


async def test_healthz_says_ok_when_redis_answers(web: TestClient) -> None:  # type: ignore[type-arg]
    response = await web.get("/healthz")
    assert response.status == 200
    off = {"state": "off", "dead_requests": 0, "refused_cards": 0}
    assert await response.json() == {
        "ok": True, "redis": "ok", "backlog": {"telegram": 0, "slack": 0},
        "channels": {"telegram": {**off, "reason": "TELEGRAM_BOT_TOKEN is not set"},
                     "slack": {**off, "reason": "SLACK_BOT_TOKEN is not set"}}}


async def test_healthz_shows_what_no_worker_has_handled_yet(
        web: TestClient, store: RedisStore) -> None:  # type: ignore[type-arg]
    await store.inbox_put("telegram", "1", "u1", '{"update_id": 1}', 60_000, 0)
    response = await web.get("/healthz")
    assert (await response.json())["backlog"] == {"telegram": 1, "slack": 0}


async def test_healthz_is_503_while_redis_is_away(service: Service, tmp_path: Path) -> None:
    gone = aioredis.Redis(unix_socket_path=str(tmp_path / "no.sock"))
    app = build_app(runtime_for(gone, service))
    async with TestClient(TestServer(app)) as http:
        response = await http.get("/healthz")
        assert response.status == 503
        assert (await response.json())["ok"] is False
    await gone.aclose()
