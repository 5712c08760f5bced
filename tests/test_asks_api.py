"""Live asks over real HTTP, wired as `expertloop serve` wires them: post, repeat, long poll,
withdraw, the HTTP refusals (413, 422s, 429), and the signed callbacks a worker sends to a local
aiohttp receiver (retries under one delivery id, no redirect followed, the address checked
again at send time)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from adapters.callbacks.sender import CallbackSender
from adapters.redis.store import RedisStore
from bots.asks_jobs import callback_guard, send_callbacks
from bots.runtime import Runtime
from bots.settings import Settings
from bots.web import build_app
from core.domain.answers import Answer
from core.domain.experts import Expert
from core.domain.kinds import Approve
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.conftest import serving

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "callback-secret"
ASK: dict[str, Any] = {
    "call_id": "call_9f2c", "kind": "approve", "question": "Refund 120 EUR to order 5512?",
    "proposal": {"function": "refund", "args": {"order": 5512, "amount": 120}},
    "to": {"experts": ["dr-lee"]}, "deadline_s": 900}
Client = TestClient  # type: ignore[type-arg]


def settings(**env: Any) -> Settings:
    base: dict[str, Any] = {"EXPERTLOOP_API_TOKEN": SecretStr(TOKEN),
                            "EXPERTLOOP_MAX_BODY": 64_000,
                            "EXPERTLOOP_CALLBACK_SECRET": SecretStr(SECRET),
                            "EXPERTLOOP_CALLBACK_HOSTS": "127.0.0.1"}
    return Settings(**(base | env))


@asynccontextmanager
async def api_with(client: aioredis.Redis, service: Service,  # type: ignore[type-arg]
                   config: Settings) -> AsyncIterator[Client]:
    store = RedisStore(client)
    await store.save_expert(Expert(id="dr-lee", name="Dr. Lee"), create=True)
    runtime = Runtime(config, client, store, service,
                      Coordinator(store.roles(), service.clock, service.catalog), Ledger(store))
    async with TestClient(TestServer(build_app(runtime))) as http:
        yield http


@pytest.fixture
async def api(client: aioredis.Redis, service: Service) -> AsyncIterator[Client]:  # type: ignore[type-arg]
    async with api_with(client, service, settings()) as http:
        yield http


async def call(http: Client, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = await http.request(method, path, headers={**AUTH, **kwargs.pop("headers", {})},
                                  **kwargs)
    return response.status, await response.json()


async def approve(service: Service, expert: str = "dr-lee", **fields: Any) -> None:
    """The expert taps Approve on the card their chat shows."""
    card = (await service.asks.cards_for(expert))[0]
    outcome = await service.submit(Answer(expert=expert, lease=card.lease,
                                          decision=Approve(verdict="approved", **fields)))
    assert outcome.status == "recorded", outcome


async def test_post_repeat_conflict_get_list_and_withdraw(api: Client) -> None:
    status, posted = await call(api, "POST", "/api/asks", json=ASK)
    assert status == 201 and posted["status"] == "pending" and posted["expires_at"]
    assert posted["id"].startswith("ask_")

    assert await call(api, "POST", "/api/asks", json=ASK) == (200, posted)  # the same ask
    status, body = await call(api, "POST", "/api/asks", json={**ASK, "question": "Refund 12?"})
    assert status == 409 and "call_9f2c" in body["error"]

    status, seen = await call(api, "GET", f"/api/asks/{posted['id']}")
    assert (status, seen["status"], seen["question"]) == (200, "pending", ASK["question"])
    status, listed = await call(api, "GET", "/api/asks?status=pending")
    assert status == 200 and [view["id"] for view in listed] == [posted["id"]]

    status, withdrawn = await call(api, "DELETE", f"/api/asks/{posted['id']}")
    assert (status, withdrawn["status"]) == (200, "withdrawn")
    assert (await call(api, "DELETE", f"/api/asks/{posted['id']}"))[0] == 409
    assert (await call(api, "GET", "/api/asks?status=pending"))[1] == []
    assert (await call(api, "GET", "/api/asks/ask_nope"))[0] == 404
    status, verdict = await call(api, "GET", "/api/provenance/asks/verify")  # the asks log
    assert status == 200 and verdict["ok"] and verdict["checked"] == 2  # posted, withdrawn


async def test_the_call_id_is_per_token(client: aioredis.Redis, service: Service) -> None:  # type: ignore[type-arg]
    """Another token's `call_id` is its own: the same id with another body is a new ask."""
    async with api_with(client, service, settings(EXPERTLOOP_API_TOKEN=None)) as http:
        first = await http.post("/api/asks", json=ASK, headers={"Authorization": "Bearer a"})
        other = await http.post("/api/asks", json={**ASK, "question": "Refund 12?"},
                                headers={"Authorization": "Bearer b"})
        assert (first.status, other.status) == (201, 201)
        assert (await first.json())["id"] != (await other.json())["id"]


