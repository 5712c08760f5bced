"""The service as an expert and a coordinator rely on it: what next_task hands out, what submit
records, and what it refuses."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from typing import Any

from adapters.redis.store import RedisStore
from core.domain.answers import Answer, Outcome
from core.domain.campaigns import CampaignSpec
from core.domain.cards import Card, Idle, NextTask
from core.domain.experts import Expert
from core.domain.items import Item
from core.domain.kinds import Choose, Decision, Flag, NoneAcceptable, Rate, Skip
from core.domain.resolve import resolve
from core.domain.timing import SetClock
from core.ports import Log
from core.provenance.ledger import Ledger
from core.reports.exports import Export
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items

PAIR = [{"text": "Take it with food.", "model": "gpt-secret", "model_version": "2026-09"},
        {"text": "Never take it.", "model": "llama-hidden", "model_version": "70b"}]


async def post(coordinator: Coordinator, campaign_id: str = "c1", n_items: int = 3,
               gold: int = 0, **spec: Any) -> CampaignSpec:
    """Post a pairwise campaign of `n_items` plain items and `gold` gold items (listed last)."""
    made = CampaignSpec(id=campaign_id, title="Better answer?", kind=spec.pop("kind", "pairwise"),
                        **spec)
    drafts = PAIR if made.kind == "pairwise" else PAIR[:1]
    items: list[dict[str, Any]] = [
        {"id": f"q{i}", "prompt": f"Question {i}?", "drafts": drafts} for i in range(n_items)]
    items += [{"id": f"g{i}", "prompt": f"Gold {i}?", "drafts": drafts,
               "gold": 0 if made.kind == "pairwise" else 3} for i in range(gold)]
    spool = spool_items(made, items)
    try:
        await coordinator.post_campaign(made, spool)
    finally:
        spool.close()
    return made


async def add_experts(coordinator: Coordinator, *ids: str, **profile: Any) -> None:
    for expert_id in ids:
        await coordinator.add_expert(Expert(id=expert_id, name=expert_id.title(), **profile))


def card(task: NextTask) -> Card:
    assert isinstance(task, Card), task
    return task


async def answer(service: Service, expert: str, lease: str,
                 decision: Decision | None = None, **extra: Any) -> Outcome:
    return await service.submit(Answer(expert=expert, lease=lease,
                                       decision=decision or Choose(choice="A"), **extra))


async def events(store: Log, campaign_id: str = "c1") -> list[dict[str, Any]]:
    return [{"seq": e.seq, **json.loads(e.body)}
            for e in await store.read_events(campaign_id, 0, 100_000)]


async def of_type(store: Log, type_: str, campaign_id: str = "c1") -> list[dict[str, Any]]:
    return [e for e in await events(store, campaign_id) if e["type"] == type_]


# handing out tasks


async def test_asking_twice_returns_the_same_live_card(service: Service,
                                                       coordinator: Coordinator,
                                                       store: RedisStore) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann")

    first = card(await service.next_task("ann"))
    again = card(await service.next_task("ann"))

    assert again == first.model_copy(update={"resumed": True})  # held, maybe on screen
    assert not first.resumed
    assert len(await of_type(store, "assigned")) == 1


async def test_drafts_are_shuffled_and_never_name_their_model(
        store: RedisStore, clock: SetClock, coordinator: Coordinator) -> None:
    service = Service(store.roles(), clock, rng=random.Random(7))
    await post(coordinator, n_items=40)
    await add_experts(coordinator, "ann")
    shown_first = Counter()

    for _ in range(40):
        task = card(await service.next_task("ann"))
        shown_first[task.drafts[0].text] += 1
        serialised = task.model_dump_json()
        assert "gpt-secret" not in serialised and "llama-hidden" not in serialised
        assert "2026-09" not in serialised
        assert [d.label for d in task.drafts] == ["A", "B"]
        assert (await answer(service, "ann", task.lease)).status == "recorded"

    assert set(shown_first) == {PAIR[0]["text"], PAIR[1]["text"]}


async def test_choice_is_resolved_through_the_shuffle(service: Service, coordinator: Coordinator,
                                                      store: RedisStore) -> None:
    await post(coordinator, n_items=10)
    await add_experts(coordinator, "ann")

    for _ in range(10):
        task = card(await service.next_task("ann"))
        await answer(service, "ann", task.lease, Choose(choice="A"))
        answered = (await of_type(store, "answered"))[-1]
        decision = Choose.model_validate(answered["payload"]["decision"])
        item = Item.model_validate({"id": "x", "prompt": "p", "drafts": PAIR})
        winner = resolve(decision, answered["payload"]["order"], item)["winner"]
        assert PAIR[winner]["text"] == task.drafts[0].text


async def test_an_expert_never_gets_the_same_item_twice(service: Service,
                                                        coordinator: Coordinator) -> None:
    await post(coordinator, n_items=4, overlap=3)
    await add_experts(coordinator, "ann")
    seen = []

    while isinstance(task := await service.next_task("ann"), Card):
        seen.append(task.item)
        await answer(service, "ann", task.lease)

    assert sorted(seen) == ["q0", "q1", "q2", "q3"]
    assert task == Idle(reason="no_tasks", message=task.message)


async def test_skipped_item_is_not_offered_again_to_the_same_expert(
        service: Service, coordinator: Coordinator) -> None:
    await post(coordinator, n_items=1)
    await add_experts(coordinator, "ann", "bob")

    task = card(await service.next_task("ann"))
    outcome = await answer(service, "ann", task.lease, Skip())

    assert isinstance(outcome.next, Idle) and outcome.next.reason == "no_tasks"
    assert card(await service.next_task("bob")).item == task.item


async def test_skills_decide_who_sees_a_campaign(service: Service,
                                                 coordinator: Coordinator) -> None:
    await post(coordinator, "cardio", skills=["cardiology"])
    await post(coordinator, "general")
    await add_experts(coordinator, "gp")
    await add_experts(coordinator, "heart", skills=["cardiology", "english"])

    assert card(await service.next_task("heart")).campaign == "cardio"
    assert card(await service.next_task("gp")).campaign == "general"


async def test_expert_without_the_skills_is_idle(service: Service,
                                                 coordinator: Coordinator) -> None:
    await post(coordinator, skills=["cardiology", "german"])
    await add_experts(coordinator, "half", skills=["cardiology"])

    task = await service.next_task("half")

    assert isinstance(task, Idle) and task.reason == "no_tasks"


async def test_daily_cap_stops_an_expert_until_their_next_day(
        service: Service, coordinator: Coordinator, clock: SetClock) -> None:
    await post(coordinator, n_items=5)
    await add_experts(coordinator, "ann", daily_cap=2)

    for _ in range(2):
        outcome = await answer(service, "ann", card(await service.next_task("ann")).lease)
    assert isinstance(outcome.next, Idle) and outcome.next.reason == "daily_cap"
    capped = await service.next_task("ann")
    assert isinstance(capped, Idle) and capped.reason == "daily_cap"
    assert (await service.next_task("ann", pushed=True)) == capped

    clock.advance(24 * 3600)
    assert isinstance(await service.next_task("ann"), Card)


async def test_skips_do_not_count_toward_the_daily_cap(service: Service,
                                                       coordinator: Coordinator) -> None:
    await post(coordinator, n_items=3)
    await add_experts(coordinator, "ann", daily_cap=1)

    await answer(service, "ann", card(await service.next_task("ann")).lease, Skip())

    assert isinstance(await service.next_task("ann"), Card)


async def test_quiet_hours_stop_pushes_but_not_an_expert_who_asks(
        service: Service, coordinator: Coordinator) -> None:
    await post(coordinator)
    # the test clock reads 11:06 UTC, which is 12:06 in Berlin
    await add_experts(coordinator, "ann", time_zone="Europe/Berlin", quiet_hours="12:00-13:00")
    await add_experts(coordinator, "owl", quiet_hours="22:00-07:00")

    pushed = await service.next_task("ann", pushed=True)

    assert isinstance(pushed, Idle) and pushed.reason == "quiet_hours"
    assert isinstance(await service.next_task("ann"), Card)
    assert isinstance(await service.next_task("owl", pushed=True), Card)


async def test_only_a_free_expert_may_be_offered_a_task_unasked(
        service: Service, coordinator: Coordinator) -> None:
    await post(coordinator, skills=["medicine"])
    await add_experts(coordinator, "ann", "owl", skills=["medicine"])
    await add_experts(coordinator, "zed", time_zone="Europe/Berlin", quiet_hours="12:00-13:00",
                      skills=["medicine"])
    await add_experts(coordinator, "pat", paused=True, skills=["medicine"])
    await add_experts(coordinator, "max", daily_cap=0, skills=["medicine"])
    await add_experts(coordinator, "lay")
    card(await service.next_task("owl"))  # a card is waiting for owl

    pushable = [e for e in ("ann", "owl", "zed", "pat", "max", "lay")
                if await service.may_push(e, ["c1"])]

    assert pushable == ["ann"]


async def test_a_paused_expert_gets_no_tasks(service: Service, coordinator: Coordinator) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann", paused=True)

    task = await service.next_task("ann")

    assert isinstance(task, Idle) and task.reason == "paused"


# recording answers


async def test_double_tap_records_once_and_replays_the_first_outcome(
        service: Service, coordinator: Coordinator, store: RedisStore, clock: SetClock) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann")
    task = card(await service.next_task("ann"))

    first = await answer(service, "ann", task.lease, Choose(choice="B"), event_id="tap-1")
    clock.advance(2)
    again = await answer(service, "ann", task.lease, Choose(choice="A"), event_id="tap-2")

    assert first.status == again.status == "recorded"
    assert not first.replayed and again.replayed
    assert (again.seq, again.decision, again.answered_at) == (first.seq, "pairwise",
                                                              first.answered_at)
    answered = await of_type(store, "answered")
    assert len(answered) == 1 and answered[0]["seq"] == first.seq
    assert answered[0]["payload"]["decision"] == {"type": "pairwise", "choice": "B"}
    assert (await coordinator.status("c1")).answers == 1


async def test_answer_to_another_experts_lease_is_refused_and_not_recorded(
        service: Service, coordinator: Coordinator, store: RedisStore) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann", "eve")
    task = card(await service.next_task("ann"))
    before = await events(store)

    stolen = await answer(service, "eve", task.lease)

    assert stolen.status == "refused" and "not yours" in (stolen.reason or "")
    assert await events(store) == before
    assert (await answer(service, "ann", task.lease)).status == "recorded"


async def test_unknown_lease_is_refused(service: Service, coordinator: Coordinator) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann")

    outcome = await answer(service, "ann", "zz.no-such-lease")

    assert outcome.status == "refused" and outcome.seq is None


async def test_late_answer_is_refused_and_the_slot_returns_to_the_pool(
        service: Service, coordinator: Coordinator, store: RedisStore, clock: SetClock) -> None:
    await post(coordinator, n_items=1, time_limit_s=60)
    await add_experts(coordinator, "ann", "bob")
    task = card(await service.next_task("ann"))
    assert isinstance(await service.next_task("bob"), Idle)

    clock.advance(61)
    late = await answer(service, "ann", task.lease)

    assert late.status == "refused" and "time ran out" in (late.reason or "")
    assert late.seq is None and not late.replayed
    assert await of_type(store, "answered") == []
    assert [e["lease"] for e in await of_type(store, "lease_expired")] == [task.lease]
    assert card(await service.next_task("bob")).item == task.item
    assert (await answer(service, "ann", task.lease)).status == "refused"


async def test_worker_expiry_frees_abandoned_slots(service: Service, coordinator: Coordinator,
                                                   store: RedisStore, clock: SetClock) -> None:
    await post(coordinator, n_items=2, time_limit_s=60)
    await add_experts(coordinator, "ann", "bob", "cat")
    abandoned = [card(await service.next_task(e)).lease for e in ("ann", "bob")]
    assert isinstance(await service.next_task("cat"), Idle)

    clock.advance(30)
    assert await service.expire_leases("c1") == 0
    clock.advance(31)
    assert await service.expire_leases("c1") == 2
    assert await service.expire_leases("c1") == 0

    expired = await of_type(store, "lease_expired")
    assert sorted(e["lease"] for e in expired) == sorted(abandoned)
    status = await coordinator.status("c1")
    assert (status.in_progress, status.expired) == (0, 2)
    assert isinstance(await service.next_task("cat"), Card)
    late = await answer(service, "ann", abandoned[0])
    assert late.status == "refused" and "time ran out" in (late.reason or "")


async def tapped_in_time_then_expired(service: Service, coordinator: Coordinator,
                                      clock: SetClock, overlap: int = 1) -> tuple[Card, int]:
    """Ann takes the only item and taps at 50 s of 60; the tap waits in an inbox while the
    worker's expiry pass runs at 70 s and gives her slot back to the pool."""
    await post(coordinator, n_items=1, overlap=overlap, time_limit_s=60)
    await add_experts(coordinator, "ann", "bob", "cat")
    task = card(await service.next_task("ann"))
    clock.advance(50)
    tapped = clock.now_ms()
    clock.advance(20)
    assert await service.expire_leases("c1") == 1
    return task, tapped


