"""Every entry point of the web process refuses what it should, markup from outside stays text
in every channel, and no secret reaches the logs or an export. The web process here is
`bots.web.serve` itself, with every channel on, against the Slack and Telegram emulators.

Covered elsewhere and not repeated: a forged or stale Slack signature (tests/test_slack.py), a
wrong or missing Telegram secret (tests/test_telegram.py), another expert's web chat link
answering a task (tests/test_webchat.py), the API's 413 and POST without a token
(tests/test_api.py), escaped titles on the dashboard (tests/test_dashboard.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from adapters.http.routes import ROUTES
from adapters.redis.store import RedisStore
from bots.channels import delivery_loops
from bots.runtime import Runtime
from bots.settings import Settings
from bots.web import serve
from bots.worker import tick
from core.domain.campaigns import CampaignSpec
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.inbox import settled
from core.service.service import Service
from core.service.staging import spool_items
from tests.emulators.slack import SlackEmulator, SlackUser, sign
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import User, post_kind
from tests.test_cli import free_port

API_TOKEN = "api-tok-5d1e0c7b9a"
TELEGRAM_TOKEN = "7000123:AAE-tg-bot-token-b1c2"
TELEGRAM_SECRET = "tg-webhook-secret-77aa"
SLACK_TOKEN = "xoxb-slack-bot-token-4f4f"
SLACK_SECRET = "slack-signing-secret-9e9e"
MAX_BODY = 64_000
EVIL = '<script>alert(1)</script><b>bold</b> & <a href="https://evil.example">x</a> <!channel>'


@dataclass
class Site:
    base: str
    runtime: Runtime
    telegram: TelegramEmulator
    slack: SlackEmulator

    async def call(self, method: str, path: str, token: str | None = API_TOKEN,
                   **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession() as http, http.request(
                method, f"{self.base}{path}", headers={**headers, **kwargs.pop("headers", {})},
                **kwargs) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except json.JSONDecodeError:
                return response.status, text


@pytest.fixture
async def site(client: aioredis.Redis, service: Service, clock: SetClock
               ) -> AsyncIterator[Site]:
    """The web process as `expertloop serve` runs it, every channel configured."""
    telegram = TelegramEmulator(token=TELEGRAM_TOKEN, clock=lambda: clock.now_ms() / 1000)
    slack = SlackEmulator(token=SLACK_TOKEN)
    await telegram.start()
    await slack.start()
    port = free_port()
    settings = Settings(
        PORT=port, EXPERTLOOP_API_TOKEN=SecretStr(API_TOKEN), EXPERTLOOP_MAX_BODY=MAX_BODY,
        TELEGRAM_BOT_TOKEN=SecretStr(TELEGRAM_TOKEN), TELEGRAM_API_URL=telegram.base_url,
        TELEGRAM_WEBHOOK_SECRET=SecretStr(TELEGRAM_SECRET),
        SLACK_BOT_TOKEN=SecretStr(SLACK_TOKEN), SLACK_SIGNING_SECRET=SecretStr(SLACK_SECRET),
        SLACK_API_URL=slack.url)
    store = RedisStore(client)
    runtime = Runtime(settings, client, store, service,
                      Coordinator(store.roles(), service.clock, service.catalog), Ledger(store))
    stop = asyncio.Event()
    task = asyncio.create_task(serve(runtime, stop))
    loops = delivery_loops(runtime)  # Telegram's and Slack's, as the worker runs them
    assert len(loops) == 2
    handling = [asyncio.create_task(loop.handle_kept(stop)) for loop in loops]
    base = f"http://127.0.0.1:{port}"
    await _until_up(base)
    telegram.webhook = (f"{base}/telegram/webhook", TELEGRAM_SECRET)
    telegram.handled = partial(settled, store, "telegram")
    slack.settle = partial(settled, store, "slack")
    try:
        yield Site(base, runtime, telegram, slack)
    finally:
        stop.set()
        await task
        await asyncio.gather(*handling)
        for loop in loops:
            await loop.close()
        await slack.stop()
        await telegram.stop()


async def _until_up(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the web process did not come up")


def _concrete(path: str) -> str:
    return re.sub(r"\{[a-z]+\}", "c1", path)


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
async def test_every_api_route_refuses_a_missing_or_wrong_token(
        site: Site, coordinator: Coordinator, route: Any) -> None:
    await post_kind(coordinator, "pairwise")
    await coordinator.add_expert(Expert(id="c1", name="Cy"))  # so /api/experts/c1 exists too
    for token in (None, "wrong", API_TOKEN + "x", API_TOKEN[:-1]):
        status, body = await site.call(route.method, _concrete(route.path), token=token,
                                       json={"id": "new", "name": "New"})
        assert status == 401 and set(body) == {"error", "detail"}, (token, body)
    assert (await coordinator.status("c1")).state == "active"
    assert await coordinator.expert("c1")  # not erased
    status, listed = await site.call("GET", "/api/campaigns")
    assert status == 200 and [c["id"] for c in listed] == ["c1"]


async def test_an_oversized_body_is_413_at_every_entry_point(
        site: Site, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    big = b'{"pad": "' + b"x" * (MAX_BODY + 1) + b'"}'
    web_token = await _web_expert(coordinator, "cy")
    signed = sign(big.decode(), _now(), SLACK_SECRET)
    for path, headers in (
            ("/api/campaigns", {"Authorization": f"Bearer {API_TOKEN}"}),
            ("/api/experts", {"Authorization": f"Bearer {API_TOKEN}"}),
            ("/telegram/webhook", {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}),
            ("/slack/events", signed),
            (f"/chat/{web_token}/answer", {"Content-Type": "application/x-www-form-urlencoded"})):
        status, _ = await site.call("POST", path, token=None, data=big,
                                    headers={"Content-Type": "application/json", **headers})
        assert status == 413, path
    assert (await coordinator.status("c1")).answers == 0


def _now() -> int:
    return int(time.time())


async def _web_expert(coordinator: Coordinator, expert_id: str, name: str = "") -> str:
    await coordinator.add_expert(Expert(id=expert_id, name=name or expert_id.title()))
    return await coordinator.invite_web(expert_id)


async def test_unsigned_slack_requests_are_refused(
        site: Site, coordinator: Coordinator) -> None:
    await coordinator.add_expert(Expert(id="ann", name="Ann", identities=["slack:UANN"]))
    ann = SlackUser(site.slack, f"{site.base}/slack/events", "UANN", secret=SLACK_SECRET)
    body = "command=%2Fexpertloop&text=next&user_id=UANN&channel_id=DANN&team_id=T0TEST"
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Slack-Request-Timestamp": str(_now())},
                        {"X-Slack-Signature": "v0=" + "0" * 64}):
            async with http.post(ann.events_url, data=body, headers={
                    "Content-Type": "application/x-www-form-urlencoded", **headers}) as sent:
                assert sent.status == 401, headers
    status, _ = await ann.send(body, "application/x-www-form-urlencoded", age_s=6 * 60)
    assert status == 401
    assert site.slack.cards("UANN") == []  # no card went out for any of them


async def test_a_web_chat_link_shows_nothing_of_another_expert(
        site: Site, coordinator: Coordinator, store: RedisStore) -> None:
    await post_kind(coordinator, "pairwise", n_items=3)
    ann = await _web_expert(coordinator, "ann", name="Annabel Quillfeather")
    eve = await _web_expert(coordinator, "eve")
    status, ann_page = await site.call("GET", f"/chat/{ann}", token=None)
    ann_lease = re.search(r'data-lease="([^"]+)"', ann_page)
    assert status == 200 and ann_lease

    shown = [await site.call("GET", f"/chat/{eve}{tail}", token=None)
             for tail in ("", "/stats")]
    csrf = re.search(r'data-csrf="([^"]+)"', shown[0][1])
    assert csrf
    opened = await site.call("POST", f"/chat/{eve}/opened", token=None,
                             data={"lease": ann_lease[1], "csrf": csrf[1]})

    for status, page in shown:
        assert status == 200
        assert "Annabel" not in str(page) and ann_lease[1] not in str(page)
    assert ann_lease[1] not in str(opened[1])
    events = [json.loads(e.body) for e in await store.read_events("c1", 0, 1000)]
    assert not [e for e in events if e["type"] == "opened" and e.get("lease") == ann_lease[1]]


async def post_evil(coordinator: Coordinator, overlap: int = 3) -> None:
    """A pairwise campaign whose every outside text is markup: title, instructions, prompt,
    drafts and the models behind them."""
    spec = CampaignSpec(id="c1", title=EVIL, instructions=EVIL, kind="pairwise",
                        overlap=overlap)
    drafts = [{"text": f"{EVIL} one", "model": f"{EVIL}-m1"},
              {"text": f"{EVIL} two", "model": "m2"}]
    spool = spool_items(spec, [{"id": "q1", "prompt": EVIL, "drafts": drafts}])
    try:
        await coordinator.post_campaign(spec, spool)
    finally:
        spool.close()


@dataclass
class Played:
    telegram: User
    slack: SlackUser
    web_token: str
    web_page: str  # the web chat as it showed the card
    invite: str


async def play_everywhere(site: Site, coordinator: Coordinator) -> Played:
    """One answer through each channel: Telegram (joined by invite), Slack and the web chat."""
    await coordinator.add_expert(Expert(id="tg", name="Tg"))
    invite = await coordinator.new_invite("tg")
    tg = User(site.telegram, 4242)
    assert await tg.say(f"/start {invite}") == 200
    assert await tg.press("A is better") == 200
    await coordinator.add_expert(Expert(id="sl", name="Sl", identities=["slack:USL"]))
    sl = SlackUser(site.slack, f"{site.base}/slack/events", "USL", secret=SLACK_SECRET)
    assert (await sl.command("next"))[0] == 200
    await site.slack.wait_for("chat.postMessage")
    assert (await sl.interact(sl.block_action("el_choose", "A")))[0] == 200
    await site.slack.wait_for("chat.update")
    web_token = await _web_expert(coordinator, "wb")
    status, page = await site.call("GET", f"/chat/{web_token}", token=None)
    lease, csrf = (re.search(rf'name="{name}" value="([^"]+)"', page) for name in
                   ("lease", "csrf"))
    assert status == 200 and lease and csrf
    status, _ = await site.call("POST", f"/chat/{web_token}/answer", token=None, data={
        "lease": lease[1], "csrf": csrf[1], "type": "pairwise", "choice": "A"},
        headers={"X-Requested-With": "fetch"})
    assert status == 200 and (await coordinator.status("c1")).answers == 3
    return Played(tg, sl, web_token, page, invite)


def mrkdwn_texts(blocks: Any) -> list[str]:
    if isinstance(blocks, dict):
        own = [blocks["text"]] if blocks.get("type") == "mrkdwn" else []
        return own + [t for value in blocks.values() for t in mrkdwn_texts(value)]
    if isinstance(blocks, list):
        return [t for value in blocks for t in mrkdwn_texts(value)]
    return []


async def test_markup_from_outside_stays_text_in_every_channel_and_on_the_dashboard(
        site: Site, coordinator: Coordinator) -> None:
    await post_evil(coordinator)
    played = await play_everywhere(site, coordinator)

    telegram = played.telegram.texts()  # as Telegram shows them, after parsing our HTML
    assert telegram.count("<script>alert(1)</script><b>bold</b> & <a href=") >= 4
    slack = [text for call in site.slack.calls if call.method in ("chat.postMessage",
                                                                  "chat.update")
             for text in mrkdwn_texts(call.args.get("blocks"))]
    assert any("&lt;script&gt;" in text for text in slack)
    assert not [text for text in slack if "<" in text]  # no tag, link or @channel of theirs
    page = played.web_page
    assert page.count("&lt;script&gt;alert(1)") >= 4 and "alert(1)</script>" not in page
    dashboard = await _dashboard(site)
    assert "&lt;script&gt;alert(1)" in dashboard and "&lt;!channel&gt;-m1" in dashboard
    assert "<script>alert" not in dashboard and "<b>bold" not in dashboard


async def _dashboard(site: Site) -> str:
    jar = aiohttp.CookieJar(unsafe=True)  # keep the login cookie for 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as http, http.get(
            f"{site.base}/", params={"token": API_TOKEN}) as response:
        assert response.status == 200
        return await response.text()


async def test_no_secret_reaches_the_logs_or_an_export(
        site: Site, coordinator: Coordinator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await post_evil(coordinator)
    played = await play_everywhere(site, coordinator)
    await _refusals(site, played)
    await tick(site.runtime)  # the worker's share: expiry, sealing, outboxes, pushes
    exports = [await site.call("GET", f"/api/campaigns/c1/export?format={form}")
               for form in ("trail", "csv")]
    exports += [await site.call("GET", f"/api/experts/{expert}/export")
                for expert in ("tg", "sl", "wb")]
    assert all(status == 200 for status, _ in exports)

    secrets = {"API token": API_TOKEN, "Telegram bot token": TELEGRAM_TOKEN,
               "Telegram webhook secret": TELEGRAM_SECRET, "Slack bot token": SLACK_TOKEN,
               "Slack signing secret": SLACK_SECRET, "web chat link": played.web_token,
               "Telegram invite": played.invite}
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args}" for r in caplog.records)
    assert len(caplog.records) > 20  # the session did log: Bot API calls, Slack Web API, ...
    leaked = {name: [r.name for r in caplog.records if secret in r.getMessage()]
              for name, secret in secrets.items() if secret in logged}
    assert leaked == {}
    exported = json.dumps([body for _, body in exports])
    assert [name for name, secret in secrets.items() if secret in exported] == []


async def _refusals(site: Site, played: Played) -> None:
    """What a refusal logs is where a secret slips out: wrong tokens, forged signatures."""
    assert (await site.call("GET", "/api/campaigns", token=API_TOKEN[::-1]))[0] == 401
    assert (await played.slack.command("next", secret="forged"))[0] == 401
    site.telegram.webhook = (f"{site.base}/telegram/webhook", "guessed")
    assert await played.telegram.say("/next") == 403
    site.telegram.webhook = (f"{site.base}/telegram/webhook", TELEGRAM_SECRET)


async def test_a_written_answer_with_markup_is_kept_verbatim_and_shown_as_text(
        site: Site, coordinator: Coordinator, store: RedisStore) -> None:
    await post_kind(coordinator, "write", n_items=2, overlap=3)
    await coordinator.add_expert(Expert(id="tg", name="Tg", identities=["telegram:4242"]))
    tg = User(site.telegram, 4242)
    await tg.say("/next")
    assert await tg.press("✍️ Write the answer (reply with text)") == 200
    assert await tg.reply(EVIL) == 200
    await coordinator.add_expert(Expert(id="sl", name="Sl", identities=["slack:USL"]))
    sl = SlackUser(site.slack, f"{site.base}/slack/events", "USL", secret=SLACK_SECRET)
    await sl.command("next")
    await site.slack.wait_for("chat.postMessage")
    assert (await sl.press("el_open_write"))[0] == 200
    await site.slack.wait_for("views.open")
    assert (await sl.submit({"text_0": EVIL}))[0] == 200
    await site.slack.wait_for("chat.update")
    web_token = await _web_expert(coordinator, "wb")
    _, page = await site.call("GET", f"/chat/{web_token}", token=None)
    lease, csrf = (re.search(rf'name="{name}" value="([^"]+)"', page) for name in
                   ("lease", "csrf"))
    assert lease and csrf
    status, fragments = await site.call("POST", f"/chat/{web_token}/answer", token=None, data={
        "lease": lease[1], "csrf": csrf[1], "type": "write", "text": EVIL},
        headers={"X-Requested-With": "fetch"})

    assert status == 200 and "<script>alert" not in json.dumps(fragments)
    written = [json.loads(e.body)["payload"]["decision"]["text"]
               for e in await store.read_events("c1", 0, 1000)
               if json.loads(e.body)["type"] == "answered"]
    assert written == [EVIL] * 3  # recorded exactly as typed, in every channel
    assert "Saved" in tg.texts()  # every Telegram message parsed: none was refused as bad HTML
    slack = [text for call in site.slack.calls for text in mrkdwn_texts(call.args.get("blocks"))]
    assert not [text for text in slack if "<" in text]
