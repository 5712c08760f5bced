"""Hard cases through the service, as experts in any channel meet them: an item the first
experts disagree on is asked again, seniors first; one still unsettled at its most goes to an
adjudicator, whose card shows who said what (in this card's draft labels) and whose call needs
a reason and is paid; rationales required or asked on escalation."""

from __future__ import annotations

import json
from typing import Any

from adapters.redis.store import RedisStore
from core.domain.answers import Answer
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import Choose
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.reports.exports import Export
from core.reports.pay import campaign_pay
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.campaign_play import draft_index, post_items

PAIR = [{"text": "Take it with food.", "model": "m1"}, {"text": "Take it fasting.", "model": "m2"}]
FOOD, FASTING = PAIR[0]["text"], PAIR[1]["text"]


async def expert(coordinator: Coordinator, expert_id: str, **more: Any) -> None:
    await coordinator.add_expert(Expert(id=expert_id, name=expert_id.title(), **more))


async def choose(service: Service, expert_id: str, text: str,
                 rationale: str | None = None) -> tuple[Card, str]:
    """Take the expert's next card and choose the draft with this text; (card, outcome)."""
    card = await service.next_task(expert_id)
    assert isinstance(card, Card), card
    outcome = await service.submit(Answer(
        expert=expert_id, lease=card.lease, rationale=rationale,
        decision=Choose(choice=draft_index(card, text))))  # type: ignore[arg-type]
    return card, outcome.reason or outcome.status


async def events(store: RedisStore, type_: str) -> list[dict[str, Any]]:
    found = [json.loads(e.body) for e in await store.read_events("c1", 0, 10_000)]
    return [e for e in found if e["type"] == type_]


async def test_a_disagreement_goes_to_a_senior_first_and_to_others_after_the_wait(
        service: Service, coordinator: Coordinator, store: RedisStore, clock: SetClock) -> None:
    await post_items(coordinator, [{"id": "q1", "prompt": "Ibuprofen?", "drafts": PAIR}],
                     kind="pairwise", overlap={"min": 2, "max": 3}, escalate_to="senior",
                     escalate_wait_s=600)
    for name in ("ann", "bob", "cy"):
        await expert(coordinator, name)
    await expert(coordinator, "sam", level="senior")
    await choose(service, "ann", FOOD)
    await choose(service, "bob", FASTING)

    [escalated] = await events(store, "escalated")
    assert escalated["item"] == "q1" and escalated["payload"]["target"] == 3
    assert getattr(await service.next_task("cy"), "reason", None) == "no_tasks"
    card, _ = await choose(service, "sam", FOOD)
    assert card.item == "q1"

    await expert(coordinator, "dee")
    clock.advance(601)
    assert getattr(await service.next_task("dee"), "reason", None) == "no_tasks"  # settled: 2 of 3
    assert (await coordinator.status("c1")).done == 1


async def test_no_senior_free_then_the_wait_opens_the_item_to_anyone(
        service: Service, coordinator: Coordinator, clock: SetClock) -> None:
    await post_items(coordinator, [{"id": "q1", "prompt": "Ibuprofen?", "drafts": PAIR}],
                     kind="pairwise", overlap={"min": 2, "max": 3}, escalate_to="senior")
    for name in ("ann", "bob", "cy"):
        await expert(coordinator, name)
    await choose(service, "ann", FOOD)
    await choose(service, "bob", FASTING)

    clock.advance(599)
    assert getattr(await service.next_task("cy"), "reason", None) == "no_tasks"
    clock.advance(2)
    card, outcome = await choose(service, "cy", FOOD)
    assert (card.item, outcome) == ("q1", "recorded")


