"""Qualification before a campaign, as experts and coordinators meet it: the gold items come
first and open the real tasks to those who pass; a failing expert is told kindly and gets no
more of the campaign until a coordinator lets them try again; every step is in the log, and
the time spent is paid. Posting refuses a qualification item without its gold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from adapters.redis.store import RedisStore
from core.domain.campaigns import CampaignSpec
from core.domain.cards import Card, Idle, NextTask
from core.domain.kinds import Choose, Skip
from core.domain.qualification import FAILED_MESSAGE, QualificationCounts
from core.domain.timing import SetClock
from core.errors import InvalidCampaign
from core.provenance.ledger import Ledger
from core.reports.exports import Export
from core.reports.pay import campaign_pay
from core.service.campaign_files import read_campaign
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items
from tests.test_api import api, call  # noqa: F401 (the API fixture)
from tests.test_service import add_experts, answer, of_type

RIGHT, WRONG = "Keep taking it; call your doctor.", "Stop it at once."
QUALS = [{"id": f"qual-{i}", "prompt": f"Known case {i}?", "gold": 0,
          "drafts": [{"text": RIGHT, "model": "m1"}, {"text": WRONG, "model": "m2"}]}
         for i in range(3)]


async def post(coordinator: Coordinator, pass_share: float = 0.6, quals: Any = None) -> None:
    spec = CampaignSpec(id="c1", title="Better answer?", kind="pairwise",
                        pay={"per_hour": 60, "currency": "EUR"},
                        qualification={"items": QUALS if quals is None else quals,
                                       "pass_share": pass_share})
    items = [{"id": f"real-{i}", "prompt": f"Question {i}?",
              "drafts": [{"text": "yes", "model": "m1"}, {"text": "no", "model": "m2"}]}
             for i in range(2)]
    spool = spool_items(spec, items)
    try:
        await coordinator.post_campaign(spec, spool)
    finally:
        spool.close()


def card(task: NextTask) -> Card:
    assert isinstance(task, Card), task
    return task


def choice(task: Card, text: str) -> Choose:
    return Choose(choice=next(d.label for d in task.drafts if d.text == text))


async def take_qualification(service: Service, clock: SetClock, expert: str,
                             answers: list[str]) -> NextTask:
    """Answer each qualification card (RIGHT, WRONG or "skip"), 20 s each; the next task."""
    task: NextTask = await service.next_task(expert)
    for number, given in enumerate(answers, start=1):
        shown = card(task)
        assert shown.item.startswith("qual-")
        assert f"Qualification, task {number} of {len(QUALS)}" in shown.instructions
        clock.advance(20)
        decision = Skip() if given == "skip" else choice(shown, given)
        outcome = await answer(service, expert, shown.lease, decision)
        assert outcome.status == "recorded", outcome
        assert outcome.next is not None
        task = outcome.next
    return task


async def test_passing_opens_the_real_tasks(service: Service, coordinator: Coordinator,
                                            store: RedisStore, clock: SetClock) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann")

    after = await take_qualification(service, clock, "ann", [RIGHT, WRONG, RIGHT])

    assert card(after).item.startswith("real-")
    assert "Qualification" not in card(after).instructions
    qualified = await of_type(store, "qualified")
    assert [(e["payload"]["expert"], e["payload"]["passed"], e["payload"]["share"])
            for e in qualified] == [("ann", True, 0.6667)]
    answered = await of_type(store, "answered")
    assert [e["payload"].get("qualification") for e in answered] == [True, True, True]
    assert qualified[0]["payload"]["answers"] == [e["seq"] for e in answered]


async def test_failing_is_told_kindly_and_routes_nothing_more(
        service: Service, coordinator: Coordinator, store: RedisStore, clock: SetClock) -> None:
    await post(coordinator, pass_share=0.67)  # 2 of 3 is 0.6667: under 0.67, by counts
    await add_experts(coordinator, "bob")

    after = await take_qualification(service, clock, "bob", [RIGHT, "skip", RIGHT])

    assert after == Idle(reason="no_tasks", message=FAILED_MESSAGE)
    assert await service.next_task("bob") == after
    status = await coordinator.status("c1")
    assert status.qualification == QualificationCounts(failed=1)
    assert (status.answers, status.done, status.in_progress) == (0, 0, 0)
    assert [e["payload"]["passed"] for e in await of_type(store, "qualified")] == [False]


async def test_requalify_lets_them_take_it_again(service: Service, coordinator: Coordinator,
                                                 store: RedisStore, clock: SetClock) -> None:
    await post(coordinator, pass_share=1.0)
    await add_experts(coordinator, "bob", "ann")
    await take_qualification(service, clock, "bob", [WRONG, RIGHT, RIGHT])
    await service.next_task("ann")

    assert await coordinator.requalify("bob", "c1", actor_id="lead")

    again = await take_qualification(service, clock, "bob", [RIGHT, RIGHT, RIGHT])
    assert card(again).item.startswith("real-")
    results = {r.expert: (r.state, r.right, r.answers) for r in
               await coordinator.qualification("c1")}
    assert results == {"ann": ("in_progress", 0, 0), "bob": ("passed", 3, 3)}
    assert [e["payload"]["passed"] for e in await of_type(store, "qualified")] == [False, True]
    assert [e["actor_id"] for e in await of_type(store, "requalified")] == ["lead"]


async def test_qualification_time_is_paid(service: Service, coordinator: Coordinator,
                                          ledger: Ledger, clock: SetClock) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann")
    await take_qualification(service, clock, "ann", [RIGHT, RIGHT, RIGHT])

    report = await campaign_pay(ledger, await coordinator.campaign("c1"))

    [line] = report.lines
    assert (line.expert, line.tasks, line.active_seconds) == ("ann", 3, 60.0)
    assert line.base == pytest.approx(1.0)


async def test_an_expired_qualification_task_is_offered_again(
        service: Service, coordinator: Coordinator, clock: SetClock) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann")
    first = card(await service.next_task("ann"))

    clock.advance(601)
    again = card(await service.next_task("ann"))

    assert (again.item, again.lease != first.lease) == (first.item, True)


async def test_posting_refuses_a_qualification_item_without_gold(
        coordinator: Coordinator) -> None:
    quals = [*QUALS[:1], {**QUALS[1], "gold": None}]

    with pytest.raises(InvalidCampaign) as refused:
        await post(coordinator, quals=quals)

    assert [str(p) for p in refused.value.problems] == [
        "campaign: qualification.items.1.gold: a qualification item needs `gold`, its known answer"]
    assert await coordinator.list_campaigns() == []


def test_a_campaign_file_names_the_qualification_file_line_and_field(tmp_path: Path) -> None:
    lines = [QUALS[0], {**QUALS[1], "gold": None}]
    (tmp_path / "quals.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    (tmp_path / "c.yaml").write_text("title: Better?\nkind: pairwise\n"
                                     "qualification: {items: quals.jsonl, pass_share: 0.8}\n")

    with pytest.raises(InvalidCampaign) as refused:
        read_campaign(tmp_path / "c.yaml")

    assert [str(p) for p in refused.value.problems] == [
        "quals.jsonl:2: gold: a qualification item needs `gold`, its known answer"]


def test_a_campaign_file_reads_its_qualification_beside_it(tmp_path: Path) -> None:
    (tmp_path / "quals.jsonl").write_text("\n".join(map(json.dumps, QUALS)) + "\n")
    (tmp_path / "c.yaml").write_text("title: Better?\nkind: pairwise\n"
                                     "qualification: {items: quals.jsonl}\n")

    spec, spool = read_campaign(tmp_path / "c.yaml")
    spool.close()

    assert spec.qualification is not None
    assert [item["id"] for item in spec.qualification.items] == ["qual-0", "qual-1", "qual-2"]


# the coordinator API


async def test_the_api_posts_shows_and_requalifies(
        api: TestClient,  # type: ignore[type-arg]  # noqa: F811
        service: Service, coordinator: Coordinator, clock: SetClock) -> None:
    spec = {"id": "c1", "title": "Better?", "kind": "pairwise", "items": [
        {"id": "real-0", "prompt": "Q?", "drafts": QUALS[0]["drafts"]}],
        "qualification": {"items": QUALS, "pass_share": 0.8}}
    assert (await call(api, "POST", "/api/campaigns", json=spec))[0] == 201
    await add_experts(coordinator, "bob")
    await take_qualification(service, clock, "bob", [WRONG, WRONG, RIGHT])

    status, shown = await call(api, "GET", "/api/campaigns/c1/qualification")
    _, progress = await call(api, "GET", "/api/campaigns/c1")
    again = await call(api, "POST", "/api/experts/bob/requalify/c1")

    assert status == 200 and shown["counts"] == {"passed": 0, "failed": 1, "in_progress": 0}
    assert [(e["expert"], e["state"], e["right"], e["answers"]) for e in shown["experts"]] == [
        ("bob", "failed", 1, 3)]
    assert progress["qualification"] == {"passed": 0, "failed": 1, "in_progress": 0}
    assert again == (200, {"expert": "bob", "campaign": "c1", "requalified": True, "note": None})
    assert card(await service.next_task("bob")).item == "qual-0"


async def test_the_api_refuses_a_qualification_item_without_gold(
        api: TestClient,  # type: ignore[type-arg]  # noqa: F811
        ) -> None:
    spec = {"id": "c2", "title": "Better?", "kind": "pairwise", "items": [],
            "qualification": {"items": [{**QUALS[0], "gold": None}]}}

    status, body = await call(api, "POST", "/api/campaigns", json=spec)

    assert status in (400, 422), body
    assert "qualification.items.0.gold" in json.dumps(body)
    assert (await call(api, "GET", "/api/campaigns/c2"))[0] == 404


async def test_qualification_answers_stay_in_the_trail_and_out_of_training_data(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    await post(coordinator)
    await add_experts(coordinator, "ann")
    await take_qualification(service, clock, "ann", [RIGHT, RIGHT, RIGHT])
    campaign = await coordinator.campaign("c1")

    trail = [json.loads(line) async for line in Export(ledger, campaign, "trail").lines()]
    preference = Export(ledger, campaign, "preference")
    rows = [json.loads(line) async for line in preference.lines()]

    assert sorted(row["item"] for row in trail) == ["qual-0", "qual-1", "qual-2"]
    assert rows == [] and preference.summary.excluded == {"qualification": 3}


async def test_posting_refuses_a_qualification_item_with_a_campaign_items_id(
        coordinator: Coordinator, store: RedisStore) -> None:
    clash = [{**QUALS[0], "id": "real-1"}]

    with pytest.raises(InvalidCampaign) as refused:
        await post(coordinator, quals=clash)

    assert refused.value.problems[0].loc == ("qualification", "items", 0, "id")
    assert await store.list_campaigns() == []