async def trail(service: Service, store: RedisStore) -> list[dict[str, Any]]:
    run = Export(Ledger(store), await service.catalog.campaign("c1"), "trail")
    return [json.loads(line) async for line in run.lines()]


async def test_a_tap_made_in_time_is_honoured_late_after_the_expiry_pass(
        service: Service, coordinator: Coordinator, store: RedisStore, clock: SetClock) -> None:
    task, tapped = await tapped_in_time_then_expired(service, coordinator, clock)

    outcome = await answer(service, "ann", task.lease, acted_at=tapped)

    assert outcome.status == "recorded" and outcome.late and outcome.answered_at == tapped
    (event,) = await of_type(store, "answered")
    assert event["payload"]["late"] is True and event["payload"]["timing"]["active_seconds"] == 50
    status = await coordinator.status("c1")
    assert (status.answers, status.done, status.expired, status.in_progress) == (1, 1, 0, 0)
    assert isinstance(await service.next_task("bob"), Idle)  # the item has its one answer
    replay = await answer(service, "ann", task.lease, acted_at=tapped)
    assert replay.replayed and replay.late and replay.seq == outcome.seq
    (row,) = await trail(service, store)
    assert row["prompt"] == "Question 0?" and row["events"]["assigned"] is not None
    assert row["late"] is True
    run = Export(Ledger(store), await service.catalog.campaign("c1"), "csv")
    (csv_row,) = csv.DictReader([line async for line in run.lines()])
    assert csv_row["late"] == "1"
    verdict = await Ledger(store).verify("c1")
    assert verdict.ok and verdict.unsealed == 0, verdict.line()


