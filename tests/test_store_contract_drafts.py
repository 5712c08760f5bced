"""The Drafts role's contract, on every store (single Redis and the Cluster): per-model queues
shared by workers, the model's concurrency and request rate held across them, one draft per
slot, and an item offered to experts only whole."""

from __future__ import annotations

import json

from adapters.redis.store import RedisStore
from core.domain.campaigns import Campaign, CampaignSpec, CampaignState
from core.domain.drafting import text_sha
from core.domain.items import Draft
from core.ports import DraftJob, DraftSaving
from core.provenance.events import open_body
from core.service.staging import spool_items
from tests.test_store_contract import NOW, a_claim, event, set_state

MODELS = [{"name": "m1", "base_url": "http://127.0.0.1:9/v1", "max_concurrency": 2},
          {"name": "m2", "base_url": "http://127.0.0.1:9/v1", "requests_per_minute": 600}]
HOLD = 60_000


async def drafting_campaign(store: RedisStore, *item_ids: str,
                            given: tuple[str, ...] = ()) -> Campaign:
    """A pairwise campaign of `item_ids`, each with the `given` drafts, the rest up to two to be
    drafted by m1 then m2."""
    spec = CampaignSpec(id="c1", title="Better?", kind="pairwise", overlap=1,
                        drafting={"models": MODELS})
    campaign = Campaign(id="c1", code="k1", spec=spec, created_at=NOW)
    assert await store.create_campaign(campaign, event("campaign_posted"))
    drafts = [{"text": text, "model": "human"} for text in given]
    spool = spool_items(spec, [{"id": i, "prompt": f"{i}?", "drafts": drafts} for i in item_ids])
    for batch in spool.batches():
        await store.append_items("c1", batch, open_body("c1", "item_added", NOW, "coordinator"))
    spool.close()
    await set_state(store, campaign, CampaignState.active)
    return campaign


def model(campaign: Campaign, name: str):  # type: ignore[no-untyped-def]
    assert campaign.spec.drafting is not None
    return campaign.spec.drafting.model(name)


def saving(job: DraftJob, text: str) -> DraftSaving:
    draft = Draft(text=text, model=job.model, model_version="v1")
    body = json.dumps({"actor": "model", "actor_id": job.model, "at": "2026-11-18T11:06:40.000Z",
                       "campaign": "c1", "item": job.item, "type": "drafted",
                       "payload": {"slot": job.slot}})
    ready = open_body("c1", "item_ready", NOW, "system", item=job.item)
    return DraftSaving(job, draft.model_dump_json(), text_sha(text), body, ready)


async def logged(store: RedisStore, type_: str) -> list[dict[str, object]]:
    events = [json.loads(e.body) for e in await store.read_events("c1", 0, 10_000)]
    return [e for e in events if e["type"] == type_]


async def test_a_model_never_runs_more_jobs_than_its_concurrency_across_takers(
        any_store: RedisStore) -> None:
    campaign = await drafting_campaign(any_store, "q1", "q2", "q3")
    m1 = model(campaign, "m1")

    first = await any_store.take_drafts("c1", m1, NOW, HOLD, 5)
    second = await any_store.take_drafts("c1", m1, NOW, HOLD, 5)  # another worker

    assert [(job.item, job.slot) for job in first] == [("q1", 0), ("q2", 0)]
    assert second == []
    assert json.loads(first[0].plan)["models"] == ["m1", "m2"]
    await any_store.save_draft("c1", saving(first[0], "Yes."))
    assert [job.item for job in await any_store.take_drafts("c1", m1, NOW, HOLD, 5)] == ["q3"]


async def test_requests_per_minute_spaces_when_jobs_may_go_out(any_store: RedisStore) -> None:
    campaign = await drafting_campaign(any_store, "q1", "q2", "q3")

    jobs = await any_store.take_drafts("c1", model(campaign, "m2"), NOW, HOLD, 3)

    assert [job.not_before - NOW for job in jobs] == [0, 100, 200]  # 600 a minute


