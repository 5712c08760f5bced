"""The `expertloop` client package as an agent uses it, against a live `expertloop serve` and
`expertloop worker` on a redis-server of the test's own: the expert answers in the web chat
over HTTP (its page and its answer form), and the agent's call returns the typed decision.
Sync calls run in a thread, as an agent's would: the test's loop plays the expert meanwhile."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from expertloop import (
    Client,
    Decision,
    aask,
    ask,
    expert_tool,
    handle_tool_call,
    requires_approval,
)
from tests.conftest import serving
from tests.faults.processes import Expertloop, RedisServer, wait_until, web_environment

TOKEN = "client-test-token"
T = TypeVar("T")


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """One redis-server, `expertloop serve` and `expertloop worker` for the module's tests
    (each test has experts of its own); the web process's base URL."""
    root = tmp_path_factory.mktemp("client")
    redis = RedisServer(root / "redis")
    await redis.start()
    env = web_environment(redis.url, EXPERTLOOP_API_TOKEN=TOKEN,
                          EXPERTLOOP_WORKER_INTERVAL="0.3")
    serve, worker = Expertloop("serve", env, root), Expertloop("worker", env, root)
    try:
        await serve.start()
        await worker.start()
        yield serve.url
        assert serve.alive() and worker.alive(), "a process died during the tests"
    finally:
        await worker.stop()
        await serve.stop()
        await redis.stop()


class WebExpert:
    """An expert in the web chat: opens their link, finds the ask's card, submits its form."""

    def __init__(self, http: aiohttp.ClientSession, base: str, expert_id: str, link: str) -> None:
        self.http, self.base, self.id = http, base, expert_id
        self.chat = f"{base}/chat/{link.rsplit('/', 1)[1]}"

    async def card(self, question: str) -> dict[str, str]:
        """The hidden fields of the card asking `question`, once it is offered."""
        page = ""

        async def shown() -> bool:
            nonlocal page
            async with self.http.get(self.chat) as reply:
                page = await reply.text()
            return question in page

        await wait_until(shown, f"{self.id} is offered {question!r}")
        found = {name: re.search(rf'name="{name}" value="([^"]+)"', page)
                 for name in ("lease", "csrf")}
        assert all(found.values()), page
        return {name: match[1] for name, match in found.items() if match}

    async def answer(self, question: str, **fields: str) -> None:
        form = {**await self.card(question), **fields}
        async with self.http.post(f"{self.chat}/answer", data=form,
                                  allow_redirects=False) as reply:
            assert reply.status == 303, await reply.text()  # saved; the page shows what next


@pytest.fixture
async def expert(server: str, request: pytest.FixtureRequest) -> AsyncIterator[WebExpert]:
    """A fresh expert (named after the test) with a web chat link, added over the API."""
    expert_id = "dr-" + request.node.name.removeprefix("test_")[:24].replace("_", "-")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server}/api/experts", headers=auth(), json={
                "id": expert_id, "name": expert_id, "skills": ["billing"]}) as reply:
            assert reply.status == 201, await reply.text()
            link = (await reply.json())["invites"]["web"]
        yield WebExpert(http, server, expert_id, link)


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


async def decided(call: Awaitable[T], expert_turn: Awaitable[None]) -> T:
    """The agent's call and the expert's answer side by side; the call's result."""
    agent = asyncio.ensure_future(call)
    await expert_turn
    return await asyncio.wait_for(agent, timeout=60)


async def test_ask_returns_the_typed_decision_when_the_expert_approves(
        server: str, expert: WebExpert) -> None:
    question = "Refund 120 EUR to order 5512?"
    decision = await decided(
        asyncio.to_thread(ask, question, to=expert.id, base_url=server, token=TOKEN,
                          proposal={"function": "refund", "args": {"order": 5512, "amount": 120}},
                          context="The parcel arrived broken."),
        expert.answer(question, type="approve", verdict="approved"))

    assert isinstance(decision, Decision)
    assert (decision.status, decision.approved, decision.by) == ("approved", True, [expert.id])
    assert decision.decision == {"verdict": "approved"} and decision.args is None
    assert decision.id.startswith("ask") and decision.kind == "approve"


async def test_an_edit_runs_the_guarded_tool_with_the_experts_arguments(
        server: str, expert: WebExpert) -> None:
    refunds: list[tuple[int, float]] = []

    @requires_approval(to=expert.id, deadline_s=600, base_url=server, token=TOKEN,
                       question="Refund {amount} EUR to order {order}?")
    async def refund(order: int, amount: float) -> str:
        refunds.append((order, amount))
        return f"refunded {amount} EUR to order {order}"

    result = await decided(refund(5512, amount=120),
                           expert.answer("Refund 120 EUR to order 5512?", type="approve",
                                         verdict="edited", **{"arg:order": "5512",
                                                              "arg:amount": "90"}))

    assert result == "refunded 90 EUR to order 5512"
    assert refunds == [(5512, 90)]  # run once, with the expert's amount