async def test_a_tap_made_in_time_is_refused_once_another_expert_took_the_slot(
        service: Service, coordinator: Coordinator, store: RedisStore, clock: SetClock) -> None:
    task, tapped = await tapped_in_time_then_expired(service, coordinator, clock)
    bobs = card(await service.next_task("bob"))
    assert bobs.item == task.item

    late = await answer(service, "ann", task.lease, acted_at=tapped)

    assert late.status == "refused" and late.seq is None
    assert late.reason == "This task expired and was given to another expert; nothing was recorded."
    assert await of_type(store, "answered") == []
    assert (await answer(service, "bob", bobs.lease)).status == "recorded"
    assert (await coordinator.status("c1")).answers == 1


async def test_a_tap_made_in_time_is_refused_once_the_item_has_its_answers(
        service: Service, coordinator: Coordinator, store: RedisStore, clock: SetClock) -> None:
    task, tapped = await tapped_in_time_then_expired(service, coordinator, clock, overlap=2)
    for expert in ("bob", "cat"):
        assert (await answer(service, expert,
                             card(await service.next_task(expert)).lease)).status == "recorded"

    late = await answer(service, "ann", task.lease, acted_at=tapped)

    assert late.status == "refused" and "given to another expert" in (late.reason or "")
    assert {e["expert"] for e in await of_type(store, "answered")} == {"bob", "cat"}