async def test_a_long_poll_returns_as_soon_as_an_expert_decides(
        api: Client, service: Service) -> None:
    _, posted = await call(api, "POST", "/api/asks", json=ASK)
    path = f"/api/asks/{posted['id']}"
    assert (await call(api, "GET", f"{path}?wait=0.2"))[1]["status"] == "pending"

    polling = asyncio.create_task(call(api, "GET", f"{path}?wait=60"))
    await asyncio.sleep(0.3)  # the poll is waiting on Redis now
    assert not polling.done()
    await approve(service)
    status, decided = await asyncio.wait_for(polling, 30)  # well before its 60 s

    assert (status, decided["status"], decided["by"]) == (200, "approved", ["dr-lee"])
    assert decided["decision"] == {"verdict": "approved"}
    assert (await call(api, "GET", f"{path}?wait=60"))[1]["status"] == "approved"  # at once


async def test_the_asks_body_limit_is_256_kib_whatever_the_campaigns_limit(api: Client) -> None:
    big = {**ASK, "proposal": {"function": "refund", "args": {"note": "x" * 200_000}}}
    status, _ = await call(api, "POST", "/api/asks", json=big)  # past EXPERTLOOP_MAX_BODY=64k
    assert status == 201
    huge = {**ASK, "call_id": "call_2", "proposal": {"function": "refund",
                                                     "args": {"note": "x" * 270_000}}}
    status, body = await call(api, "POST", "/api/asks", json=huge)
    assert status == 413 and body["error"] == "body too large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut off as it arrives
        for _ in range(300):
            yield b"x" * 1024
    status, body = await call(api, "POST", "/api/asks", data=chunks())
    assert status == 413 and body["error"] == "body too large"
    assert len((await call(api, "GET", "/api/asks"))[1]) == 1


@pytest.mark.parametrize(("change", "where", "says"), [
    ({"callback": {"url": "ftp://127.0.0.1/hook"}}, ["callback", "url"], "http or https"),
    ({"callback": {"url": "http://127.0.0.1:8080/api/asks"}}, ["callback", "url"],
     "this server itself"),
    ({"callback": {"url": "http://10.1.2.3/hook"}}, ["callback", "url"], "private"),
    ({"callback": {"url": "http://localhost:9/hook"}}, ["callback", "url"], "loopback"),
    ({"callback": {"url": "http://169.254.169.254/latest"}}, ["callback", "url"],
     "link-local"),
    ({"deadline_s": 10}, ["deadline_s"], "30 s to 7 days"),
    ({"deadline_s": 8 * 86400}, ["deadline_s"], "30 s to 7 days"),
    ({"to": {"experts": ["dr-who"]}}, ["to", "experts", 0], "dr-who"),
    ({"kind": "choose"}, [], "proposal"),
])
async def test_bad_asks_are_422_naming_the_field(api: Client, change: dict[str, Any],
                                                 where: list[Any], says: str) -> None:
    status, body = await call(api, "POST", "/api/asks", json={**ASK, **change})
    assert status == 422, body
    assert body["detail"][0]["loc"][:len(where)] == where and says in json.dumps(body), body
    assert (await call(api, "GET", "/api/asks"))[1] == []  # nothing stored


