"""Live asks with real processes: an agent posts to `expertloop serve`, an expert answers, a
running `expertloop worker` calls the agent back, signed; then the coordinator's commands
(`asks list|show`, `provenance verify|events asks`) see it all, and a changed byte in the asks
log fails the check."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from adapters.redis.store import RedisStore
from core.domain.answers import Answer
from core.domain.kinds import Approve
from core.domain.timing import SystemClock
from core.service.service import Service
from tests.conftest import serving
from tests.faults.processes import Expertloop, RedisServer, run_command, wait_until, web_environment

TOKEN = "cli-token"
SECRET = "cli-callback-secret"
LOG = "el:{asks}:log"


@pytest.fixture
async def running(own_redis: RedisServer, tmp_path: Path
                  ) -> AsyncIterator[tuple[Expertloop, dict[str, str]]]:
    env = web_environment(own_redis.url, EXPERTLOOP_API_TOKEN=TOKEN,
                          EXPERTLOOP_CALLBACK_SECRET=SECRET, EXPERTLOOP_CALLBACK_HOSTS="127.0.0.1",
                          EXPERTLOOP_DATA_DIR=str(tmp_path / "var"))
    added = await run_command(env, tmp_path, "expert", "add", "dr-lee", "--name", "Dr. Lee",
                              "--skills", "billing")
    assert added.returncode == 0, added.stderr
    server, worker = Expertloop("serve", env, tmp_path), Expertloop("worker", env, tmp_path)
    await server.start()
    await worker.start()
    try:
        yield server, env
    finally:
        await worker.stop()
        await server.stop()


async def post(server: Expertloop, body: dict[str, object]) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.post(
            f"{server.url}/api/asks", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as reply:
        assert reply.status == 201, await reply.text()
        found: dict[str, object] = await reply.json()
        return found


async def test_ask_answer_callback_then_list_show_and_verify(
        running: tuple[Expertloop, dict[str, str]], own_store: RedisStore,
        tmp_path: Path) -> None:
    server, env = running
    got: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    async with serving(receiver) as base:
        asked = await post(server, {
            "call_id": "call_1", "kind": "approve", "question": "Refund 120 EUR to order 5512?",
            "proposal": {"function": "refund", "args": {"order": 5512}},
            "to": {"skills": ["billing"]}, "deadline_s": 900,
            "callback": {"url": f"{base}/hook"}})
        pending = await post(server, {"call_id": "call_2", "kind": "write",
                                   "question": "Draft the apology", "to": {"experts": ["dr-lee"]}})
        expert = Service(own_store.roles(), SystemClock())  # the expert's chat, in short
        card = next(c for c in await expert.asks.cards_for("dr-lee") if c.item == asked["id"])
        outcome = await expert.submit(Answer(expert="dr-lee", lease=card.lease,
                                             decision=Approve(verdict="edited",
                                                              args={"order": 5512, "amount": 90})))
        assert outcome.status == "recorded"
        await wait_until(lambda: got, "the worker calls the agent back", within=30)

    headers, body = got[0]
    stamp = headers["X-Expertloop-Request-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    assert headers["X-Expertloop-Signature"] == f"v0={expected.hexdigest()}"
    called_back = json.loads(body)
    assert (called_back["id"], called_back["status"]) == (asked["id"], "edited")
    assert called_back["decision"] == {"verdict": "edited", "args": {"order": 5512, "amount": 90}}

    listed = await run_command(env, tmp_path, "asks", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted([asked["id"], pending["id"]])
    assert any(f"{asked['id']}  edited  approve" in line and "by dr-lee" in line for line in lines)
    only = json.loads((await run_command(env, tmp_path, "asks", "list", "--status", "pending",
                                         "--json")).stdout)
    assert [view["id"] for view in only] == [pending["id"]]

    shown = await run_command(env, tmp_path, "asks", "show", str(asked["id"]))
    assert shown.returncode == 0 and "edited" in shown.stdout and '"amount": 90' in shown.stdout
    as_json = json.loads((await run_command(env, tmp_path, "asks", "show", str(asked["id"]),
                                            "--json")).stdout)
    assert as_json["by"] == ["dr-lee"] and as_json["status"] == "edited"
    missing = await run_command(env, tmp_path, "asks", "show", "ask_nope")
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1

    verified = await run_command(env, tmp_path, "provenance", "verify", "asks")
    assert verified.returncode == 0 and "chain verified" in verified.stdout, verified.stderr
    events = await run_command(env, tmp_path, "provenance", "events", "asks")
    kinds = [json.loads(line)["type"] for line in events.stdout.splitlines()]
    assert kinds.count("ask_posted") == 2 and kinds.count("ask_answered") == 1


async def test_a_changed_byte_in_the_asks_log_fails_verify(
        running: tuple[Expertloop, dict[str, str]], own_store: RedisStore,
        tmp_path: Path) -> None:
    server, env = running
    await post(server, {"call_id": "call_1", "kind": "write", "question": "Refund 120 EUR?",
                     "to": {"experts": ["dr-lee"]}})
    assert (await run_command(env, tmp_path, "provenance", "verify", "asks")).returncode == 0

    client = own_store.client
    entries = await client.xrange(LOG)
    await client.delete(LOG)
    for entry_id, fields in entries:  # a stream is append-only: a tamperer rewrites it whole
        await client.xadd(LOG, {"e": fields["e"].replace("120 EUR", "920 EUR")}, id=entry_id)

    broken = await run_command(env, tmp_path, "provenance", "verify", "asks")
    assert broken.returncode != 0 and "seq 1" in broken.stderr, broken.stderr
