"""The models report: how experts treat each model's drafts, against figures worked out by hand
from small campaigns answered through the service (drafts given in the file, and drafts the
OpenAI-compatible emulator wrote through the real `openai` client), from the core, the command
line and the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from adapters.models.openai_drafter import OpenAIDrafter
from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from core.domain.campaigns import Campaign
from core.domain.cards import Card
from core.domain.kinds import Choose, Correct, Decision, Flag, NoneAcceptable, Verify
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.reports.models import ModelsReport, ModelTreatment, campaign_models, edit_ratio
from core.reports.quality import campaign_quality
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items
from tests.campaign_play import add_expert, post_items, work
from tests.conftest import NOW
from tests.emulators.openai import OpenAIEmulator
from tests.test_api import api, call  # noqa: F401  (the API fixture, wired as `serve` wires it)
from tests.test_drafting import drafting, loop_of, post

DAY_1 = datetime.fromtimestamp(NOW / 1000, UTC).strftime("%Y-%m-%d")
DAY_2 = datetime.fromtimestamp(NOW / 1000 + 86_400, UTC).strftime("%Y-%m-%d")


def draft(text: str, model: str, version: str = "") -> dict[str, Any]:
    return {"text": text, "model": model, "model_version": version}


# item -> (draft, decision, active seconds); reading at 10 chars/s, so a 10-character draft
# takes 1 s to read and a 20-character one 2 s
VERIFY_A = {
    "a1": (draft("abcdefghij", "model-a", "v1"), Verify(verdict="accept"), 0.5),  # unread
    "a2": (draft("0123456789", "model-a", "v1"),
           Verify(verdict="override", text="0123456789XY", reason="incomplete"), 20.0),  # 0.2
    "a3": (draft("aaaaaaaaaa", "model-a", "v1"), Verify(verdict="accept"), 20.0),
}
VERIFY_B = {
    "b1": (draft("bbbbbbbbbbbbbbbbbbbb", "model-b"), Verify(verdict="accept"), 1.0),  # unread
    "b2": (draft("hello world!", "model-b"), NoneAcceptable(), 40.0),
    "b3": (draft("xyz", "model-b"), Flag(reason="unsure"), 10.0),
}


def items_of(table: dict[str, tuple[dict[str, Any], Decision, float]]) -> list[dict[str, Any]]:
    return [{"id": item, "prompt": f"Check {item}.", "drafts": [d]}
            for item, (d, _, _) in table.items()]


async def answer(service: Service, clock: SetClock, expert: str,
                 table: dict[str, tuple[dict[str, Any], Decision, float]]) -> None:
    await work(service, clock, expert, lambda card: table[card.item][1],
               seconds=lambda card: table[card.item][2])


async def verify_campaign(service: Service, coordinator: Coordinator, clock: SetClock
                          ) -> Campaign:
    """model-a's drafts answered on day 1; model-b's added and answered on day 2."""
    campaign = await post_items(coordinator, items_of(VERIFY_A), kind="verify",
                                reading_chars_per_s=10)
    await add_expert(coordinator, "ann")
    await answer(service, clock, "ann", VERIFY_A)
    clock.advance(86_400)
    spool = spool_items(campaign.spec, items_of(VERIFY_B))
    try:
        await coordinator.add_items(campaign.id, spool)
    finally:
        spool.close()
    await answer(service, clock, "ann", VERIFY_B)
    return campaign


def by_model(report: ModelsReport) -> dict[str, ModelTreatment]:
    return {m.model: m for m in report.models}


def counts(m: ModelTreatment | Any) -> tuple[int, ...]:
    return (m.made, m.shown, m.decided, m.accepted, m.edited, m.overridden, m.none_acceptable,
            m.flagged)


async def test_accepts_overrides_none_acceptable_and_flags_per_model_and_day(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    campaign = await verify_campaign(service, coordinator, clock)

    report = await campaign_models(ledger, campaign)

    a, b = by_model(report)["model-a"], by_model(report)["model-b"]
    assert (a.name, a.model_version, b.name) == ("model-a@v1", "v1", "model-b")
    #                 made shown decided accepted edited overridden none flagged
    assert counts(a) == (3, 3, 3, 2, 1, 1, 0, 0)
    assert counts(b) == (3, 3, 2, 1, 0, 0, 1, 1)  # a flag is shown, not decided
    assert a.acceptance_rate == pytest.approx(2 / 3) and b.acceptance_rate == 0.5
    assert a.edit_ratio.count == 1 and a.edit_ratio.quartiles == pytest.approx([0.2] * 3)
    assert b.edit_ratio.count == 0 and b.edit_ratio.mean is None
    assert a.median_decide_seconds == 20.0 and b.median_decide_seconds == 20.5  # (1 + 40) / 2
    assert [d.day for d in a.days] == [DAY_1] and [d.day for d in b.days] == [DAY_2]
    assert counts(b.days[0]) == counts(b)
    assert [(e.expert, e.acceptances, e.unread) for e in report.experts] == [("ann", 3, 2)]
    quality = await campaign_quality(ledger, campaign, resamples=0)
    assert [(e.expert, e.unread_acceptances) for e in quality.experts] == [("ann", 2)]


CORRECT = {
    "c1": (draft("abcd", "model-a", "v1"), Correct(text="abcd"), 30.0),  # left as is
    "c2": (draft("abcdefghij", "model-a", "v1"), Correct(text="abcdefghXY"), 30.0),  # 2/10
    "c3": (draft("xxxx", "model-a", "v1"), Correct(text="yyyyyyyy"), 30.0),  # 8/4, capped: 1
    "c4": (draft("0123456789", "model-a", "v1"), Correct(text="012345678"), 30.0),  # 1/10
}


async def test_edit_sizes_are_a_distribution_of_levenshtein_over_draft_length(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    campaign = await post_items(coordinator, items_of(CORRECT), kind="correct")
    await add_expert(coordinator, "ann")
    await answer(service, clock, "ann", CORRECT)

    a = (await campaign_models(ledger, campaign)).models[0]

    assert (a.decided, a.accepted, a.edited, a.overridden) == (4, 1, 3, 0)
    sizes = a.edit_ratio
    assert sizes.mean == pytest.approx((0.1 + 0.2 + 1.0) / 3)
    assert sizes.quartiles == pytest.approx([0.15, 0.2, 0.6])  # inclusive: between the points
    assert [(h.low, h.high, h.count) for h in sizes.histogram] == [
        (0.0, 0.1, 1), (0.1, 0.25, 1), (0.25, 0.5, 0), (0.5, 0.75, 0), (0.75, 1.0, 1)]


def test_edit_ratio_is_capped_at_one_and_counts_characters() -> None:
    assert edit_ratio("kitten", "sitting") == pytest.approx(3 / 6)
    assert edit_ratio("ab", "a completely different text") == 1.0
    assert edit_ratio("same", "same") == 0.0 and edit_ratio("", "") == 0.0


async def test_pairwise_wins_losses_and_ties_between_two_drafting_models(
        store: RedisStore, coordinator: Coordinator, service: Service, clock: SetClock,
        ledger: Ledger, models: OpenAIEmulator, drafter: OpenAIDrafter) -> None:
    prompts = {"q1": "First?", "q2": "Second?", "q3": "Third?"}
    campaign_id = await post(coordinator, {"id": "dr", "drafting": drafting(
        models, "model-a", "model-b")}, [{"id": i, "prompt": p} for i, p in prompts.items()])
    await loop_of(store, drafter, clock).run_until_idle()
    await add_expert(coordinator, "ann")
    wanted = {"q1": "model-a", "q2": "model-b", "q3": None}  # the better draft's model

    def choose(card: Card) -> Choose:
        model = wanted[card.item]
        if model is None:
            return Choose(choice="tie")
        text = models.draft_for(model, [{"role": "user", "content": prompts[card.item]}],
                                temperature=0.7)
        return Choose(choice=next(d.label for d in card.drafts if d.text == text))  # type: ignore[arg-type]

    await work(service, clock, "ann", choose, seconds=12.0)

    report = await campaign_models(ledger, await coordinator.campaign(campaign_id))

    a, b = by_model(report)["model-a"], by_model(report)["model-b"]
    assert counts(a) == counts(b) == (3, 3, 3, 0, 0, 0, 0, 0)  # made: the `drafted` events
    assert [(v.model, v.wins, v.losses, v.ties) for v in a.versus] == [(b.name, 1, 1, 1)]
    assert [(v.model, v.wins, v.losses, v.ties) for v in b.versus] == [(a.name, 1, 1, 1)]
    assert a.median_decide_seconds == 12.0 and a.acceptance_rate == 0.0


async def test_the_api_route_serves_the_report(api: TestClient) -> None:  # type: ignore[type-arg]  # noqa: F811
    spec = {"id": "v1", "title": "Check", "kind": "verify", "overlap": 1,
            "items": items_of(VERIFY_A)}
    assert (await call(api, "POST", "/api/campaigns", json=spec))[0] == 201

    status, report = await call(api, "GET", "/api/campaigns/v1/models")

    assert status == 200 and report["campaign"] == "v1"
    assert [(m["name"], m["made"], m["shown"]) for m in report["models"]] == [("model-a@v1", 3, 0)]
    assert (await call(api, "GET", "/api/campaigns/nope/models"))[0] == 404
    document = await (await api.get("/api/openapi.json")).json()
    route = document["paths"]["/api/campaigns/{id}/models"]["get"]
    schema = route["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ModelsReport"}
    assert "edit_ratio" in document["components"]["schemas"]["ModelTreatment"]["properties"]


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXPERTLOOP_DATA_DIR": str(data_dir)}
    env.pop("REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "bots.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120)


async def test_campaign_models_prints_a_table_or_json_and_refuses_an_unknown_id(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    server = EmbeddedRedis(data_dir)
    await server.start()
    client = aioredis.from_url(server.url(), decode_responses=True)
    try:
        store, clock = RedisStore(client), SetClock(NOW)
        service = Service(store.roles(), clock)
        await verify_campaign(service, Coordinator(store.roles(), clock, service.catalog), clock)
        table = cli(data_dir, "campaign", "models", "c1")
        as_json = cli(data_dir, "campaign", "models", "c1", "--json")
        unknown = cli(data_dir, "campaign", "models", "nope")
    finally:
        await client.aclose()
        await server.stop()

    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split()[1:9] for line in table.stdout.splitlines()
            if line.startswith("model-")}
    assert rows == {"model-a@v1": ["3", "3", "3", "2", "1", "1", "0", "0"],
                    "model-b": ["3", "3", "2", "1", "0", "0", "1", "1"]}
    assert "ann               2 of 3 acceptances" in table.stdout
    report = json.loads(as_json.stdout)
    assert [m["accepted"] for m in report["models"]] == [2, 1]
    assert unknown.returncode == 1 and unknown.stderr.strip() == "error: no campaign 'nope'"


async def test_auto_accept_audit_reports_the_share_experts_overrode(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    from core.domain.experts import Expert
    from core.domain.hard_cases import audited
    from tests.test_labels_export import answer_all
    ids = [f"v{n}" for n in range(60)]
    sample = [i for i in ids if audited("audit", i, 0.2)]  # the campaign's id and audit rate
    items = [{"id": i, "prompt": f"{i}?", "drafts": [{"text": f"{i} text.", "model": "m",
                                                      "confidence": -0.1}]} for i in ids]
    items.append({"id": "unsure", "prompt": "?", "drafts": [{"text": "t.", "model": "m",
                                                             "confidence": -0.9}]})
    campaign = await post_items(coordinator, items, kind="verify", id="audit", route={
        "auto_accept": {"confidence_at_least": -0.15, "audit_rate": 0.2}})
    await coordinator.add_expert(Expert(id="ann", name="Ann"))
    overrides = set(sample[:2])
    await answer_all(service, clock, "ann", lambda card: Verify(
        verdict="override", text="No.", reason="wrong") if card.item in overrides
        else Verify(verdict="accept") if card.item in sample[:4] or card.item == "unsure"
        else None)

    audit = (await campaign_models(ledger, campaign)).audit

    assert audit is not None and len(sample) >= 4
    assert (audit.audited, audit.judged, audit.overridden) == (len(sample), 4, 2)
    assert audit.override_rate == 0.5 and audit.confidence_at_least == -0.15