async def test_a_free_slot_left_beside_the_taken_one_is_honoured(
        service: Service, coordinator: Coordinator, store: RedisStore, clock: SetClock) -> None:
    """Slots are alike: with overlap 2 and Bob in Ann's old one, the second is still free."""
    task, tapped = await tapped_in_time_then_expired(service, coordinator, clock, overlap=2)
    card(await service.next_task("bob"))

    assert (await answer(service, "ann", task.lease, acted_at=tapped)).late
    assert isinstance(await service.next_task("cat"), Idle)
    status = await coordinator.status("c1")
    assert (status.answers, status.in_progress, status.done) == (1, 1, 0)


async def test_a_tap_made_after_the_deadline_is_refused_though_kept_before_handling(
        service: Service, coordinator: Coordinator, store: RedisStore, clock: SetClock) -> None:
    task, _ = await tapped_in_time_then_expired(service, coordinator, clock)

    late = await answer(service, "ann", task.lease, acted_at=task.expires_at + 1)

    assert late.status == "refused" and "time ran out" in (late.reason or "")
    assert await of_type(store, "answered") == []
    assert (await coordinator.status("c1")).expired == 1


async def test_a_skip_made_in_time_is_recorded_late_and_frees_the_slot_once(
        service: Service, coordinator: Coordinator, store: RedisStore, clock: SetClock) -> None:
    task, tapped = await tapped_in_time_then_expired(service, coordinator, clock)

    assert (await answer(service, "ann", task.lease, Skip(), acted_at=tapped)).late
    assert card(await service.next_task("bob")).item == task.item
    assert isinstance(await service.next_task("cat"), Idle)  # one slot, given back once
    status = await coordinator.status("c1")
    assert (status.skipped, status.expired, status.in_progress) == (1, 0, 1)