async def test_a_rejection_is_the_tools_result_and_nothing_runs(
        server: str, expert: WebExpert) -> None:
    refunds: list[int] = []

    @requires_approval(to=expert.id, base_url=server, token=TOKEN)
    def refund(order: int, amount: float) -> str:
        refunds.append(order)
        return "refunded"

    result = await decided(asyncio.to_thread(refund, 5512, 120.0),
                           expert.answer('Run refund(order=5512, amount=120.0)?',
                                         type="approve", verdict="rejected",
                                         comment="Order 5512 was refunded last week"))

    assert result == (f"Rejected by {expert.id}: Order 5512 was refunded last week; "
                      "refund was not run")
    assert refunds == []


async def test_a_models_tool_call_is_asked_once_whatever_the_repeats(
        server: str, expert: WebExpert) -> None:
    tool = expert_tool()
    assert tool["type"] == "function" and tool["function"]["name"] == "ask_an_expert"
    assert {"question", "kind"} <= set(tool["function"]["parameters"]["properties"])
    call = {"id": "call_9f2c", "type": "function", "function": {
        "name": "ask_an_expert", "arguments": json.dumps({
            "kind": "write", "question": "How should we word the apology?",
            "context": "Order 5512 arrived broken."})}}

    first = await decided(
        asyncio.to_thread(handle_tool_call, call, to=expert.id, base_url=server, token=TOKEN),
        expert.answer("How should we word the apology?", type="write",
                      text="We are sorry; a replacement ships today."))
    again = await asyncio.to_thread(handle_tool_call, call, to=expert.id, base_url=server,
                                    token=TOKEN)  # a replayed conversation

    result = json.loads(first)
    assert result["status"] == "answered" and result["by"] == [expert.id]
    assert result["decision"] == {"text": "We are sorry; a replacement ships today."}
    assert json.loads(again) == result
    assert [view["call_id"] for view in await asks_of(server, "How should we word the apology?")] \
        == ["call_9f2c"]


async def test_a_reply_lost_on_the_way_is_retried_as_the_same_ask(
        server: str, expert: WebExpert) -> None:
    """The first POST reaches the server, which makes the ask, but its reply is cut: the
    client posts again with the same call_id and gets that ask, not a second one."""
    posts: list[str] = []

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with aiohttp.ClientSession() as http, http.request(
                request.method, f"{server}{request.rel_url}", data=body or None,
                headers={k: v for k, v in request.headers.items() if k != "Host"}) as reply:
            payload = await reply.read()
        if request.method == "POST":
            posts.append(json.loads(body)["call_id"])
            if len(posts) == 1:
                assert request.transport is not None
                request.transport.close()  # the ask is made; the agent never hears of it
                return web.Response()
        return web.Response(body=payload, status=reply.status,
                            content_type="application/json")

    proxy = web.Application()
    proxy.router.add_route("*", "/{tail:.*}", forward)
    async with serving(proxy) as through:
        decision = await decided(
            aask("Waive the 5 EUR fee for order 5512?", to=[expert.id], base_url=through,
                 token=TOKEN, proposal={"function": "waive_fee", "args": {"order": 5512}}),
            expert.answer("Waive the 5 EUR fee for order 5512?", type="approve",
                          verdict="approved"))

    assert decision.status == "approved"
    assert len(posts) == 2 and posts[0] == posts[1]  # retried, under the same call_id
    assert [view["id"] for view in await asks_of(server, "Waive the 5 EUR fee for order 5512?")] \
        == [decision.id]
    repeat = await asyncio.to_thread(Client(server, TOKEN).post, {
        "call_id": posts[0], "kind": "approve", "question": "Waive the 5 EUR fee for order 5512?",
        "context": "", "deadline_s": 900, "on_timeout": "expire", "urgent": False,
        "proposal": {"function": "waive_fee", "args": {"order": 5512}},
        "to": {"experts": [expert.id]}})
    assert repeat["id"] == decision.id and repeat["status"] == "approved"


async def asks_of(server: str, question: str) -> list[dict[str, Any]]:
    """Every ask on the server with this question, pending or decided (the list API)."""
    async with aiohttp.ClientSession() as http, http.get(
            f"{server}/api/asks?limit=1000", headers=auth()) as reply:
        assert reply.status == 200
        views: list[dict[str, Any]] = await reply.json()
    return [view for view in views if view["question"] == question]
