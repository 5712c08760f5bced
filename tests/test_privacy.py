"""An expert's own data: exported whole without a secret in it, and erased so that neither their
id nor their accounts appear anywhere again while the log they answered into still verifies."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio.cluster import RedisCluster

from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from adapters.telegram.app import TelegramBot
from bots.runtime import open_runtime
from bots.settings import Settings
from core.domain.experts import Expert
from core.domain.kinds import Choose
from core.domain.timing import SetClock
from core.errors import Conflict
from core.privacy.pseudonyms import digest
from core.privacy.rights import AlreadyErased, Privacy
from core.provenance.ledger import Ledger
from core.reports.exports import FORMATS
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.campaign_play import post_items, work
from tests.cluster import LocalCluster
from tests.conftest import NOW
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import User, joined, post_kind
from tests.test_api import api, call  # noqa: F401  (the API fixture, wired as `serve` wires it)
from tests.test_cli import run

ZED, ZED_CHAT, ZED_SLACK = "dr-zed", 918273645, "UZED4242"


async def zed_answers(coordinator: Coordinator, telegram: TelegramEmulator,
                      clock: SetClock) -> tuple[User, list[str]]:
    """Zed joins on Telegram (and Slack), answers two pairwise tasks and holds a web chat link
    and an open invite; Ann answers beside them. Returns Zed and the secrets made for them."""
    await post_kind(coordinator, "pairwise", n_items=3, overlap=2)
    zed = await joined(coordinator, telegram, ZED, ZED_CHAT, credentials="MD, nephrology")
    await coordinator.link(ZED, f"slack:{ZED_SLACK}")
    ann = await joined(coordinator, telegram, "ann", 501)
    for user in (zed, ann):
        await user.say("/next")
        for _ in range(2):
            clock.advance(9)
            assert await user.press("A is better") == 200
    secrets = [await coordinator.invite_web(ZED), await coordinator.new_invite(ZED)]
    return zed, secrets


async def test_an_export_holds_their_answers_and_access_as_digests_only(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,  # noqa: F811
        service: Service, ledger: Ledger, clock: SetClock) -> None:
    _, secrets = await zed_answers(coordinator, emulator, clock)

    found = await Privacy(service.stores, ledger).export(ZED)

    assert found.expert.identities == [f"telegram:{ZED_CHAT}", f"slack:{ZED_SLACK}"]
    assert found.expert.credentials == "MD, nephrology"
    [campaign] = found.campaigns
    assert [row["expert"] for row in campaign.answers] == [ZED, ZED]
    assert [row["decision"] for row in campaign.answers] == [
        {"type": "pairwise", "choice": "A"}] * 2
    assert all(row["events"]["answer"]["hash"] for row in campaign.answers)
    assert found.tallies["answers"] == 2
    assert found.tokens.web_chat_sha256 and len(found.tokens.invites) == 1
    assert 0 < found.tokens.invites[0].expires_in_s <= 7 * 24 * 3600
    text = found.model_dump_json()
    assert not any(secret in text for secret in secrets)
    assert "ann" not in {row["expert"] for row in campaign.answers}


async def test_after_erasure_neither_id_nor_account_appears_and_the_chain_verifies(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,  # noqa: F811
        api: TestClient, clock: SetClock, ledger: Ledger) -> None:  # type: ignore[type-arg]  # noqa: F811
    await zed_answers(coordinator, emulator, clock)
    status, exported = await call(api, "GET", f"/api/experts/{ZED}/export")
    assert status == 200 and len(exported["campaigns"][0]["answers"]) == 2

    status, report = await call(api, "POST", f"/api/experts/{ZED}/erase")

    assert status == 200 and report["answers"] == 2 and report["campaigns"] == 1
    pseudonym = report["pseudonym"]
    assert ZED not in json.dumps(report)
    shown = await everything_shown(api, ledger)
    for trace in (ZED, str(ZED_CHAT), ZED_SLACK, "nephrology", "Dr-Zed"):
        assert trace not in shown, trace
    assert shown.count(pseudonym) > 10  # the work is still there, under the pseudonym
    status, verdict = await call(api, "GET", "/api/provenance/c1/verify")
    assert status == 200 and verdict["ok"]
    status, pay = await call(api, "GET", "/api/campaigns/c1/pay")
    assert sorted(line["expert"] for line in pay["lines"]) == ["ann", pseudonym]
    for method, path in (("POST", "erase"), ("GET", "export")):
        status, again = await call(api, method, f"/api/experts/{ZED}/{path}")
        assert status == 409 and "already erased" in again["error"]
    assert (await call(api, "GET", f"/api/experts/{ZED}"))[0] == 404


async def everything_shown(http: TestClient, ledger: Ledger) -> str:  # type: ignore[type-arg]
    """What a coordinator can see of campaign c1: every export format, the reports, the raw
    event listing and the dashboard."""
    shown = []
    for form in FORMATS:
        status, body = await call(http, "GET", f"/api/campaigns/c1/export?format={form}")
        assert status == 200, form
        shown.append(body if isinstance(body, str) else json.dumps(body))
    for report in ("quality", "pay", "pay?format=csv"):
        shown.append(json.dumps((await call(http, "GET", f"/api/campaigns/c1/{report}"))[1]))
    shown.append(json.dumps(await ledger.events("c1", 0, 10_000)))
    shown.append(json.dumps((await call(http, "GET", "/api/campaigns"))[1]))
    dashboard = await http.get("/", headers={"Authorization": "Bearer s3cret-token"},
                               params={"token": "s3cret-token"})
    page = await dashboard.text()
    assert dashboard.status == 200 and "erased-" in page  # the expert rows were drawn
    shown.append(page)
    return "\n".join(shown)


async def test_the_erased_accounts_and_links_reach_nothing(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,  # noqa: F811
        service: Service, store: RedisStore, ledger: Ledger, clock: SetClock) -> None:
    zed, (web_token, invite) = await zed_answers(coordinator, emulator, clock)
    assigned = await count_assigned(store)
    await Privacy(store.roles(), ledger).erase(ZED)

    await zed.say("/next")
    assert "don't know you" in emulator.texts(ZED_CHAT)[-1]
    assert await count_assigned(store) == assigned  # no task was handed to the old account
    await zed.say(f"/start {invite}")
    assert "not valid" in emulator.texts(ZED_CHAT)[-1]
    assert await store.expert_for_identity(f"slack:{ZED_SLACK}") is None
    assert await service.expert_for_web_token(web_token) is None
    assert await store.load_expert(ZED) is None
    assert await store.expert_tallies(ZED) == {}


async def count_assigned(store: RedisStore) -> int:
    found = await store.read_events("c1", 0, 10_000)
    return sum(json.loads(event.body)["type"] == "assigned" for event in found)


async def test_a_second_erasure_says_so_and_the_id_is_never_given_out_again(
        coordinator: Coordinator, store: RedisStore, ledger: Ledger) -> None:
    await coordinator.add_expert(Expert(id=ZED, name="Zed"))
    privacy = Privacy(store.roles(), ledger)
    first = await privacy.erase(ZED)

    with pytest.raises(AlreadyErased, match="already erased"):
        await privacy.erase(ZED)
    with pytest.raises(Conflict, match="never given out again"):
        await coordinator.add_expert(Expert(id=ZED, name="Someone else"))
    assert first.pseudonym == (await store.erasures()).experts.popitem()[1]


async def test_an_erasure_cut_short_finishes_when_run_again_under_the_same_pseudonym(
        coordinator: Coordinator, store: RedisStore, ledger: Ledger) -> None:
    await coordinator.add_expert(Expert(id=ZED, name="Zed", identities=["slack:UZED"]))
    # the pseudonym was set, then the process died before anything was unlinked
    await store.client.hset("el:erased", f"e:{digest(ZED)}", "erased-first")

    report = await Privacy(store.roles(), ledger).erase(ZED)

    assert report.pseudonym == "erased-first"
    assert await store.expert_for_identity("slack:UZED") is None


async def test_the_command_line_exports_erases_and_refuses_clearly(
        redis_server: EmbeddedRedis, coordinator: Coordinator, tmp_path: Path) -> None:
    await coordinator.add_expert(Expert(id=ZED, name="Zed", identities=["slack:UZED"]))
    url = redis_server.url()

    def cli(*args: str) -> tuple[int, str, str]:
        done = run(tmp_path, "expert", *args, redis_url=url)
        return done.returncode, done.stdout, done.stderr

    code, _, _ = await asyncio.to_thread(cli, "export", ZED, "-o", str(tmp_path / "zed.json"))
    assert code == 0
    assert json.loads((tmp_path / "zed.json").read_text())["expert"]["identities"] == [
        "slack:UZED"]
    code, _, err = await asyncio.to_thread(cli, "erase", ZED)  # not at a terminal: --yes
    assert code != 0 and "cannot be undone" in err
    assert (await coordinator.expert(ZED)).identities == ["slack:UZED"]
    code, out, _ = await asyncio.to_thread(cli, "erase", ZED, "--yes")
    assert code == 0 and "shown as erased-" in out
    code, _, err = await asyncio.to_thread(cli, "erase", ZED, "--yes")
    assert code != 0 and err.strip() == f"error: expert {ZED!r} is already erased; " \
                                        "nothing is held under that id"
    code, _, err = await asyncio.to_thread(cli, "export", "nobody")
    assert code != 0 and err.strip() == "error: no expert 'nobody'"


async def test_export_and_erase_on_a_redis_cluster(redis_cluster: LocalCluster,
                                                   cluster_client: RedisCluster) -> None:
    """The erasure touches keys in many slots (the expert's, the global maps, each invite)."""
    clock = SetClock(NOW)
    async with open_runtime(Settings(REDIS_URL=redis_cluster.url()), clock) as runtime:
        drafts = [{"text": "Yes.", "model": "m1"}, {"text": "No.", "model": "m2"}]
        await post_items(runtime.coordinator, [{"id": f"q{n}", "prompt": "?", "drafts": drafts}
                                               for n in range(3)], kind="pairwise")
        await runtime.coordinator.add_expert(Expert(id=ZED, name="Zed",
                                                    identities=[f"slack:{ZED_SLACK}"]))
        secrets = [await runtime.coordinator.invite_web(ZED),
                   await runtime.coordinator.new_invite(ZED)]
        assert await work(runtime.service, clock, ZED, lambda card: Choose(choice="A")) == 3
        privacy = Privacy(runtime.store.roles(), runtime.ledger)

        found = await privacy.export(ZED)
        assert len(found.campaigns[0].answers) == 3 and len(found.tokens.invites) == 1
        report = await privacy.erase(ZED)

        assert await runtime.store.expert_for_identity(f"slack:{ZED_SLACK}") is None
        assert await runtime.service.expert_for_web_token(secrets[0]) is None
        assert await runtime.coordinator.redeem_invite(secrets[1], "slack:UNEW") is None
        events = await runtime.ledger.events("c1", limit=1000)
        assert ZED not in json.dumps(events)
        assert [e["expert"] for e in events if e["type"] == "answered"] == [report.pseudonym] * 3
        assert (await runtime.ledger.verify("c1")).ok