async def test_an_adjudicator_sees_who_said_what_and_makes_a_reasoned_paid_call(
        service: Service, coordinator: Coordinator, store: RedisStore, ledger: Ledger,
        clock: SetClock) -> None:
    await post_items(coordinator, [{"id": "q1", "prompt": "Ibuprofen?", "drafts": PAIR}],
                     kind="pairwise", overlap=2, adjudicate=True,
                     pay={"per_task": 2.0, "currency": "EUR"})
    for name in ("ann", "bob"):
        await expert(coordinator, name)
    await expert(coordinator, "judge", roles=["adjudicator"])
    await choose(service, "ann", FOOD, rationale="Food protects the stomach.")
    await choose(service, "bob", FASTING)
    assert (await coordinator.status("c1")).awaiting_adjudication == 1

    card = await service.next_task("judge")
    assert isinstance(card, Card) and card.adjudication and card.rationale == "required"
    food = draft_index(card, FOOD)
    fasting = draft_index(card, FASTING)
    assert {(p.expert, p.decision, p.rationale) for p in card.prior} == {
        ("ann", f"{food} is better", "Food protects the stomach."),
        ("bob", f"{fasting} is better", None)}
    refused = await service.submit(Answer(expert="judge", lease=card.lease,
                                          decision=Choose(choice=food)))  # type: ignore[arg-type]
    assert refused.status == "refused" and "why" in (refused.reason or "")
    clock.advance(40)
    await service.submit(Answer(expert="judge", lease=card.lease, rationale="NSAID guidance.",
                                decision=Choose(choice=food)))  # type: ignore[arg-type]

    [call] = await events(store, "adjudicated")
    assert call["expert"] == "judge" and call["payload"]["rationale"] == "NSAID guidance."
    status = await coordinator.status("c1")
    assert (status.awaiting_adjudication, status.adjudicated) == (0, 1)
    pay = await campaign_pay(ledger, await coordinator.campaign("c1"))
    assert {line.expert: line.tasks for line in pay.lines} == {"ann": 1, "bob": 1, "judge": 1}


async def test_a_required_rationale_is_asked_for_and_kept_in_one_line(
        service: Service, coordinator: Coordinator, store: RedisStore) -> None:
    await post_items(coordinator, [{"id": "q1", "prompt": "Ibuprofen?", "drafts": PAIR}],
                     kind="pairwise", rationale="required")
    await expert(coordinator, "ann")

    card, outcome = await choose(service, "ann", FOOD)
    assert "why" in outcome and await events(store, "answered") == []
    again = await service.submit(Answer(expert="ann", lease=card.lease,
                                        rationale="  Food\n protects the stomach. ",
                                        decision=Choose(choice=draft_index(card, FOOD))))  # type: ignore[arg-type]
    assert again.status == "recorded"
    [answered] = await events(store, "answered")
    assert answered["payload"]["rationale"] == "Food protects the stomach."


async def test_on_escalation_only_the_item_asked_again_needs_a_reason(
        service: Service, coordinator: Coordinator) -> None:
    await post_items(coordinator, [{"id": "q1", "prompt": "Ibuprofen?", "drafts": PAIR}],
                     kind="pairwise", overlap={"min": 2, "max": 3}, rationale="on_escalation")
    for name in ("ann", "bob", "cy"):
        await expert(coordinator, name)
    first, _ = await choose(service, "ann", FOOD)
    assert first.rationale == "none"
    await choose(service, "bob", FASTING)

    card, outcome = await choose(service, "cy", FOOD)
    assert card.rationale == "required" and "why" in outcome
    again = await service.submit(Answer(expert="cy", lease=card.lease, rationale="Guideline.",
                                        decision=Choose(choice=draft_index(card, FOOD))))  # type: ignore[arg-type]
    assert again.status == "recorded"


async def test_posting_refuses_a_growing_overlap_for_text_answers(
        coordinator: Coordinator) -> None:
    try:
        await post_items(coordinator, [{"id": "q1", "prompt": "?", "drafts": PAIR[:1]}],
                         kind="correct", overlap={"min": 2, "max": 4})
    except ValueError as exc:
        assert "no vote" in str(exc)
    else:
        raise AssertionError("a correct campaign with overlap 2..4 was posted")


async def test_a_line_of_why_sent_after_the_answer_reaches_the_exports_once(
        service: Service, coordinator: Coordinator, ledger: Ledger) -> None:
    await post_items(coordinator, [{"id": "q1", "prompt": "Ibuprofen?", "drafts": PAIR}],
                     kind="pairwise", rationale="optional")
    await expert(coordinator, "ann")
    card, _ = await choose(service, "ann", FOOD)

    assert await service.add_rationale("ann", card.lease, "Food protects the stomach.")
    assert not await service.add_rationale("ann", card.lease, "A resent reply.")

    campaign = await coordinator.campaign("c1")
    rows = [json.loads(line) async for line in Export(ledger, campaign, "trail").lines()]
    assert [row["rationale"] for row in rows] == ["Food protects the stomach."]
    pairs = [json.loads(line) async for line in Export(ledger, campaign, "preference").lines()]
    assert [row["rationale"] for row in pairs] == ["Food protects the stomach."]
