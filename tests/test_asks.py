"""Live asks through the service on the embedded Redis: posting, cards, answers per kind and
quorum, deadlines, withdrawal, refusals, pay, the queues the channels and callbacks read, and
the `asks` log verifying."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.redis.store import RedisStore
from core.domain.answers import Answer
from core.domain.asks import ASKS_LOG, AskRequest
from core.domain.experts import Expert
from core.domain.kinds import Approve, Choose, Skip, Verify, Write
from core.errors import Conflict, InvalidCampaign, NotFound
from core.provenance.ledger import Ledger
from core.service.service import Service

CALLER = "c0ffee"
NOON = 1_795_003_200_000  # 2026-11-18T12:00:00Z, at least a day after conftest's NOW


def ask(**fields: Any) -> AskRequest:
    base: dict[str, Any] = {
        "call_id": "call-1", "kind": "approve", "question": "Refund 120 EUR to order 5512?",
        "context": "The parcel arrived broken.",
        "proposal": {"function": "refund", "args": {"order": 5512, "amount": 120.5}},
        "to": {"skills": ["billing"]}, "deadline_s": 900}
    return AskRequest.model_validate(base | fields)


async def add(store: RedisStore, expert_id: str, **fields: Any) -> Expert:
    base: dict[str, Any] = {"id": expert_id, "name": expert_id.title(), "skills": ["billing"],
                            "identities": [f"telegram:{abs(hash(expert_id)) % 10**6}"]}
    expert = Expert.model_validate(base | fields)
    assert await store.save_expert(expert, create=True)
    return expert


def answer(expert: str, token: str, decision: Any, **fields: Any) -> Answer:
    return Answer(expert=expert, lease=token, decision=decision, **fields)


async def token_of(service: Service, expert: str) -> str:
    cards = await service.asks.cards_for(expert)
    assert len(cards) == 1, cards
    return cards[0].lease


@pytest.fixture
async def team(store: RedisStore) -> list[Expert]:
    return [await add(store, "ann"), await add(store, "bob"), await add(store, "cy")]


async def test_an_approve_ask_reaches_each_allowed_expert_as_a_card(
        service: Service, team: list[Expert]) -> None:
    view, created = await service.asks.post(ask(pay={"per_ask": 2.0, "currency": "EUR"}),
                                            CALLER)

    assert created and view.status == "pending" and view.waiting is None
    card = (await service.asks.cards_for("ann"))[0]
    assert card.campaign == ASKS_LOG and card.item == view.id and card.kind == "approve"
    assert card.lease.startswith("ask-") and card.allowed == ["approve"]
    assert card.prompt == "Refund 120 EUR to order 5512?\n\nThe parcel arrived broken."
    assert card.ask is not None and card.ask.function == "refund"
    assert card.ask.pay == 2.0 and card.ask.currency == "EUR"
    assert card.ask.deadline_at == service.clock.now_ms() + 900_000
    assert await service.asks.card(card.lease) == card
    assert (await service.asks.cards_for("bob"))[0].lease != card.lease  # a token each


async def test_next_task_offers_the_ask_before_campaign_tasks(
        service: Service, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(), CALLER)

    task = await service.next_task("ann")

    assert task.campaign == ASKS_LOG and task.item == view.id  # type: ignore[union-attr]


async def test_any_of_one_the_first_answer_decides_and_the_late_tap_is_refused(
        service: Service, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(), CALLER)
    ann, bob = await token_of(service, "ann"), await token_of(service, "bob")

    first = await service.submit(answer("ann", ann, Approve(verdict="approved")))
    late = await service.submit(answer("bob", bob, Approve(verdict="rejected", comment="no")))

    assert first.status == "recorded" and not first.replayed
    assert late.status == "refused" and "already decided by another expert" in str(late.reason)
    decided = await service.asks.view(view.id)
    assert decided.status == "approved" and decided.decision == {"verdict": "approved"}
    assert decided.by == ["ann"] and decided.decided_at is not None
    assert [a.expert for a in decided.decisions] == ["ann"]
    assert await service.asks.cards_for("bob") == []


async def test_a_rejection_carries_its_reason_and_an_edit_its_arguments(
        service: Service, team: list[Expert]) -> None:
    rejected, _ = await service.asks.post(ask(call_id="r"), CALLER)
    await service.submit(answer("ann", await token_of(service, "ann"),
                                Approve(verdict="rejected", comment="photos are missing")))
    edited, _ = await service.asks.post(ask(call_id="e"), CALLER)
    await service.submit(answer("bob", (await service.asks.cards_for("bob"))[-1].lease,
                                Approve(verdict="edited", args={"order": 5512, "amount": 60})))

    no = await service.asks.view(rejected.id)
    yes = await service.asks.view(edited.id)
    assert no.status == "rejected" and no.comment == "photos are missing"
    assert no.decision == {"verdict": "rejected"}
    assert yes.status == "edited"
    assert yes.decision == {"verdict": "edited", "args": {"order": 5512, "amount": 60}}


async def test_a_rejection_without_a_reason_is_refused_and_nothing_recorded(
        service: Service, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(), CALLER)
    token = await token_of(service, "ann")

    outcome = await service.submit(answer("ann", token, Approve(verdict="rejected")))

    assert outcome.status == "refused" and "reason" in str(outcome.reason)
    assert (await service.asks.view(view.id)).status == "pending"
    assert await service.asks.card(token) is not None


@pytest.mark.parametrize(("kind", "fields", "decision", "shaped"), [
    ("choose", {"drafts": [{"text": "Yes."}, {"text": "No."}]}, Choose(choice="B"),
     {"choice": "B"}),
    ("verify", {"drafts": [{"text": "Take 5 mg."}]}, Verify(verdict="accept"),
     {"verdict": "accept"}),
    ("verify", {"drafts": [{"text": "Take 5 mg."}]},
     Verify(verdict="override", text="Take 2.5 mg.", reason="renal dose"),
     {"verdict": "override", "text": "Take 2.5 mg.", "reason": "renal dose"}),
    ("write", {}, Write(text="Call the patient."), {"text": "Call the patient."}),
])
async def test_every_other_kind_is_answered_with_its_decision(
        service: Service, team: list[Expert], kind: str, fields: dict[str, Any],
        decision: Any, shaped: dict[str, Any]) -> None:
    view, _ = await service.asks.post(ask(kind=kind, proposal=None, **fields), CALLER)
    card = (await service.asks.cards_for("cy"))[0]

    outcome = await service.submit(answer("cy", card.lease, decision))

    decided = await service.asks.view(view.id)
    assert outcome.status == "recorded"
    assert decided.status == "answered" and decided.decision == shaped
    assert [d.text for d in card.drafts] == [d["text"] for d in fields.get("drafts", [])]


async def test_skip_and_flag_are_refused_on_an_ask(service: Service,
                                                   team: list[Expert]) -> None:
    await service.asks.post(ask(), CALLER)
    token = await token_of(service, "ann")

    outcome = await service.submit(answer("ann", token, Skip()))

    assert outcome.status == "refused" and "wants your call" in str(outcome.reason)


async def test_all_of_two_waits_for_two_experts_and_agreement_decides(
        service: Service, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(quorum={"all_of": 2}), CALLER)

    await service.submit(answer("ann", await token_of(service, "ann"),
                                Approve(verdict="approved")))
    half = await service.asks.view(view.id)
    await service.submit(answer("bob", await token_of(service, "bob"),
                                Approve(verdict="approved", comment="fine")))

    assert half.status == "pending" and len(half.decisions) == 1
    decided = await service.asks.view(view.id)
    assert decided.status == "approved" and decided.by == ["ann", "bob"]
    assert decided.comment == "fine"


async def test_all_of_two_with_different_answers_disagrees_listing_them(
        service: Service, team: list[Expert]) -> None:
    view, _ = await service.asks.post(
        ask(kind="choose", proposal=None, drafts=[{"text": "a"}, {"text": "b"}],
            quorum={"all_of": 2}), CALLER)

    await service.submit(answer("ann", await token_of(service, "ann"), Choose(choice="A")))
    await service.submit(answer("bob", await token_of(service, "bob"), Choose(choice="B")))

    decided = await service.asks.view(view.id)
    assert decided.status == "disagreed" and decided.decision is None
    assert [(d.expert, d.decision) for d in decided.decisions] == [
        ("ann", {"choice": "A"}), ("bob", {"choice": "B"})]


async def test_all_of_any_one_rejection_rejects_at_once(service: Service,
                                                        team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(quorum={"all_of": 3}), CALLER)

    await service.submit(answer("ann", await token_of(service, "ann"),
                                Approve(verdict="approved")))
    await service.submit(answer("bob", await token_of(service, "bob"),
                                Approve(verdict="rejected", comment="fraud pattern")))

    decided = await service.asks.view(view.id)
    assert decided.status == "rejected" and decided.by == ["bob"]
    assert decided.comment == "fraud pattern"
    assert await service.asks.cards_for("cy") == []


async def test_a_double_tap_is_a_replay_that_records_nothing_twice(
        service: Service, ledger: Ledger, team: list[Expert]) -> None:
    await service.asks.post(ask(quorum={"all_of": 2}), CALLER)
    token = await token_of(service, "ann")

    first = await service.submit(answer("ann", token, Approve(verdict="approved")))
    again = await service.submit(answer("ann", token, Approve(verdict="approved")))

    assert again.replayed and again.seq == first.seq
    events = await ledger.events(ASKS_LOG)
    assert [e["type"] for e in events].count("ask_answered") == 1


async def test_a_token_answers_only_for_its_own_expert(service: Service, ledger: Ledger,
                                                       team: list[Expert]) -> None:
    """bob is allowed to answer this ask, but not with ann's button."""
    view, _ = await service.asks.post(ask(), CALLER)
    anns = await token_of(service, "ann")

    forged = await service.submit(answer("bob", anns, Approve(verdict="approved")))
    guessed = await service.submit(answer("bob", "ask-notatoken", Approve(verdict="approved")))

    assert forged.status == "refused" and "not yours" in str(forged.reason)
    assert guessed.status == "refused"
    assert (await service.asks.view(view.id)).status == "pending"
    assert "ask_answered" not in [e["type"] for e in await ledger.events(ASKS_LOG)]


