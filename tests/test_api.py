"""The coordinator API over real HTTP, wired as `expertloop serve` wires it."""

from __future__ import annotations

import asyncio
import faulthandler
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from bots.runtime import Runtime, connect
from bots.settings import Settings
from bots.web import build_app, check_exposure
from core.domain.answers import Answer
from core.domain.cards import Card
from core.domain.kinds import Choose
from core.errors import ExpertloopError
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAIR = [{"text": "Yes, with food.", "model": "m1"}, {"text": "No.", "model": "m2"}]
SPEC: dict[str, Any] = {"id": "c1", "title": "Better?", "kind": "pairwise", "overlap": 1,
                        "items": [{"id": f"q{n}", "prompt": f"Q{n}?", "drafts": PAIR}
                                  for n in range(3)]}


@pytest.fixture
async def api(client: aioredis.Redis, service: Service, redis_server: EmbeddedRedis  # type: ignore[type-arg]
              ) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    """The web process's own connection pool, as `serve` opens it (`client` flushed the
    server): the bots and drains a test runs beside it keep theirs."""
    web_client = connect(redis_server.url())
    store = RedisStore(web_client)
    settings = Settings(EXPERTLOOP_API_TOKEN=SecretStr(TOKEN), EXPERTLOOP_MAX_BODY=64_000)
    runtime = Runtime(settings, web_client, store, service,
                      Coordinator(store.roles(), service.clock, service.catalog), Ledger(store))
    try:
        async with TestClient(TestServer(build_app(runtime))) as http:
            yield http
    finally:
        await web_client.aclose()


async def call(http: TestClient, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:  # type: ignore[type-arg]
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            response = await http.request(
                method, path, headers={**AUTH, **kwargs.pop("headers", {})}, **kwargs)
            text = await response.text()
    except TimeoutError:
        print_tasks(f"{method} {path} had no answer in {CALL_TIMEOUT_S} s")
        raise
    try:
        return response.status, json.loads(text)
    except json.JSONDecodeError:
        return response.status, text


CALL_TIMEOUT_S = 120  # a request of these tests takes well under a second


def print_tasks(why: str) -> None:
    """Where every task of the loop and every thread waits: a request that never answers (a few
    times in full CI runs, never alone) is otherwise only a bare TimeoutError. Kept short (the
    innermost frames, the test's own task left out) so that a truncated log still shows them."""
    print(why, file=sys.stderr)
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            print(f"-- {task.get_name()}: {task.get_coro()!r}", file=sys.stderr)
            task.print_stack(limit=6, file=sys.stderr)
    executor = getattr(asyncio.get_running_loop(), "_default_executor", None)
    if executor is not None:
        print(f"-- default executor: {len(executor._threads)} threads, "
              f"{executor._work_queue.qsize()} queued", file=sys.stderr)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)


async def test_post_list_status_and_state_changes(api: TestClient) -> None:  # type: ignore[type-arg]
    assert await call(api, "POST", "/api/campaigns", json=SPEC) == (201, {"id": "c1",
                                                                          "items": 3})
    status, listed = await call(api, "GET", "/api/campaigns")
    assert status == 200 and [c["id"] for c in listed] == ["c1"]
    status, one = await call(api, "GET", "/api/campaigns/c1")
    assert (one["items"], one["state"], one["answers"]) == (3, "active", 0)
    assert (await call(api, "POST", "/api/campaigns/c1/pause"))[1]["state"] == "paused"
    assert (await call(api, "POST", "/api/campaigns/c1/resume"))[1]["state"] == "active"
    assert (await call(api, "POST", "/api/campaigns/c1/close"))[1]["state"] == "closed"
    status, body = await call(api, "POST", "/api/campaigns/c1/resume")
    assert status == 409 and "closed" in body["error"]


async def test_without_or_with_a_wrong_token_nothing_happens(api: TestClient) -> None:  # type: ignore[type-arg]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = await api.post("/api/campaigns", json=SPEC, headers=headers)
        assert response.status == 401
        assert set(await response.json()) == {"error", "detail"}
    assert (await call(api, "GET", "/api/campaigns"))[1] == []


async def test_a_bad_body_names_the_field_and_stores_nothing(api: TestClient) -> None:  # type: ignore[type-arg]
    three = {**SPEC, "items": [{"id": "q1", "prompt": "Q?", "drafts": PAIR * 2}]}
    status, body = await call(api, "POST", "/api/campaigns", json=three)
    assert status == 422 and body["detail"][0]["loc"] == ["items", 0, "drafts"]
    status, body = await call(api, "POST", "/api/campaigns", json={**SPEC, "kind": "poll"})
    assert status == 422 and body["detail"][0]["loc"] == ["kind"]
    status, body = await call(api, "POST", "/api/campaigns", data="{not json",
                              headers={"Content-Type": "application/json"})
    assert status == 400 and "not JSON" in body["error"]
    assert (await call(api, "GET", "/api/campaigns"))[1] == []


async def test_unknown_ids_are_404(api: TestClient) -> None:  # type: ignore[type-arg]
    for method, path in (("GET", "/api/campaigns/nope"), ("POST", "/api/campaigns/nope/pause"),
                         ("GET", "/api/campaigns/nope/export"), ("GET", "/api/experts/nope"),
                         ("GET", "/api/provenance/nope/verify")):
        status, body = await call(api, method, path)
        assert status == 404 and "nope" in body["error"], (method, path)