async def test_a_callback_needs_the_secret_setting(client: aioredis.Redis,  # type: ignore[type-arg]
                                                   service: Service) -> None:
    async with api_with(client, service, settings(EXPERTLOOP_CALLBACK_SECRET=None)) as http:
        status, body = await call(http, "POST", "/api/asks", json={
            **ASK, "callback": {"url": "http://127.0.0.1:9/hook"}})
        assert status == 422 and "EXPERTLOOP_CALLBACK_SECRET" in body["error"]
        assert (await call(http, "POST", "/api/asks", json=ASK))[0] == 201  # polling is fine


async def test_a_long_poll_over_60_s_is_422(api: Client) -> None:
    _, posted = await call(api, "POST", "/api/asks", json=ASK)
    for wait in ("61", "-1", "soon"):
        status, body = await call(api, "GET", f"/api/asks/{posted['id']}?wait={wait}")
        assert status == 422 and body["detail"][0]["loc"] == ["query", "wait"], wait


async def test_asks_past_the_pace_are_429_with_retry_after(client: aioredis.Redis,  # type: ignore[type-arg]
                                                           service: Service) -> None:
    async with api_with(client, service, settings(EXPERTLOOP_ASKS_PER_MINUTE=3)) as http:
        for n in range(3):
            assert (await call(http, "POST", "/api/asks",
                               json={**ASK, "call_id": f"c{n}"}))[0] == 201
        response = await http.post("/api/asks", json={**ASK, "call_id": "c3"}, headers=AUTH)
        assert response.status == 429 and "3 asks a minute" in (await response.json())["error"]
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert len((await call(http, "GET", "/api/asks"))[1]) == 3


# The callback: a local receiver, the worker's sender, the service's outbox.

class Receiver:
    """An agent's webhook: answers each request with the next of `replies` (then 200)."""

    def __init__(self, *replies: Callable[[], web.StreamResponse]) -> None:
        self.replies = list(replies)
        self.got: list[tuple[dict[str, str], bytes]] = []

    async def hook(self, request: web.Request) -> web.StreamResponse:
        self.got.append((dict(request.headers), await request.read()))
        return self.replies.pop(0)() if self.replies else web.Response(text="ok")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/hook", self.hook)  # a followed 302 would come as a GET
        return app


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """docs/asks.md's ten lines, as an agent would write them."""
    stamp = headers.get("X-Expertloop-Request-Timestamp", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
        return False
    base = b"v0:" + stamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("X-Expertloop-Signature", ""))


async def post_with_callback(api: Client, url: str) -> str:
    status, posted = await call(api, "POST", "/api/asks", json={**ASK, "callback": {"url": url}})
    assert status == 201, posted
    return str(posted["id"])


async def send_pass(service: Service, sender: CallbackSender) -> int:
    return await send_callbacks(service.asks, sender, service.clock, "test-worker", block_ms=50)


def sender_for(config: Settings) -> CallbackSender:
    return CallbackSender(SECRET, callback_guard(config), timeout_s=5)