async def test_a_repeat_post_is_the_same_ask_and_another_body_conflicts(
        service: Service, team: list[Expert]) -> None:
    first, created = await service.asks.post(ask(), CALLER)
    again, created_again = await service.asks.post(ask(), CALLER)
    other_caller, _ = await service.asks.post(ask(), "another-token")

    assert created and not created_again and again.id == first.id
    assert other_caller.id != first.id
    with pytest.raises(Conflict):
        await service.asks.post(ask(question="Refund 999 EUR?"), CALLER)


@pytest.mark.parametrize(("to", "quorum", "loc"), [
    ({"experts": ["ann", "dr-nobody"]}, {"any_of": 1}, ("to", "experts", 1)),
    ({"skills": ["billing", "astrology"]}, {"any_of": 1}, ("to", "skills", 1)),
    ({"skills": ["billing"]}, {"all_of": 4}, ("quorum", "all_of")),
])
async def test_an_ask_nobody_can_meet_is_refused_naming_the_field(
        service: Service, team: list[Expert], to: dict[str, Any], quorum: dict[str, int],
        loc: tuple[Any, ...]) -> None:
    with pytest.raises(InvalidCampaign) as refused:
        await service.asks.post(ask(to=to, quorum=quorum), CALLER)

    assert refused.value.problems[0].loc == loc
    assert await service.asks.list() == []


