"""Routing by the model: items offered least confident first or most disputed first, and
confident verify drafts accepted by the model, but for a deterministic audit sample that experts
still judge. Through the real service on the embedded Redis."""

from __future__ import annotations

import json
from typing import Any

from adapters.models.openai_drafter import OpenAIDrafter
from adapters.redis.store import RedisStore
from core.domain.campaigns import CampaignSpec
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.hard_cases import audited
from core.domain.timing import SetClock
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items
from tests.emulators.openai import OpenAIEmulator
from tests.test_drafting import drafting, loop_of


async def post(coordinator: Coordinator, items: list[dict[str, Any]], **spec: Any) -> str:
    campaign = CampaignSpec.model_validate({"id": "rt", "title": "Routed", "kind": "verify",
                                            **spec})
    spool = spool_items(campaign, items)
    await coordinator.post_campaign(campaign, spool)
    spool.close()
    return "rt"


def verify_item(item_id: str, confidence: float | None, model: str = "m") -> dict[str, Any]:
    draft: dict[str, Any] = {"text": f"Draft of {item_id}.", "model": model}
    if confidence is not None:
        draft["confidence"] = confidence
    return {"id": item_id, "prompt": f"{item_id}?", "drafts": [draft]}


async def offered(service: Service, coordinator: Coordinator, n: int) -> list[str]:
    """The items n fresh experts are offered, in turn (each takes one)."""
    found = []
    for index in range(n):
        await coordinator.add_expert(Expert(id=f"e{index}", name=f"E{index}"))
        card = await service.next_task(f"e{index}")
        found.append(card.item if isinstance(card, Card) else "-")
    return found


async def events(store: RedisStore, type_: str) -> list[dict[str, Any]]:
    found = [json.loads(e.body) for e in await store.read_events("rt", 0, 10_000)]
    return [e for e in found if e["type"] == type_]


async def test_least_confident_items_come_first_and_unknown_confidence_last(
        coordinator: Coordinator, service: Service) -> None:
    await post(coordinator, [verify_item("sure", -0.05), verify_item("unknown", None),
                             verify_item("shaky", -1.2), verify_item("middling", -0.4)],
               route={"order": "least_confident"})

    assert await offered(service, coordinator, 4) == ["shaky", "middling", "sure", "unknown"]


async def test_most_disputed_drafts_come_first(coordinator: Coordinator,
                                               service: Service) -> None:
    def pair(item_id: str, a: str, b: str) -> dict[str, Any]:
        return {"id": item_id, "prompt": "?", "drafts": [{"text": a}, {"text": b}]}

    await post(coordinator, [pair("same", "Take it with food.", "Take it with food, please."),
                             pair("apart", "Take it with food.", "Never take ibuprofen."),
                             pair("identical-words", "With food take it.", "Take it with food.")],
               kind="pairwise", route={"order": "most_disagreement"})

    assert await offered(service, coordinator, 3) == ["apart", "same", "identical-words"]


async def test_confident_drafts_are_accepted_by_the_model_but_for_the_audit_sample(
        coordinator: Coordinator, service: Service, store: RedisStore) -> None:
    ids = [f"q{n}" for n in range(40)]
    items = [verify_item(i, -0.05) for i in ids] + [verify_item("shaky", -0.9),
                                                    verify_item("silent", None)]
    await post(coordinator, items, route={"auto_accept": {"confidence_at_least": -0.15,
                                                          "audit_rate": 0.2}})

    sampled = {i for i in ids if audited("rt", i, 0.2)}
    assert 0 < len(sampled) < len(ids)
    decided = await events(store, "auto_accepted")
    assert {e["item"] for e in decided} == set(ids) - sampled
    assert all(e["actor"] == "model" and e["actor_id"] == "m" and
               e["payload"]["decision"] == {"type": "verify", "verdict": "accept"}
               for e in decided)
    asked = set(await offered(service, coordinator, len(sampled) + 3)) - {"-"}
    assert asked == sampled | {"shaky", "silent"}  # never auto-accepted without a confidence
    status = await coordinator.status("rt")
    assert status.done == len(ids) - len(sampled)


def test_the_audit_sample_is_within_tolerance_of_its_rate_over_10000_items() -> None:
    for rate in (0.05, 0.2):
        share = sum(audited("camp", f"item-{n}", rate) for n in range(10_000)) / 10_000
        assert abs(share - rate) < 0.01
    assert audited("camp", "item-1", 0.2) == audited("camp", "item-1", 0.2)
    assert not audited("camp", "item-1", 0.0) and audited("camp", "item-1", 1.0)


async def test_drafted_items_are_routed_and_auto_accepted_once_their_drafts_are_in(
        coordinator: Coordinator, service: Service, store: RedisStore, clock: SetClock,
        models: OpenAIEmulator, drafter: OpenAIDrafter) -> None:
    models.set_logprob("model-a", -0.01)
    spec = drafting(models, "model-a")
    await post(coordinator, [{"id": f"q{n}", "prompt": f"Question {n}?"} for n in range(12)],
               drafting=spec, route={"order": "least_confident",
                                     "auto_accept": {"confidence_at_least": -0.1,
                                                     "audit_rate": 0.25}})

    await loop_of(store, drafter, clock).run_until_idle()

    sampled = {f"q{n}" for n in range(12) if audited("rt", f"q{n}", 0.25)}
    decided = {e["item"] for e in await events(store, "auto_accepted")}
    assert decided == {f"q{n}" for n in range(12)} - sampled
    assert set(await offered(service, coordinator, len(sampled) + 1)) - {"-"} == sampled
