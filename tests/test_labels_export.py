"""The final label per item (`export --format labels`) against figures worked out by hand: a
pairwise majority, a split settled by a third expert, an adjudicator's call, a rating's
median, a ranking's Borda order, a label and a verify majority, the model's auto-accepted item
(left out unless asked for), and items still asking, unanswered or unsettled."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from adapters.redis.store import RedisStore
from core.domain.answers import Answer
from core.domain.campaigns import Campaign
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import Choose, Decision, Label, Rank, Rate, Skip, Verify
from core.domain.timing import SetClock
from core.provenance.events import Event, body_json, iso_ms
from core.provenance.ledger import Ledger
from core.reports.exports import Export, ExportSummary
from core.reports.trainers import ExportOptions
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.campaign_play import draft_index, post_items

Decide = Callable[[Card], Decision | None]


async def answer_all(service: Service, clock: SetClock, expert: str, decide: Decide,
                     rationale: Callable[[Card], str | None] = lambda card: None,
                     limit: int = 50) -> list[Card]:
    """Work through every card offered; `decide` returning None skips the card."""
    seen = []
    for _ in range(limit):
        card = await service.next_task(expert)
        if not isinstance(card, Card):
            return seen
        seen.append(card)
        clock.advance(20)
        decision = decide(card)
        outcome = await service.submit(Answer(
            expert=expert, lease=card.lease, decision=decision or Skip(), channel="web",
            rationale=rationale(card) if decision else None))
        assert outcome.status == "recorded", outcome.reason
    return seen


async def experts(coordinator: Coordinator, *names: str, **profile: Any) -> None:
    for name in names:
        await coordinator.add_expert(Expert(id=name, name=name.title(), **profile))


async def run(ledger: Ledger, campaign: Campaign, fmt: str = "labels",
              **options: Any) -> tuple[list[dict[str, Any]], ExportSummary]:
    export = Export(ledger, campaign, fmt, ExportOptions(**options))
    lines = [line async for line in export.lines()]
    if fmt == "csv":
        return [{"line": line} for line in lines], export.summary
    return [json.loads(line) for line in lines], export.summary


def by_item(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["item"]: row for row in rows}


def pairwise(card: Card, better: bool) -> Choose:
    return Choose(choice=draft_index(card, f"{'Good' if better else 'Poor'} {card.item}."))  # type: ignore[arg-type]


async def disputed_pairwise(service: Service, coordinator: Coordinator,
                            clock: SetClock) -> Campaign:
    """p1: both prefer Good. p2: split, a third expert sides with Poor (2 of 3). p3: split
    three ways, so an adjudicator picks Good. p4: one answer of two. p5: nobody answers."""
    items = [{"id": f"p{n}", "prompt": f"Question {n}?",
              "drafts": [{"text": f"Good p{n}.", "model": "good"},
                         {"text": f"Poor p{n}.", "model": "poor"}]} for n in range(1, 6)]
    campaign = await post_items(coordinator, items, kind="pairwise", rationale="optional",
                                overlap={"min": 2, "max": 3}, adjudicate=True)
    await experts(coordinator, "ann", "bob", "cy")
    await experts(coordinator, "judge", roles=["adjudicator"])
    ann = {"p1": True, "p2": True, "p3": True, "p4": True}
    bob = {"p1": True, "p2": False, "p3": None}  # None: a tie
    await answer_all(service, clock, "ann", lambda c: pairwise(c, ann[c.item])
                     if c.item in ann else None,
                     rationale=lambda c: "cites the dose" if c.item == "p1" else None)
    await answer_all(service, clock, "bob", lambda c: (
        None if c.item not in bob else Choose(choice="tie") if bob[c.item] is None
        else pairwise(c, bool(bob[c.item]))))
    await answer_all(service, clock, "cy", lambda c: pairwise(c, False)
                     if c.item in ("p2", "p3") else None)
    card = await service.next_task("judge")
    assert isinstance(card, Card) and card.adjudication and card.item == "p3"
    outcome = await service.submit(Answer(expert="judge", lease=card.lease, channel="web",
                                          decision=pairwise(card, True),
                                          rationale="Only Good names the interaction"))
    assert outcome.status == "recorded", outcome.reason
    return campaign


async def test_labels_of_a_disputed_pairwise_campaign(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    campaign = await disputed_pairwise(service, coordinator, clock)

    rows, summary = await run(ledger, campaign)

    found = by_item(rows)
    assert [r["item"] for r in rows] == ["p1", "p2", "p3", "p4", "p5"]
    p1, p2, p3 = found["p1"], found["p2"], found["p3"]
    assert (p1["state"], p1["reached"], p1["decided_by"]) == ("settled", "majority", "expert")
    assert p1["decision"] == {"winner": 0, "loser": 1}
    assert (p1["agreement"], p1["judgments"], p1["wanted"]) == (1.0, 2, 2)
    assert p2["decision"] == {"winner": 1, "loser": 0} and p2["reached"] == "majority"
    assert (p2["agreement"], p2["judgments"], p2["wanted"]) == (0.6667, 3, 3)
    assert p2["votes"] == {"0": 1, "1": 2}
    assert (p3["state"], p3["reached"], p3["decided_by"]) == ("settled", "adjudicated",
                                                              "adjudicator")
    assert p3["decision"] == {"winner": 0, "loser": 1}
    assert (p3["agreement"], p3["judgments"]) == (0.3333, 3)
    assert p3["rationale"] == "Only Good names the interaction"
    assert [e["type"] for e in p3["events"]] == [
        "item_added", "answered", "answered", "escalated", "answered", "adjudication_needed",
        "adjudicated"]
    assert (found["p4"]["state"], found["p4"]["judgments"], found["p4"]["decision"]) == (
        "asking", 1, None)
    assert (found["p5"]["state"], found["p5"]["judgments"]) == ("unanswered", 0)
    assert summary.states == {"settled": 3, "asking": 1, "unanswered": 1}
    assert summary.decided_by == {"expert": 2, "adjudicator": 1}


async def test_label_rows_rest_on_the_logs_own_hashes(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    campaign = await disputed_pairwise(service, coordinator, clock)

    rows, _ = await run(ledger, campaign)

    logged = {e["seq"]: e for e in await ledger.events(campaign.id, 0, 500)}
    for row in rows:
        for ref in row["events"]:
            assert ref["hash"] == logged[ref["seq"]]["hash"] is not None
            assert logged[ref["seq"]]["type"] == ref["type"]
            assert logged[ref["seq"]].get("item") == row["item"]


async def waits_for_adjudication(service: Service, coordinator: Coordinator,
                                 clock: SetClock) -> Campaign:
    items = [{"id": "w1", "prompt": "Q?", "drafts": [{"text": "Good w1.", "model": "a"},
                                                     {"text": "Poor w1.", "model": "b"}]}]
    campaign = await post_items(coordinator, items, kind="pairwise", overlap=2)
    await experts(coordinator, "ann", "bob")
    await answer_all(service, clock, "ann", lambda c: pairwise(c, True))
    await answer_all(service, clock, "bob", lambda c: pairwise(c, True))
    await coordinator.adjudicate(campaign.id, "w1", "test")
    return campaign


async def test_an_item_sent_to_adjudication_waits_until_the_call(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    campaign = await waits_for_adjudication(service, coordinator, clock)

    rows, summary = await run(ledger, campaign)

    (row,) = rows
    assert (row["state"], row["decision"], row["decided_by"]) == (
        "awaiting_adjudication", None, None)
    assert row["judgments"] == 2 and row["events"][-1]["type"] == "sent_to_adjudication"
    assert summary.states == {"awaiting_adjudication": 1}


async def three_experts(service: Service, clock: SetClock,
                        *decide: Callable[[Card], Decision | None]) -> None:
    for name, rule in zip(("ann", "bob", "cy"), decide, strict=True):
        await answer_all(service, clock, name, rule)


async def test_rate_median_and_an_unsettled_spread(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    items = [{"id": i, "prompt": f"{i}?", "drafts": [{"text": f"Draft {i}.", "model": "m"}]}
             for i in ("r1", "r2")]
    campaign = await post_items(coordinator, items, kind="rate", overlap=3)
    await experts(coordinator, "ann", "bob", "cy")
    scores = {"r1": (4, 5, 5), "r2": (1, 3, 5)}
    await three_experts(service, clock, *[
        lambda c, n=n: Rate(score=scores[c.item][n]) for n in range(3)])

    rows, _ = await run(ledger, campaign)

    r1, r2 = by_item(rows)["r1"], by_item(rows)["r2"]
    assert (r1["state"], r1["decision"], r1["agreement"]) == (
        "settled", {"draft": 0, "score": 5}, 1.0)
    assert r1["votes"] == {"4": 1, "5": 2}
    assert (r2["state"], r2["decision"], r2["judgments"]) == ("unsettled", None, 3)


async def test_rank_borda_label_and_verify_majorities(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    await experts(coordinator, "ann", "bob", "cy")
    drafts = [{"text": f"D{n}.", "model": f"m{n}"} for n in range(3)]
    rank = await post_items(coordinator, [{"id": "k1", "prompt": "Rank?", "drafts": drafts}],
                            kind="rank", overlap=3, id="rank")
    orders = ([0, 1, 2], [1, 0, 2], [0, 2, 1])  # Borda: 0 has 5, 1 has 3, 2 has 1
    await three_experts(service, clock, *[
        lambda c, o=o: Rank(order=[draft_index(c, f"D{n}.") for n in o]) for o in orders])
    labels = await post_items(coordinator, [{"id": "l1", "prompt": "Which?", "drafts": [
        {"text": "Chest pain.", "model": "m"}]}], kind="label", overlap=3, id="labels",
        labels=["cardio", "neuro", "other"])
    await three_experts(service, clock, *[
        lambda c, x=x: Label(labels=[x]) for x in ("neuro", "cardio", "cardio")])
    verify = await post_items(coordinator, [{"id": "v1", "prompt": "Dose?", "drafts": [
        {"text": "5 mg.", "model": "m"}]}], kind="verify", overlap=3, id="verify")
    await three_experts(service, clock, lambda c: Verify(verdict="accept"),
                        lambda c: Verify(verdict="override", text="50 mg.", reason="too low"),
                        lambda c: Verify(verdict="accept"))

    (k1,), _ = await run(ledger, rank)
    (l1,), _ = await run(ledger, labels)
    (v1,), _ = await run(ledger, verify)

    assert (k1["decision"], k1["agreement"], k1["votes"]) == (
        {"ranking": [0, 1, 2]}, 0.6667, {"0": 2, "1": 1})
    assert (l1["decision"], l1["agreement"]) == ({"labels": ["cardio"]}, 0.6667)
    assert (v1["decision"], v1["agreement"]) == ({"draft": 0, "verdict": "accept"}, 0.6667)
    assert {r["reached"] for r in (k1, l1, v1)} == {"majority"}


async def auto_accepted(service: Service, coordinator: Coordinator, clock: SetClock,
                        store: RedisStore) -> Campaign:
    """v1 judged by an expert (override); v2 accepted by the model alone, its event written as
    the drafting code writes it."""
    items = [{"id": f"v{n}", "prompt": f"Dose {n}?", "drafts": [
        {"text": f"{n} mg.", "model": "gpt-x", "confidence": -0.05}]} for n in (1, 2)]
    campaign = await post_items(coordinator, items, kind="verify")
    await experts(coordinator, "ann")
    await answer_all(service, clock, "ann", lambda c: Verify(
        verdict="override", text="9 mg.", reason="wrong") if c.item == "v1" else None)
    event = Event(campaign=campaign.id, type="auto_accepted", at=iso_ms(clock.now_ms()),
                  actor="model", actor_id="gpt-x", item="v2", payload={
                      "decision": {"type": "verify", "verdict": "accept"}, "draft": 0,
                      "confidence": -0.05, "threshold": -0.15})
    await store.append_event(campaign.id, body_json(event))
    return campaign


async def test_the_models_decision_is_left_out_unless_asked_for(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        store: RedisStore) -> None:
    campaign = await auto_accepted(service, coordinator, clock, store)

    plain, summary = await run(ledger, campaign)
    marked, _ = await run(ledger, campaign, include_model=True)

    assert [r["item"] for r in plain] == ["v1"]
    assert summary.excluded == {"decided_by_model": 1}
    v2 = by_item(marked)["v2"]
    assert (v2["state"], v2["reached"], v2["decided_by"]) == (
        "settled", "auto_accepted", "model")
    assert v2["decision"] == {"draft": 0, "verdict": "accept"}
    assert (v2["judgments"], v2["agreement"], v2["model"]) == (0, None, "gpt-x")
    assert [e["type"] for e in v2["events"]] == ["item_added", "auto_accepted"]
    v1 = by_item(marked)["v1"]
    assert v1["decision"] == {"draft": 0, "verdict": "override", "text": "9 mg."}
    assert v1["decided_by"] == "expert"