async def test_skip_and_flag_free_the_slot_and_are_counted(
        service: Service, coordinator: Coordinator, store: RedisStore) -> None:
    await post(coordinator, n_items=2)
    await add_experts(coordinator, "ann", "bob", "cat", "dan")
    skipped = card(await service.next_task("ann"))
    flagged = card(await service.next_task("bob"))

    assert (await answer(service, "ann", skipped.lease, Skip())).status == "recorded"
    assert card(await service.next_task("cat")).item == skipped.item
    assert (await answer(service, "bob", flagged.lease,
                         Flag(reason="harmful", note="dosage"))).status == "recorded"
    assert card(await service.next_task("dan")).item == flagged.item

    status = await coordinator.status("c1")
    assert (status.skipped, status.flagged, status.answers, status.done) == (1, 1, 0, 0)
    assert len(await of_type(store, "skipped")) == len(await of_type(store, "flagged")) == 1
    assert (await of_type(store, "flagged"))[0]["payload"]["decision"]["reason"] == "harmful"


async def test_none_acceptable_counts_as_an_answer(service: Service, coordinator: Coordinator,
                                                   store: RedisStore) -> None:
    await post(coordinator, n_items=1)
    await add_experts(coordinator, "ann", "bob")
    task = card(await service.next_task("ann"))

    outcome = await answer(service, "ann", task.lease, NoneAcceptable(note="both unsafe"))

    assert outcome.status == "recorded" and outcome.decision == "none_acceptable"
    status = await coordinator.status("c1")
    assert (status.answers, status.none_acceptable, status.done) == (1, 1, 1)
    assert isinstance(await service.next_task("bob"), Idle)
    assert len(await of_type(store, "answered")) == 1


async def test_an_item_is_done_when_overlap_experts_answered(service: Service,
                                                             coordinator: Coordinator) -> None:
    await post(coordinator, n_items=1, overlap=2)
    await add_experts(coordinator, "ann", "bob", "cat")
    leases = {e: card(await service.next_task(e)).lease for e in ("ann", "bob")}
    assert isinstance(await service.next_task("cat"), Idle)

    await answer(service, "ann", leases["ann"])
    assert (await coordinator.status("c1")).done == 0
    await answer(service, "bob", leases["bob"])

    status = await coordinator.status("c1")
    assert (status.items, status.answers, status.done, status.in_progress) == (1, 2, 1, 0)


async def test_invalid_answer_is_refused_and_the_lease_stays_answerable(
        service: Service, coordinator: Coordinator, store: RedisStore) -> None:
    await post(coordinator, kind="rate", n_items=1)
    await add_experts(coordinator, "ann")
    task = card(await service.next_task("ann"))

    off_scale = await answer(service, "ann", task.lease, Rate(score=9))
    wrong_kind = await answer(service, "ann", task.lease, Choose(choice="A"))

    assert off_scale.status == "refused" and "between 1 and 5" in (off_scale.reason or "")
    assert wrong_kind.status == "refused" and "rate task" in (wrong_kind.reason or "")
    assert await of_type(store, "answered") == []
    good = await answer(service, "ann", task.lease, Rate(score=4))
    assert good.status == "recorded" and not good.replayed
    answered = await of_type(store, "answered")
    assert [e["payload"]["decision"]["score"] for e in answered] == [4]


# campaign state


async def test_a_closed_campaign_refuses_answers_and_gives_no_tasks(
        service: Service, coordinator: Coordinator, store: RedisStore) -> None:
    await post(coordinator, n_items=3)
    await add_experts(coordinator, "ann", "bob")
    task = card(await service.next_task("ann"))

    await coordinator.change_state("c1", "close")
    refused = await answer(service, "ann", task.lease)

    assert refused.status == "refused" and "closed" in (refused.reason or "")
    assert await of_type(store, "answered") == []
    idle = await service.next_task("bob")
    assert isinstance(idle, Idle) and idle.reason == "no_tasks"