async def test_an_item_is_offered_only_whole_and_each_slot_keeps_one_draft(
        any_store: RedisStore) -> None:
    campaign = await drafting_campaign(any_store, "q1")
    [a] = await any_store.take_drafts("c1", model(campaign, "m1"), NOW, HOLD, 1)
    [b] = await any_store.take_drafts("c1", model(campaign, "m2"), NOW, HOLD, 1)

    assert await any_store.save_draft("c1", saving(a, "Yes.")) == "recorded"
    assert await any_store.claim(a_claim("ann", "k1.t1", overlap=1)) == "empty"
    assert await any_store.save_draft("c1", saving(a, "Yes, again.")) == "duplicate"
    assert await any_store.save_draft("c1", saving(b, "No.")) == "ready"

    [ready] = await logged(any_store, "item_ready")
    item = ready["payload"]["item"]  # type: ignore[index]
    assert [d["text"] for d in item["drafts"]] == ["Yes.", "No."]
    assert not isinstance(await any_store.claim(a_claim("ann", "k1.t1", overlap=1)), str)
    assert len(await logged(any_store, "drafted")) == 2
    status = await any_store.drafting_status("c1")
    assert (status.pending, status.drafted, status.failed) == (0, 1, 0)


async def test_a_job_whose_holder_died_is_handed_out_again(any_store: RedisStore) -> None:
    campaign = await drafting_campaign(any_store, "q1")
    m1 = model(campaign, "m1")
    [job] = await any_store.take_drafts("c1", m1, NOW, HOLD, 1)

    assert await any_store.take_drafts("c1", m1, NOW + HOLD - 1, HOLD, 1) == []
    [again] = await any_store.take_drafts("c1", m1, NOW + HOLD, HOLD, 1)

    assert (again.item, again.slot) == (job.item, job.slot)
    assert await any_store.save_draft("c1", saving(again, "Yes.")) == "recorded"
    assert await any_store.save_draft("c1", saving(job, "Late reply.")) == "duplicate"


async def test_a_draft_identical_to_another_of_the_item_is_not_kept(
        any_store: RedisStore) -> None:
    campaign = await drafting_campaign(any_store, "q1", given=("Yes.",))
    [job] = await any_store.take_drafts("c1", model(campaign, "m1"), NOW, HOLD, 1)

    assert await any_store.save_draft("c1", saving(job, "Yes.")) == "identical"
    assert await logged(any_store, "drafted") == []
    assert await any_store.save_draft("c1", saving(job, "No.")) == "ready"


async def test_an_item_set_aside_is_drafted_again_only_where_it_lacks_a_draft(
        any_store: RedisStore) -> None:
    campaign = await drafting_campaign(any_store, "q1", "q2")
    m1, m2 = model(campaign, "m1"), model(campaign, "m2")
    [a] = [job for job in await any_store.take_drafts("c1", m1, NOW, HOLD, 2) if job.item == "q1"]
    await any_store.save_draft("c1", saving(a, "Yes."))
    [b] = [job for job in await any_store.take_drafts("c1", m2, NOW, HOLD, 1)]

    assert await any_store.fail_draft("c1", b, event("draft_failed"), None) == "aside"
    status = await any_store.drafting_status("c1")
    assert (status.pending, status.failed) == (1, 1)
    assert [job.item for job in await any_store.take_drafts("c1", m2, NOW, HOLD, 5)] == ["q2"]

    assert await any_store.redraft("c1", open_body("c1", "redraft", NOW, "coordinator")) == 1
    assert await any_store.take_drafts("c1", m1, NOW, HOLD, 5) == []  # q1's m1 draft stays
    [again] = await any_store.take_drafts("c1", m2, NOW, HOLD, 5)
    assert (again.item, again.slot) == ("q1", 1)
    assert (await any_store.drafting_status("c1")).failed == 0


async def test_a_pause_holds_every_model_of_the_campaign_until_redraft(
        any_store: RedisStore) -> None:
    campaign = await drafting_campaign(any_store, "q1", "q2")
    m1 = model(campaign, "m1")
    first, second = await any_store.take_drafts("c1", m1, NOW, HOLD, 2)

    assert await any_store.fail_draft("c1", first, event("drafting_paused"), "m1: 401") == "paused"
    assert await any_store.fail_draft("c1", second, event("drafting_paused"), "m1: 401") == "paused"

    assert (await any_store.drafting_status("c1")).paused == "m1: 401"
    assert len(await logged(any_store, "drafting_paused")) == 1
    assert await any_store.take_drafts("c1", model(campaign, "m2"), NOW, HOLD, 5) == []
    assert await any_store.redraft("c1", open_body("c1", "redraft", NOW, "coordinator")) == 0
    assert (await any_store.drafting_status("c1")).paused is None
    assert len(await any_store.take_drafts("c1", m1, NOW, HOLD, 5)) == 2