async def test_a_decision_is_called_back_signed_and_retried_under_one_delivery_id(
        api: Client, service: Service, clock: SetClock) -> None:
    receiver = Receiver(lambda: web.Response(status=500))
    async with serving(receiver.app()) as base, sender_for(settings()) as sender:
        ask_id = await post_with_callback(api, f"{base}/hook")
        assert await send_pass(service, sender) == 0  # nothing decided, nothing sent
        await approve(service)

        assert await send_pass(service, sender) == 1  # the receiver fails it: 500
        assert await send_pass(service, sender) == 0  # not again before its backoff
        clock.advance(3)
        assert await send_pass(service, sender) == 1  # 200 this time
        clock.advance(3600)
        assert await send_pass(service, sender) == 0  # delivered: never again

    assert len(receiver.got) == 2
    (first, body), (second, again) = receiver.got
    assert first["X-Expertloop-Delivery"] == second["X-Expertloop-Delivery"]
    assert body == again and first["Content-Type"] == "application/json"
    assert verified(SECRET, first, body) and verified(SECRET, second, again)
    assert not verified("another-secret", second, again)
    assert not verified(SECRET, second, again.replace(b"approved", b"rejected"))
    view = json.loads(again)
    assert (view["id"], view["status"], view["decision"]) == (ask_id, "approved",
                                                               {"verdict": "approved"})


async def test_a_redirect_is_not_followed_and_counts_as_a_failure(
        api: Client, service: Service, clock: SetClock) -> None:
    elsewhere = Receiver()
    async with serving(elsewhere.app()) as other:
        target = other.replace("127.0.0.1", "localhost") + "/hook"  # another host
        receiver = Receiver(lambda: web.Response(status=302, headers={"Location": target}))
        async with serving(receiver.app()) as base, sender_for(settings(
                EXPERTLOOP_CALLBACK_HOSTS="127.0.0.1,localhost")) as sender:
            await post_with_callback(api, f"{base}/hook")
            await approve(service)
            assert await send_pass(service, sender) == 1
            clock.advance(3)
            assert await send_pass(service, sender) == 1  # tried again: the 302 failed it

    assert elsewhere.got == []
    assert len(receiver.got) == 2


async def test_the_address_is_checked_again_when_the_callback_is_sent(
        client: aioredis.Redis, service: Service, clock: SetClock) -> None:  # type: ignore[type-arg]
    """Posted while `localhost` was allowed; the worker's guard allows it no longer (as if the
    name now resolved to a private address): nothing reaches it, and it is retried later."""
    receiver = Receiver()
    allowed = settings(EXPERTLOOP_CALLBACK_HOSTS="localhost")
    async with serving(receiver.app()) as base, api_with(client, service, allowed) as http, \
            sender_for(settings(EXPERTLOOP_CALLBACK_HOSTS="")) as sender:
        await post_with_callback(http, base.replace("127.0.0.1", "localhost") + "/hook")
        await approve(service)
        assert await send_pass(service, sender) == 1
        clock.advance(3)
        assert await send_pass(service, sender) == 1  # refused again, not given up
    assert receiver.got == []


async def test_the_openapi_document_has_the_ask_routes(api: Client) -> None:
    document = await (await api.get("/api/openapi.json")).json()
    assert {"post", "get"} <= set(document["paths"]["/api/asks"])
    assert {"get", "delete"} <= set(document["paths"]["/api/asks/{id}"])
    assert "429" in document["paths"]["/api/asks"]["post"]["responses"]
    assert {"AskRequest", "AskView"} <= set(document["components"]["schemas"])


async def test_the_dashboard_lists_the_latest_asks(api: Client, service: Service,
                                                   clock: SetClock) -> None:
    await call(api, "POST", "/api/asks", json={**ASK, "question": "Refund <b>120</b> EUR?"})
    await approve(service)
    clock.advance(60)
    await call(api, "POST", "/api/asks", json={**ASK, "call_id": "call_2", "question": "Ship?"})

    response = await api.get(f"/?token={TOKEN}")  # signs in, then shows the page
    page = await response.text()

    assert response.status == 200 and 'id="live-asks"' in page
    rows = re.findall(r'<tr class="ask (\w+)">(.*?)</tr>', page)
    assert [status for status, _ in rows] == ["pending", "approved"]  # newest first
    assert "Ship?" in rows[0][1] and "Refund &lt;b&gt;120&lt;/b&gt; EUR?" in rows[1][1]
    assert "dr-lee" in rows[1][1] and "dr-lee" not in rows[0][1]