async def test_a_body_over_the_limit_is_413(api: TestClient) -> None:  # type: ignore[type-arg]
    huge = {**SPEC, "instructions": "x" * 100_000}
    status, body = await call(api, "POST", "/api/campaigns", json=huge)
    assert status == 413 and body["error"] == "body too large"


async def test_items_stream_as_json_lines_all_or_nothing(api: TestClient) -> None:  # type: ignore[type-arg]
    await call(api, "POST", "/api/campaigns", json=SPEC)
    lines = [json.dumps({"id": f"n{n}", "prompt": "Q?", "drafts": PAIR}) for n in range(2000)]
    status, body = await call(api, "POST", "/api/campaigns/c1/items", data="\n".join(lines))
    assert (status, body["added"]) == (201, 2000)  # well past the JSON body limit, streamed
    bad = [lines[0].replace("n0", "x1"), json.dumps({"id": "x2", "prompt": "Q?"})]
    status, body = await call(api, "POST", "/api/campaigns/c1/items", data="\n".join(bad))
    assert status == 422 and body["detail"][0]["line"] == 2
    assert (await call(api, "GET", "/api/campaigns/c1"))[1]["items"] == 2003


async def test_experts_quality_pay_export_and_verify(api: TestClient, service: Service) -> None:  # type: ignore[type-arg]
    await call(api, "POST", "/api/campaigns", json=SPEC)
    status, expert = await call(api, "POST", "/api/experts", json={
        "id": "dr-lee", "name": "Dr. Lee", "skills": [], "time_zone": "Europe/Berlin"})
    assert status == 201 and "/chat/" in expert["invites"]["web"]
    assert (await api.get(expert["invites"]["web"].split("8080", 1)[-1])).status == 200
    status, again = await call(api, "GET", "/api/experts/dr-lee")
    assert again["time_zone"] == "Europe/Berlin" and again["invites"]["web"] is None

    task = await service.next_task("dr-lee")
    while isinstance(task, Card):
        task = (await service.submit(Answer(expert="dr-lee", lease=task.lease,
                                            decision=Choose(choice="A")))).next

    status, verdict = await call(api, "GET", "/api/provenance/c1/verify")
    assert status == 200 and verdict["ok"] and verdict["checked"] > 3
    assert (await call(api, "GET", "/api/campaigns/c1/quality"))[0] == 200
    status, pay = await call(api, "GET", "/api/campaigns/c1/pay")
    assert status == 200
    response = await api.get("/api/campaigns/c1/export?format=trail", headers=AUTH)
    rows = [json.loads(line) for line in (await response.text()).splitlines()]
    assert response.status == 200 and len(rows) == 3
    status, body = await call(api, "GET", "/api/campaigns/c1/export?format=xml")
    assert status == 400 and "xml" in body["error"]


async def test_an_export_of_mixed_prompts_has_one_shape_through_the_api(
        api: TestClient, service: Service) -> None:  # type: ignore[type-arg]
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Dose?"}]
    items = [{"id": "plain", "prompt": "Q?", "drafts": PAIR},
             {"id": "chat", "prompt": chat, "drafts": PAIR}]
    await call(api, "POST", "/api/campaigns", json={**SPEC, "items": items})
    await call(api, "POST", "/api/experts", json={"id": "ann", "name": "Ann"})
    task = await service.next_task("ann")
    while isinstance(task, Card):
        task = (await service.submit(Answer(expert="ann", lease=task.lease,
                                            decision=Choose(choice="A")))).next

    response = await api.get("/api/campaigns/c1/export?format=preference", headers=AUTH)
    rows = {row["item"]: row for row in map(json.loads, (await response.text()).splitlines())}

    assert rows["plain"]["prompt"] == [{"role": "user", "content": "Q?"}]
    assert rows["chat"]["prompt"] == chat
    assert all(isinstance(row["chosen"], list) for row in rows.values())


async def test_openapi_describes_exactly_the_routes(api: TestClient) -> None:  # type: ignore[type-arg]
    response = await api.get("/api/openapi.json")  # readable without a token
    document = await response.json()
    served = {(r.method, r.resource.canonical) for r in api.app.router.routes()  # type: ignore[union-attr]
              if r.resource is not None and r.resource.canonical.startswith("/api/")
              and r.method != "HEAD" and r.resource.canonical != "/api/openapi.json"}
    described = {(method.upper(), path) for path, ops in document["paths"].items()
                 for method in ops}
    assert described == served
    assert "CampaignStatus" in document["components"]["schemas"]


def test_the_api_refuses_to_start_open_on_a_public_address() -> None:
    with pytest.raises(ExpertloopError, match="EXPERTLOOP_API_TOKEN"):
        check_exposure(Settings(EXPERTLOOP_HOST="0.0.0.0"))
    check_exposure(Settings(EXPERTLOOP_HOST="127.0.0.1"))
    check_exposure(Settings(EXPERTLOOP_HOST="0.0.0.0", EXPERTLOOP_API_TOKEN=SecretStr("t")))
