"""Drafting: a campaign's models draft what its items lack, through the real `openai` client to
the OpenAI-compatible emulator, before any expert sees an item; every request, reply, usage and
cost lands in the log, and every failure the endpoint can throw ends where it should."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from adapters.models.openai_drafter import OpenAIDrafter
from adapters.redis.store import RedisStore
from core.domain.campaigns import CampaignSpec
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.errors import InvalidCampaign
from core.service.coordinator import Coordinator
from core.service.drafting import DraftingLoop, DraftingSettings
from core.service.service import Service
from core.service.staging import spool_items
from tests.conftest import KEY_ENV
from tests.emulators.openai import API_KEY, OpenAIEmulator

FAST = DraftingSettings(backoff_s=0.01, most_wait_s=0.05, poll_s=0.01)


def loop_of(store: RedisStore, drafter: OpenAIDrafter, clock: SetClock,
            settings: DraftingSettings = FAST) -> DraftingLoop:
    return DraftingLoop(store, store, drafter, clock, settings)


def drafting(emulator: OpenAIEmulator, *names: str, **more: Any) -> dict[str, Any]:
    models = [{"name": name, "base_url": emulator.url, "api_key_env": KEY_ENV,
               "params": {"temperature": 0.7},
               "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}} for name in names]
    return {"models": models, **more}


async def post(coordinator: Coordinator, spec: dict[str, Any],
               items: list[dict[str, Any]]) -> str:
    campaign = CampaignSpec.model_validate({"title": "Drafted", "kind": "pairwise", **spec})
    spool = spool_items(campaign, items)
    posted = await coordinator.post_campaign(campaign, spool)
    spool.close()
    return posted.id


async def events(store: RedisStore, campaign_id: str, type_: str) -> list[dict[str, Any]]:
    found = [json.loads(e.body) for e in await store.read_events(campaign_id, 0, 100_000)]
    return [e for e in found if e["type"] == type_]


async def test_a_pairwise_item_without_drafts_is_drafted_by_two_models_before_it_is_offered(
        store: RedisStore, coordinator: Coordinator, service: Service, clock: SetClock,
        models: OpenAIEmulator, drafter: OpenAIDrafter) -> None:
    models.set_logprob("model-b", -0.25)
    campaign_id = await post(coordinator, {"id": "dr", "drafting": drafting(
        models, "model-a", "model-b")}, [{"id": "q1", "prompt": "Ibuprofen with warfarin?"}])
    await coordinator.add_expert(Expert(id="ann", name="Ann"))

    assert (await coordinator.status(campaign_id)).drafting.pending == 1  # type: ignore[union-attr]
    assert await service.next_task("ann") is not None
    idle = await service.next_task("ann")
    assert getattr(idle, "reason", None) == "no_tasks"  # never a half-drafted item

    await loop_of(store, drafter, clock).run_until_idle()

    card = await service.next_task("ann")
    texts = sorted(d.text for d in card.drafts)  # type: ignore[union-attr]
    messages = [{"role": "user", "content": "Ibuprofen with warfarin?"}]
    assert texts == sorted(models.draft_for(m, messages, temperature=0.7)
                           for m in ("model-a", "model-b"))
    drafted = sorted(await events(store, campaign_id, "drafted"), key=lambda e: e["actor_id"])
    assert [e["actor_id"] for e in drafted] == ["model-a", "model-b"]
    first = drafted[0]["payload"]
    assert first["draft"]["model_version"] == "model-a@fp_emulated"
    assert first["usage"]["completion_tokens"] > 0 and first["cost"]["currency"] == "USD"
    assert first["draft"]["confidence"] < 0  # the mean token logprob
    assert drafted[1]["payload"]["draft"]["confidence"] == -0.25
    drafting_now = (await coordinator.status(campaign_id)).drafting
    assert drafting_now is not None and (drafting_now.pending, drafting_now.drafted) == (0, 1)


async def drafted_item(store: RedisStore, campaign_id: str) -> dict[str, Any]:
    [ready] = await events(store, campaign_id, "item_ready")
    return ready["payload"]["item"]  # type: ignore[no-any-return]


async def one_item(coordinator: Coordinator, models: OpenAIEmulator, *names: str,
                   prompt: Any = "Ibuprofen with warfarin?", **more: Any) -> str:
    return await post(coordinator, {"id": "dr", "drafting": drafting(models, *names, **more)},
                      [{"id": "q1", "prompt": prompt}])


async def status_of(coordinator: Coordinator, campaign_id: str) -> Any:
    status = (await coordinator.status(campaign_id)).drafting
    assert status is not None
    return status


async def test_a_429_is_waited_out_and_the_wait_is_in_the_record(
        store: RedisStore, coordinator: Coordinator, clock: SetClock, models: OpenAIEmulator,
        drafter: OpenAIDrafter) -> None:
    campaign_id = await one_item(coordinator, models, "model-a", "model-b")
    models.fail("rate_limit", model="model-a", times=2)

    await loop_of(store, drafter, clock).run_until_idle()

    by_model = {e["actor_id"]: e["payload"] for e in await events(store, campaign_id, "drafted")}
    assert by_model["model-a"]["waits"] == 2 and by_model["model-b"]["waits"] == 0
    assert [c.status for c in models.calls if c.body["model"] == "model-a"] == [429, 429, 200]


async def test_a_server_error_is_retried_then_the_item_is_set_aside_until_redraft(
        store: RedisStore, coordinator: Coordinator, service: Service, clock: SetClock,
        models: OpenAIEmulator, drafter: OpenAIDrafter) -> None:
    campaign_id = await one_item(coordinator, models, "model-a", "model-b")
    models.fail("server_error", model="model-b", times=None)
    await coordinator.add_expert(Expert(id="ann", name="Ann"))

    await loop_of(store, drafter, clock).run_until_idle()

    [failed] = await events(store, campaign_id, "draft_failed")
    assert failed["payload"]["kind"] == "unavailable" and failed["payload"]["tries"] == 3
    assert (await status_of(coordinator, campaign_id)).failed == 1
    assert getattr(await service.next_task("ann"), "reason", None) == "no_tasks"

    models.clear_faults()
    assert await coordinator.redraft(campaign_id) == 1
    await loop_of(store, drafter, clock).run_until_idle()

    assert len((await drafted_item(store, campaign_id))["drafts"]) == 2
    assert (await status_of(coordinator, campaign_id)).failed == 0
    assert len([c for c in models.calls if c.body["model"] == "model-a"]) == 1  # kept its draft


async def test_a_wrong_key_pauses_the_campaigns_drafting_and_never_shows_the_key(
        store: RedisStore, coordinator: Coordinator, clock: SetClock, models: OpenAIEmulator,
        drafter: OpenAIDrafter, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-live-0123456789abcdefWXYZ"
    monkeypatch.setenv(KEY_ENV, secret)
    campaign_id = await post(coordinator, {"id": "dr", "drafting": drafting(
        models, "model-a", "model-b")}, [{"id": f"q{n}", "prompt": "Dose?"} for n in range(5)])

    await loop_of(store, drafter, clock).run_until_idle()

    paused = (await status_of(coordinator, campaign_id)).paused
    assert "401" in paused and "Incorrect API key" in paused
    assert len(models.calls) <= 2 * 4  # stops asking: at most the first take of each model
    record = json.dumps([e for e in await events(store, campaign_id, "drafting_paused")])
    for shown in (paused, record, caplog.text):
        assert secret not in shown and "WXYZ" not in shown

    monkeypatch.setenv(KEY_ENV, API_KEY)
    await coordinator.redraft(campaign_id)
    await loop_of(store, drafter, clock).run_until_idle()
    assert (await status_of(coordinator, campaign_id)).drafted == 5


async def test_an_unknown_model_pauses_drafting_with_the_endpoints_404(
        store: RedisStore, coordinator: Coordinator, clock: SetClock, models: OpenAIEmulator,
        drafter: OpenAIDrafter) -> None:
    spec = drafting(models, "model-a", "model-b")
    spec["models"][1]["model"] = "no-such-model"
    campaign_id = await post(coordinator, {"id": "dr", "drafting": spec},
                             [{"id": "q1", "prompt": "Dose?"}])

    await loop_of(store, drafter, clock).run_until_idle()

    paused = (await status_of(coordinator, campaign_id)).paused
    assert paused.startswith("model-b: 404")


async def test_an_endpoint_that_refuses_logprobs_drafts_without_them(
        store: RedisStore, coordinator: Coordinator, clock: SetClock, models: OpenAIEmulator,
        drafter: OpenAIDrafter) -> None:
    models.fail("no_logprobs", times=None)
    campaign_id = await one_item(coordinator, models, "model-a", "model-b")

    await loop_of(store, drafter, clock).run_until_idle()

    drafts = (await drafted_item(store, campaign_id))["drafts"]
    assert all("confidence" not in draft for draft in drafts)
    asked = [c.body.get("logprobs") for c in models.calls if c.body["model"] == "model-a"]
    assert asked == [True, None]


async def test_too_long_a_context_sets_the_item_aside_at_once(
        store: RedisStore, coordinator: Coordinator, clock: SetClock, models: OpenAIEmulator,
        drafter: OpenAIDrafter) -> None:
    models.set_context("model-a", 2)
    campaign_id = await one_item(coordinator, models, "model-a", "model-b")

    await loop_of(store, drafter, clock).run_until_idle()

    [failed] = await events(store, campaign_id, "draft_failed")
    assert failed["payload"]["kind"] == "too_long" and failed["payload"]["tries"] == 1
    assert "maximum context length" in failed["payload"]["reason"]
    assert len([c for c in models.calls if c.body["model"] == "model-a"]) == 1


async def test_a_draft_cut_off_by_the_token_limit_is_recorded_and_never_shown(
        store: RedisStore, coordinator: Coordinator, service: Service, clock: SetClock,
        models: OpenAIEmulator, drafter: OpenAIDrafter) -> None:
    models.fail("length", model="model-a")
    campaign_id = await one_item(coordinator, models, "model-a", "model-b")
    await coordinator.add_expert(Expert(id="ann", name="Ann"))

    await loop_of(store, drafter, clock).run_until_idle()

    [failed] = await events(store, campaign_id, "draft_failed")
    assert failed["payload"]["finish_reason"] == "length" and failed["payload"]["text"]
    assert failed["payload"]["usage"]["completion_tokens"] > 0
    assert await events(store, campaign_id, "item_ready") == []
    assert getattr(await service.next_task("ann"), "reason", None) == "no_tasks"


async def test_one_model_filling_both_sides_is_asked_again_with_another_seed(
        store: RedisStore, coordinator: Coordinator, clock: SetClock, models: OpenAIEmulator,
        drafter: OpenAIDrafter) -> None:
    spec = drafting(models, "model-a")
    spec["models"][0]["params"] = {"temperature": 0}
    campaign_id = await post(coordinator, {"id": "dr", "drafting": spec},
                             [{"id": "q1", "prompt": "Dose?"}])

    await loop_of(store, drafter, clock).run_until_idle()

    drafts = (await drafted_item(store, campaign_id))["drafts"]
    assert drafts[0]["text"] != drafts[1]["text"]
    assert sorted(d["params"].get("seed") for d in drafts if "seed" in d["params"]) == [1]


async def test_the_items_own_system_turn_wins_over_the_campaigns(
        store: RedisStore, coordinator: Coordinator, clock: SetClock, models: OpenAIEmulator,
        drafter: OpenAIDrafter) -> None:
    conversation = [{"role": "system", "content": "You are a pharmacist."},
                    {"role": "user", "content": "I take warfarin."},
                    {"role": "assistant", "content": "Noted. What would you like to know?"},
                    {"role": "user", "content": "Can I take ibuprofen?"}]
    await post(coordinator, {"id": "dr", "drafting": drafting(
        models, "model-a", "model-b", system="You are a careful clinician.")},
        [{"id": "q1", "prompt": conversation}, {"id": "q2", "prompt": "Dose?"}])

    await loop_of(store, drafter, clock).run_until_idle()

    sent = {c.body["messages"][-1]["content"]: c.body["messages"] for c in models.calls}
    assert sent["Can I take ibuprofen?"] == conversation
    assert sent["Dose?"] == [{"role": "system", "content": "You are a careful clinician."},
                             {"role": "user", "content": "Dose?"}]


async def test_two_workers_never_draft_one_slot_twice(
        store: RedisStore, coordinator: Coordinator, clock: SetClock, models: OpenAIEmulator,
        drafter: OpenAIDrafter) -> None:
    campaign_id = await post(coordinator, {"id": "dr", "drafting": drafting(
        models, "model-a", "model-b")}, [{"id": f"q{n}", "prompt": f"Q{n}?"} for n in range(40)])
    other = OpenAIDrafter()

    await asyncio.gather(loop_of(store, drafter, clock).run_until_idle(),
                         loop_of(store, other, clock).run_until_idle())
    await other.close()

    slots = [(e["item"], e["actor_id"]) for e in await events(store, campaign_id, "drafted")]
    assert len(slots) == len(set(slots)) == 80
    assert len(await events(store, campaign_id, "item_ready")) == 40


async def test_a_reply_that_comes_after_its_job_was_redone_is_discarded_and_counted(
        store: RedisStore, coordinator: Coordinator, clock: SetClock, models: OpenAIEmulator,
        drafter: OpenAIDrafter) -> None:
    campaign_id = await one_item(coordinator, models, "model-a", "model-b")
    models.fail("slow", model="model-a")  # the first worker's request hangs on
    first = loop_of(store, drafter, clock)
    stalled = asyncio.create_task(first.run_until_idle())
    for _ in range(500):  # until its request is in flight
        if any(c.body["model"] == "model-a" for c in models.calls):
            break
        await asyncio.sleep(0.01)

    clock.advance(FAST.lease_ms() / 1000)  # its hold runs out: another worker takes the job
    await loop_of(store, drafter, clock).run_until_idle()
    await stalled

    status = await status_of(coordinator, campaign_id)
    assert (status.drafted, status.discarded) == (1, 1)
    assert len([e for e in await events(store, campaign_id, "drafted")
                if e["actor_id"] == "model-a"]) == 1


@pytest.mark.parametrize("name", ["EXPERTLOOP_API_TOKEN", "SLACK_BOT_TOKEN", "AWS_SECRET",
                                  "EXPERTLOOP_KEY"])
def test_a_campaign_cannot_send_any_variable_but_a_model_key(
        name: str, models: OpenAIEmulator) -> None:
    spec = drafting(models, "model-a")
    spec["models"][0]["api_key_env"] = name
    with pytest.raises(ValueError, match="not a model key's variable"):
        CampaignSpec.model_validate({"title": "t", "kind": "verify", "drafting": spec})


async def test_always_on_items_that_hold_every_draft_already_is_refused_when_posted(
        coordinator: Coordinator, models: OpenAIEmulator) -> None:
    spec = CampaignSpec.model_validate({"title": "t", "kind": "pairwise", "drafting": drafting(
        models, "model-a", when="always")})
    spool = spool_items(spec, [{"id": "q1", "prompt": "x", "drafts": [{"text": "a"},
                                                                      {"text": "b"}]}])
    with pytest.raises(InvalidCampaign) as refused:
        spool.check()
    spool.close()
    assert refused.value.problems[0].loc == ("items", 0, "drafts")
    assert "holds at most 2" in refused.value.problems[0].msg


async def test_always_adds_a_draft_per_model_beside_the_given_ones(
        store: RedisStore, coordinator: Coordinator, clock: SetClock, models: OpenAIEmulator,
        drafter: OpenAIDrafter) -> None:
    campaign_id = await post(coordinator, {"id": "dr", "kind": "rank", "drafting": drafting(
        models, "model-a", "model-b", when="always")},
        [{"id": "q1", "prompt": "Dose?", "drafts": [{"text": "Ask your doctor.",
                                                      "model": "clinician"}]}])

    await loop_of(store, drafter, clock).run_until_idle()

    drafts = (await drafted_item(store, campaign_id))["drafts"]
    assert [d["model"] for d in drafts] == ["clinician", "model-a", "model-b"]
