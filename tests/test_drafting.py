"""Drafting: a campaign's models draft what its items lack, through the real `openai` client to
the OpenAI-compatible emulator, before any expert sees an item; every request, reply, usage and
cost lands in the log, and every failure the endpoint can throw ends where it should."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.models.openai_drafter import OpenAIDrafter
from adapters.redis.store import RedisStore
from core.domain.campaigns import CampaignSpec
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.service.coordinator import Coordinator
from core.service.drafting import DraftingLoop, DraftingSettings
from core.service.service import Service
from core.service.staging import spool_items
from tests.emulators.openai import API_KEY, OpenAIEmulator

KEY_ENV = "EXPERTLOOP_TEST_MODEL_KEY"
FAST = DraftingSettings(backoff_s=0.01, most_wait_s=0.05, poll_s=0.01)


@pytest.fixture
async def models(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenAIEmulator]:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    server = OpenAIEmulator()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def drafter() -> AsyncIterator[OpenAIDrafter]:
    found = OpenAIDrafter()
    yield found
    await found.close()


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
    assert 0 < first["draft"]["confidence"] <= 1
    status = await coordinator.status(campaign_id)
    assert status.drafting is not None and (status.drafting.pending, status.drafting.drafted) == (0, 1)