async def test_pause_stops_new_tasks_and_resume_brings_them_back(
        service: Service, coordinator: Coordinator, store: RedisStore) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann")

    await coordinator.change_state("c1", "pause")
    assert isinstance(await service.next_task("ann"), Idle)
    assert (await coordinator.status("c1")).state == "paused"

    await coordinator.change_state("c1", "resume")
    assert isinstance(await service.next_task("ann"), Card)
    assert [e["type"] for e in await events(store) if e["actor"] == "coordinator"][-2:] == [
        "paused", "resumed"]


# gold items


async def test_gold_items_come_first_at_full_rate_and_never_count_as_done(
        service: Service, coordinator: Coordinator, store: RedisStore) -> None:
    await post(coordinator, n_items=2, gold=2, gold_rate=1.0)
    await add_experts(coordinator, "ann", "bob")

    taken: dict[str, list[str]] = {"ann": [], "bob": []}
    for expert, items in taken.items():
        while isinstance(task := await service.next_task(expert), Card):
            items.append(task.item)
            await answer(service, expert, task.lease)

    assert taken == {"ann": ["g0", "g1", "q0", "q1"], "bob": ["g0", "g1"]}

    status = await coordinator.status("c1")
    assert (status.items, status.answers, status.done) == (4, 6, 2)
    gold_answers = [e for e in await of_type(store, "answered") if e["payload"]["gold"]]
    assert sorted(e["item"] for e in gold_answers) == ["g0", "g0", "g1", "g1"]


# timing


async def test_delivered_and_opened_are_marked_once_and_time_the_answer(
        service: Service, coordinator: Coordinator, store: RedisStore, clock: SetClock) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann")
    task = card(await service.next_task("ann"))

    clock.advance(5)
    assert await service.delivered(task.lease, channel="slack", message_id="m1")
    assert not await service.delivered(task.lease, channel="slack", message_id="m2")
    clock.advance(10)
    assert await service.opened(task.lease, "ann")
    clock.advance(3)
    assert not await service.opened(task.lease, "ann")
    clock.advance(20)
    outcome = await answer(service, "ann", task.lease)

    assert outcome.active_seconds == 23
    delivered = await of_type(store, "delivered")
    assert [e["payload"] for e in delivered] == [{"channel": "slack", "message_id": "m1"}]
    assert len([e for e in await of_type(store, "opened") if e.get("lease")]) == 1
    timing = (await of_type(store, "answered"))[0]["payload"]["timing"]
    assert timing["delivered_at"] == task.expires_at - 600_000 + 5_000
    assert timing["active_seconds"] == 23
    assert not await service.opened(task.lease, "ann")


async def test_delivery_alone_starts_the_clock(service: Service, coordinator: Coordinator,
                                               clock: SetClock) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann")
    task = card(await service.next_task("ann"))

    clock.advance(40)
    await service.delivered(task.lease)
    clock.advance(12.5)

    assert (await answer(service, "ann", task.lease)).active_seconds == 12.5


async def test_active_time_is_capped_at_the_time_limit(service: Service,
                                                       coordinator: Coordinator,
                                                       clock: SetClock) -> None:
    await post(coordinator, time_limit_s=60)
    await add_experts(coordinator, "ann")
    task = card(await service.next_task("ann"))

    # a channel whose clock runs an hour behind reports an opening long before the lease
    clock.advance(30)
    stale_open = clock.now_ms() - 3600 * 1000
    outcome = await answer(service, "ann", task.lease, opened_at=stale_open)

    assert outcome.status == "recorded" and outcome.active_seconds == 60


async def test_asking_after_the_time_ran_out_gives_a_fresh_item(
        service: Service, coordinator: Coordinator, store: RedisStore, clock: SetClock) -> None:
    await post(coordinator, n_items=2, time_limit_s=60)
    await add_experts(coordinator, "ann", "bob")
    stale = card(await service.next_task("ann"))

    clock.advance(61)
    fresh = card(await service.next_task("ann"))

    assert fresh.lease != stale.lease and fresh.item != stale.item
    assert [e["lease"] for e in await of_type(store, "lease_expired")] == [stale.lease]
    assert card(await service.next_task("bob")).item == stale.item


async def test_only_the_expert_holding_a_task_can_start_its_clock(
        service: Service, coordinator: Coordinator, store: RedisStore) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann", "eve")
    task = card(await service.next_task("ann"))

    assert not await service.opened(task.lease, "eve")  # knowing the token is not enough
    assert await service.opened(task.lease, "ann")
    assert len([e for e in await of_type(store, "opened") if e.get("lease")]) == 1
