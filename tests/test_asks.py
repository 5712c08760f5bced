"""Live asks through the service on the embedded Redis: posting, cards, answers per kind and
quorum, deadlines, withdrawal, refusals, pay, the queues the channels and callbacks read, and
the `asks` log verifying."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.redis.store import RedisStore
from core.domain.answers import Answer
from core.domain.asks import ASKS_LOG, AskRequest, AskView
from core.domain.experts import Expert
from core.domain.kinds import Approve, Choose, Skip, Verify, Write
from core.domain.timing import SetClock
from core.errors import Conflict, InvalidCampaign, NotFound
from core.provenance.events import iso_ms as iso
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


async def test_after_an_answer_an_ask_already_shown_is_not_sent_again_but_next_shows_it(
        service: Service, team: list[Expert]) -> None:
    """Two asks pushed to ann: answering one must not send the other's card a second time
    (it is in her chat already); asking for her next task shows it again, as resumed."""
    await service.asks.post(ask(), CALLER)
    await service.asks.post(ask(call_id="call-2"), CALLER)
    first, second = await service.asks.cards_for("ann")
    for card in (first, second):
        assert await service.delivered(card.lease, channel="telegram", message_id="1")

    outcome = await service.submit(answer("ann", first.lease, Approve(verdict="approved")))

    assert outcome.status == "recorded"
    assert getattr(outcome.next, "lease", None) != second.lease
    shown = await service.next_task("ann")
    assert getattr(shown, "lease", None) == second.lease and getattr(shown, "resumed", False)


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


# Deadlines: the worker's tick applies on_timeout.

async def test_an_unanswered_ask_expires_at_its_deadline(
        service: Service, clock: SetClock, ledger: Ledger, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(deadline_s=60, on_timeout="expire"), CALLER)
    token = await token_of(service, "ann")

    clock.advance(59)
    early = await service.asks.tick()
    clock.advance(2)
    ticked = await service.asks.tick()
    again = await service.asks.tick()

    assert (early, ticked, again) == (0, 1, 0)
    expired = await service.asks.view(view.id)
    assert expired.status == "expired" and expired.decision is None and expired.by == []
    assert await service.asks.cards_for("ann") == []
    late = await service.submit(answer("ann", token, Approve(verdict="approved")))
    assert late.status == "refused" and "deadline passed" in str(late.reason)
    assert [e["type"] for e in await ledger.events(ASKS_LOG)] == ["ask_posted", "ask_expired"]


async def test_on_timeout_reject_rejects_saying_nobody_answered(
        service: Service, clock: SetClock, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(deadline_s=60, on_timeout="reject"), CALLER)

    clock.advance(61)
    await service.asks.tick()

    rejected = await service.asks.view(view.id)
    assert rejected.status == "rejected" and rejected.by == []
    assert rejected.comment == "no expert answered before the deadline"


@pytest.fixture
async def levels(store: RedisStore) -> list[Expert]:
    return [await add(store, "june", level="junior"), await add(store, "stan"),
            await add(store, "sena", level="senior"), await add(store, "other", skills=["law"])]


async def test_escalation_widens_in_stages_each_with_its_own_deadline(
        service: Service, clock: SetClock, ledger: Ledger, levels: list[Expert]) -> None:
    view, _ = await service.asks.post(
        ask(to={"skills": ["billing"], "level": "standard"}, deadline_s=60,
            on_timeout="escalate"), CALLER)
    offered = [[e for e in ("june", "stan", "sena") if await service.asks.cards_for(e)]]

    for _ in range(3):
        clock.advance(61)
        await service.asks.tick()
        offered.append([e for e in ("june", "stan", "sena")
                        if await service.asks.cards_for(e)])

    assert offered == [["stan"], ["stan", "sena"], ["june", "stan", "sena"], []]
    assert (await service.asks.view(view.id)).status == "expired"
    escalations = [e["payload"] for e in await ledger.events(ASKS_LOG)
                   if e["type"] == "ask_escalated"]
    assert [(e["stage"], e["added"], e["why"]) for e in escalations] == [
        (1, ["sena"], "no expert answered before the deadline"),
        (2, ["june"], "no expert answered before the deadline")]


async def test_a_stage_that_adds_nobody_is_skipped(
        service: Service, clock: SetClock, levels: list[Expert]) -> None:
    """Nobody is above senior: the first escalation goes straight to every level."""
    view, _ = await service.asks.post(
        ask(to={"skills": ["billing"], "level": "senior"}, deadline_s=60,
            on_timeout="escalate"), CALLER)

    clock.advance(61)
    await service.asks.tick()

    escalated = await service.asks.view(view.id)
    assert escalated.stage == 2 and escalated.status == "pending"
    assert escalated.expires_at == iso(clock.now_ms() + 60_000)
    assert await service.asks.cards_for("june") and await service.asks.cards_for("stan")


async def test_a_named_expert_ask_has_nobody_to_escalate_to(
        service: Service, clock: SetClock, levels: list[Expert]) -> None:
    view, _ = await service.asks.post(
        ask(to={"experts": ["stan"]}, deadline_s=60, on_timeout="escalate"), CALLER)

    clock.advance(61)
    await service.asks.tick()

    assert (await service.asks.view(view.id)).status == "expired"
    assert await service.asks.cards_for("sena") == []


async def test_workers_ticking_at_once_escalate_once(
        service: Service, store: RedisStore, clock: SetClock, ledger: Ledger,
        levels: list[Expert]) -> None:
    await service.asks.post(ask(to={"skills": ["billing"], "level": "standard"},
                                deadline_s=60, on_timeout="escalate"), CALLER)
    others = [Service(store.roles(), clock).asks for _ in range(4)]

    clock.advance(61)
    changed = await asyncio.gather(*(asks.tick() for asks in others))

    assert sum(changed) == 1
    types = [e["type"] for e in await ledger.events(ASKS_LOG)]
    assert types.count("ask_escalated") == 1


# Withdrawal.

async def test_a_withdrawn_ask_leaves_every_card_and_stays_withdrawn(
        service: Service, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(), CALLER)

    withdrawn = await service.asks.withdraw(view.id)

    assert withdrawn.status == "withdrawn" and withdrawn.waiting is None
    assert await service.asks.cards_for("ann") == []
    with pytest.raises(Conflict):
        await service.asks.withdraw(view.id)


async def test_an_answer_mid_withdrawal_is_recorded_after_it_and_the_expert_told(
        service: Service, ledger: Ledger, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(), CALLER)
    token = await token_of(service, "ann")  # the card is on ann's screen

    await service.asks.withdraw(view.id)
    outcome = await service.submit(answer("ann", token, Approve(verdict="approved")))

    assert outcome.status == "recorded"
    assert outcome.reason == "Recorded, but the asker had withdrawn the question."
    after = await service.asks.view(view.id)
    assert after.status == "withdrawn" and after.decision is None
    assert [d.after_withdrawal for d in after.decisions] == [True]
    answered = [e for e in await ledger.events(ASKS_LOG) if e["type"] == "ask_answered"]
    assert answered[0]["payload"]["after_withdrawal"] is True


async def test_a_decided_ask_cannot_be_withdrawn(service: Service,
                                                 team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(), CALLER)
    await service.submit(answer("ann", await token_of(service, "ann"),
                                Approve(verdict="approved")))

    with pytest.raises(Conflict):
        await service.asks.withdraw(view.id)
    assert (await service.asks.view(view.id)).status == "approved"


# Who may take it now.

async def test_an_ask_all_of_whose_experts_are_paused_waits_saying_why(
        service: Service, store: RedisStore, team: list[Expert]) -> None:
    for expert in team:
        await service.set_paused(expert.id, True)

    view, _ = await service.asks.post(ask(), CALLER)

    assert view.status == "pending" and "3 paused" in str(view.waiting)
    assert await service.asks.cards_for("bob") == []
    assert await service.asks.take_deliveries("w", 10, 0) == []
    await service.set_paused("bob", False)
    assert await service.asks.tick() == 1
    assert await service.asks.cards_for("bob") and await service.asks.cards_for("ann") == []
    assert (await service.asks.view(view.id)).waiting is None
    assert [d.expert for d in await service.asks.take_deliveries("w", 10, 0)] == ["bob"]


async def test_quiet_hours_hold_an_ask_unless_it_is_urgent_and_they_said_yes(
        service: Service, store: RedisStore, clock: SetClock) -> None:
    clock.now = NOON
    await add(store, "night", quiet_hours="11:00-13:00")
    await add(store, "oncall", quiet_hours="11:00-13:00", urgent_ok=True)

    calm, _ = await service.asks.post(ask(call_id="calm", deadline_s=7200), CALLER)
    urgent, _ = await service.asks.post(ask(call_id="urgent", urgent=True), CALLER)

    assert "2 in quiet hours (the ask is not urgent)" in str(calm.waiting)
    assert urgent.waiting is None
    assert [c.item for c in await service.asks.cards_for("oncall")] == [urgent.id]
    assert await service.asks.cards_for("night") == []
    clock.advance(3600)  # 13:00: their quiet hours are over
    await service.asks.tick()
    assert [c.item for c in await service.asks.cards_for("night")] == [calm.id]


# Pay, the log, the long poll.

async def test_pay_per_ask_is_credited_to_the_expert_who_answered(
        service: Service, team: list[Expert]) -> None:
    await service.asks.post(ask(pay={"per_ask": 2.5, "currency": "EUR"}), CALLER)

    await service.submit(answer("ann", await token_of(service, "ann"),
                                Approve(verdict="approved")))

    assert (await service.stats("ann")).earned == {"EUR": 2.5}
    assert (await service.stats("ann")).answers == 1
    assert (await service.stats("bob")).earned == {}


async def test_the_asks_log_verifies_and_each_ask_lists_its_event_hashes(
        service: Service, ledger: Ledger, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(quorum={"all_of": 2}), CALLER)
    ann, bob = await token_of(service, "ann"), await token_of(service, "bob")
    await service.delivered(ann, channel="telegram", message_id="7")
    await service.submit(answer("ann", ann, Approve(verdict="approved")))
    await service.submit(answer("bob", bob, Approve(verdict="approved")))
    assert (await service.asks.view(view.id)).events == []  # nothing sealed yet

    await ledger.seal(ASKS_LOG)

    verdict = await ledger.verify(ASKS_LOG)
    events = await ledger.events(ASKS_LOG)
    assert verdict.ok and verdict.checked == 5
    assert [e["type"] for e in events] == ["ask_posted", "ask_delivered", "ask_answered",
                                           "ask_answered", "ask_decided"]
    assert (await service.asks.view(view.id)).events == [e["hash"] for e in events]
    decided = events[-1]["payload"]
    assert decided["status"] == "approved" and decided["answers"] == [3, 4]


async def test_the_long_poll_returns_once_another_process_decides(
        service: Service, store: RedisStore, clock: SetClock, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(), CALLER)
    other = Service(store.roles(), clock)  # another web process, on the same Redis
    waiting = asyncio.create_task(service.asks.wait(view.id, 30))

    await other.submit(answer("ann", await token_of(other, "ann"),
                              Approve(verdict="approved")))

    assert (await asyncio.wait_for(waiting, 10)).status == "approved"
    assert (await service.asks.wait(view.id, 0.2)).status == "approved"


async def test_the_long_poll_gives_up_with_pending_after_its_wait(
        service: Service, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(), CALLER)

    assert (await service.asks.wait(view.id, 0.2)).status == "pending"


# The queues: notices and callbacks.

async def test_the_other_holders_are_told_their_card_is_no_longer_needed(
        service: Service, store: RedisStore) -> None:
    await add(store, "ann", identities=["telegram:11"])
    await add(store, "bob", identities=["telegram:22", "slack:U22", "web:bob"])
    view, _ = await service.asks.post(ask(), CALLER)
    bobs = await token_of(service, "bob")

    await service.submit(answer("ann", await token_of(service, "ann"),
                                Approve(verdict="approved")))
    notices = await service.asks.take_notices("w", 10, 0)

    assert sorted((n.identity, n.token, n.why) for n in notices) == [
        ("slack:U22", bobs, "decided"), ("telegram:22", bobs, "decided")]
    assert "No longer needed" in notices[0].text and notices[0].ask == view.id
    for notice in notices:
        await service.asks.notice_done(notice)
    assert await service.asks.take_notices("w", 10, 0) == []


async def test_a_withdrawal_notifies_every_card(service: Service, store: RedisStore) -> None:
    await add(store, "ann", identities=["telegram:11"])
    view, _ = await service.asks.post(ask(), CALLER)

    await service.asks.withdraw(view.id)

    assert [n.why for n in await service.asks.take_notices("w", 10, 0)] == ["withdrawn"]


async def test_a_decision_queues_one_callback_with_the_view_as_body(
        service: Service, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(callback={"url": "http://127.0.0.1:9/hook"}), CALLER)
    await service.submit(answer("ann", await token_of(service, "ann"),
                                Approve(verdict="approved")))

    jobs = await service.asks.take_callbacks("w", 10, 0)

    assert [(j.ask_id, j.url, j.tries) for j in jobs] == [
        (view.id, "http://127.0.0.1:9/hook", 0)]
    body = AskView.model_validate_json(jobs[0].body)
    assert body.status == "approved" and body.id == view.id
    await service.asks.callback_done(jobs[0])
    assert await service.asks.take_callbacks("w", 10, 0) == []


async def test_a_failed_callback_comes_back_at_its_time_with_the_same_delivery_and_body(
        service: Service, clock: SetClock, ledger: Ledger, team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(callback={"url": "http://127.0.0.1:9/hook"}), CALLER)
    await service.submit(answer("ann", await token_of(service, "ann"),
                                Approve(verdict="approved")))
    first = (await service.asks.take_callbacks("w", 10, 0))[0]

    assert await service.asks.callback_retry(first, "connection refused",
                                             clock.now_ms() + 2000)
    assert await service.asks.take_callbacks("w", 10, 0) == []  # not yet
    clock.advance(2)
    again = (await service.asks.take_callbacks("w", 10, 0))[0]

    assert (again.delivery, again.body, again.tries) == (first.delivery, first.body, 1)
    job = again
    for _ in range(6):
        assert await service.asks.callback_retry(job, "500", clock.now_ms())
        job = (await service.asks.take_callbacks("w", 10, 0))[0]
    assert not await service.asks.callback_retry(job, "500 Internal Server Error",
                                                 clock.now_ms())
    assert await service.asks.take_callbacks("w", 10, 0) == []
    failed = [e for e in await ledger.events(ASKS_LOG) if e["type"] == "ask_callback_failed"]
    assert [(e["item"], e["payload"]["tries"]) for e in failed] == [(view.id, 8)]


async def test_a_withdrawn_ask_sends_no_callback(service: Service,
                                                 team: list[Expert]) -> None:
    view, _ = await service.asks.post(ask(callback={"url": "http://127.0.0.1:9/hook"}), CALLER)

    await service.asks.withdraw(view.id)

    assert await service.asks.take_callbacks("w", 10, 0) == []


# What a channel asks the service about an ask's token.

async def test_the_lease_lookups_answer_for_an_ask_token(service: Service, ledger: Ledger,
                                                         store: RedisStore) -> None:
    await add(store, "ann")
    await add(store, "bob")
    await service.asks.post(ask(kind="verify", proposal=None, drafts=[{"text": "5 mg"}]),
                            CALLER)
    token = await token_of(service, "ann")

    assert await service.campaign_for_lease(token) == ASKS_LOG
    assert await service.campaign_for_lease("ask-unknown") is None
    assert await service.campaign_of_lease(token) is None
    assert await service.holds_lease("ann", token) and not await service.holds_lease("bob", token)
    assert await service.shown_draft(token, "ann") == "5 mg"
    assert await service.shown_draft(token, "bob") is None
    assert await service.opened(token, "ann")
    assert not await service.opened(token, "ann")  # once
    assert await service.delivered(token, channel="slack", message_id="m1")
    assert not await service.delivered(token, channel="slack", message_id="m1")
    assert await service.delivered(token, channel="telegram", message_id="9")
    assert not await service.give_back(token, "slack", "blocks refused")
    assert not await service.add_rationale("ann", token, "the label says 5 mg")  # not answered
    await service.submit(answer("ann", token, Verify(verdict="accept")))
    assert await service.add_rationale("ann", token, "the label says 5 mg")
    assert not await service.add_rationale("ann", token, "again")
    assert not await service.holds_lease("ann", token)
    types = [e["type"] for e in await ledger.events(ASKS_LOG)]
    assert types.count("ask_delivered") == 2 and types.count("rationale_added") == 1
