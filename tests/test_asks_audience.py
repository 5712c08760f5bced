"""Who a live ask reaches when the store reads only the experts its `to` could allow (the
skill index beside each saved profile): the same experts as reading every profile, including
profiles written before the index existed, experts whose skills changed, and erased ones."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.redis import keys as k
from adapters.redis.asks import skill_key
from adapters.redis.store import RedisStore
from core.domain.asks import AskRequest, AskTo
from core.domain.experts import Expert
from core.errors import InvalidCampaign
from core.privacy.rights import Privacy
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service

CALLER = "c0ffee"


def ask(call_id: str, **to: Any) -> AskRequest:
    return AskRequest.model_validate({
        "call_id": call_id, "kind": "approve", "question": "Refund order 5512?",
        "proposal": {"function": "refund", "args": {"order": 5512}}, "to": to,
        "deadline_s": 900})


def expert(expert_id: str, *skills: str, **fields: Any) -> Expert:
    return Expert.model_validate({"id": expert_id, "name": expert_id.title(),
                                  "skills": list(skills),
                                  "identities": [f"telegram:{abs(hash(expert_id)) % 10**6}"]}
                                 | fields)


async def reached(service: Service, call_id: str, **to: Any) -> list[str]:
    """The experts holding a card of a new ask to `to`."""
    view, created = await service.asks.post(ask(call_id, **to), CALLER)
    assert created
    stored = await service.asks.store.load_ask(view.id)
    assert stored is not None
    return sorted(stored.offered)


async def test_an_ask_reaches_every_holder_of_its_skills_and_no_one_else(
        service: Service, coordinator: Coordinator) -> None:
    for found in (expert("ann", "billing"), expert("bob", "billing", "tax"),
                  expert("cy", "tax"), expert("dee")):
        await coordinator.add_expert(found)

    assert await reached(service, "a", skills=["billing"]) == ["ann", "bob"]
    assert await reached(service, "b", skills=["billing", "tax"]) == ["bob"]
    assert await reached(service, "c") == ["ann", "bob", "cy", "dee"]
    assert await reached(service, "d", experts=["cy", "dee"]) == ["cy", "dee"]


async def test_a_changed_skill_counts_at_once(service: Service,
                                              coordinator: Coordinator) -> None:
    await coordinator.add_expert(expert("ann", "billing"))
    await coordinator.add_expert(expert("bob", "tax"))

    await coordinator.update_expert("bob", {"skills": ["tax", "billing"]})
    await coordinator.update_expert("ann", {"skills": ["tax"]})

    assert await reached(service, "a", skills=["billing"]) == ["bob"]
    assert await reached(service, "b", skills=["tax"]) == ["ann", "bob"]


async def test_a_skill_nobody_holds_any_more_is_refused_naming_it(
        service: Service, coordinator: Coordinator) -> None:
    await coordinator.add_expert(expert("ann", "billing", "legal"))
    await coordinator.update_expert("ann", {"skills": ["billing"]})

    with pytest.raises(InvalidCampaign) as refused:
        await service.asks.post(ask("a", skills=["legal"]), CALLER)

    assert "no expert has the skill 'legal'" in str(refused.value)


async def test_experts_stored_before_the_index_existed_are_reached(
        service: Service, client: aioredis.Redis) -> None:
    """Profiles as earlier versions wrote them: the hash and the experts' zset, no index."""
    for old in (expert("ann", "billing"), expert("bob", "billing", level="senior"),
                expert("cy", "tax")):
        await client.hset(k.expert_key(old.id), "profile", old.model_dump_json())
        await client.zadd(k.EXPERTS, {old.id: 0})

    assert await reached(service, "a", skills=["billing"]) == ["ann", "bob"]
    assert await reached(service, "b", skills=["billing"], level="senior") == ["bob"]
    assert await reached(service, "c", skills=["tax"]) == ["cy"]


async def test_an_erased_expert_is_not_reached_and_leaves_the_index(
        service: Service, coordinator: Coordinator, store: RedisStore, ledger: Ledger,
        client: aioredis.Redis) -> None:
    await coordinator.add_expert(expert("ann", "billing"))
    await coordinator.add_expert(expert("zed", "billing"))
    await Privacy(store.roles(), ledger).erase("zed")

    assert await reached(service, "a", skills=["billing"]) == ["ann"]
    assert await client.smembers(skill_key("billing")) == {"ann"}


async def test_an_erased_expert_leaves_the_index_at_erasure(
        coordinator: Coordinator, store: RedisStore, ledger: Ledger,
        client: aioredis.Redis) -> None:
    """Not kept until an ask's read happens to drop them: erasure takes them out at once."""
    await coordinator.add_expert(expert("ann", "billing", "tax"))
    await coordinator.add_expert(expert("zed", "billing", "tax"))

    await Privacy(store.roles(), ledger).erase("zed")

    assert await client.smembers(skill_key("billing")) == {"ann"}
    assert await client.smembers(skill_key("tax")) == {"ann"}


async def test_the_narrow_read_finds_what_reading_everyone_finds(
        store: RedisStore, coordinator: Coordinator) -> None:
    team = [expert(f"e{n}", *(s for i, s in enumerate(("a", "b", "c")) if n >> i & 1),
                   level=("junior", "standard", "senior")[n % 3]) for n in range(24)]
    for one in team:
        await coordinator.add_expert(one)
    everyone = await store.ask_experts()

    for to in (AskTo(skills=["a"]), AskTo(skills=["a", "c"]), AskTo(skills=["b"],
               level="senior"), AskTo(experts=["e3", "e9", "nobody"]), AskTo()):
        narrow = await store.ask_audience(to)
        wanted = [e for e in everyone if (e.id in to.experts if to.experts else
                                          set(e.skills) & set(to.skills) or not to.skills)]
        assert sorted(e.id for e in narrow) == sorted(e.id for e in wanted), to