async def test_an_unknown_ask_is_not_found(service: Service) -> None:
    with pytest.raises(NotFound):
        await service.asks.view("ask_nope")


async def test_each_chat_account_of_each_expert_gets_one_card_to_push(
        service: Service, store: RedisStore) -> None:
    await add(store, "ann", identities=["telegram:11", "slack:U11", "web:ann"])
    await add(store, "bob", identities=["slack:U22"])
    view, _ = await service.asks.post(ask(), CALLER)

    pushed = await service.asks.take_deliveries("worker-1", 10, 0)

    assert sorted((d.expert, d.identity) for d in pushed) == [
        ("ann", "slack:U11"), ("ann", "telegram:11"), ("bob", "slack:U22")]
    assert {d.card.item for d in pushed} == {view.id}
    for delivery in pushed:
        await service.asks.delivery_done(delivery)
    assert await service.asks.take_deliveries("worker-2", 10, 0) == []


async def test_a_card_decided_before_its_push_is_not_pushed(
        service: Service, store: RedisStore, team: list[Expert]) -> None:
    await service.asks.post(ask(), CALLER)
    await service.submit(answer("ann", await token_of(service, "ann"),
                                Approve(verdict="approved")))

    assert await service.asks.take_deliveries("worker-1", 10, 0) == []
