"""The AskBatches role's contract on every store (single Redis and the Cluster): the reads the
live asks' hot paths make in one round trip each, giving what the one-at-a-time AskStore calls
give, and the claim that keeps a card from being pushed and handed out as the next one."""

from __future__ import annotations

from adapters.redis.store import RedisStore
from core.domain.asks import AskTo
from core.domain.experts import Expert
from tests.test_store_contract_asks import NOW, answering, offer, posting


async def test_the_audience_is_the_named_or_skilled_experts_and_no_one_else(
        any_store: RedisStore) -> None:
    for expert in (Expert(id="ann", name="Ann", skills=["billing"]),
                   Expert(id="bob", name="Bob", skills=["dosage", "billing"]),
                   Expert(id="cy", name="Cy")):
        assert await any_store.save_expert(expert, create=True)

    def ids(found: list[Expert]) -> list[str]:
        return sorted(e.id for e in found)

    assert ids(await any_store.ask_audience(AskTo(experts=["ann", "nobody"]))) == ["ann"]
    assert ids(await any_store.ask_audience(AskTo(skills=["billing"]))) == ["ann", "bob"]
    assert ids(await any_store.ask_audience(AskTo(skills=["dosage"]))) == ["bob"]
    assert ids(await any_store.ask_audience(AskTo())) == ["ann", "bob", "cy"]


async def test_asks_load_in_the_order_asked_and_missing_ones_are_left_out(
        any_store: RedisStore) -> None:
    await any_store.create_ask(posting("ask_1", call="me:c1"))
    await any_store.create_ask(posting("ask_2", call="me:c2", sha="s2"))

    assert [a.id for a in await any_store.load_asks(["ask_2", "gone", "ask_1"])] == [
        "ask_2", "ask_1"]


async def test_a_card_to_push_is_not_also_the_next_card_on_that_chat(
        any_store: RedisStore) -> None:
    await any_store.create_ask(posting(offers=(offer("ann", "telegram:1", "slack:U1"),)))

    to_push = await any_store.offers_to_push([("ask-ann", "telegram"), ("ask-x", "slack")], NOW)
    [held] = to_push.values()

    assert list(to_push) == [("ask-ann", "telegram")] and held.ask.id == "ask_1"
    assert await any_store.offers_to_push([], NOW) == {}
    assert await any_store.next_asks("ann", "telegram", NOW + 1) == \
        await any_store.held_asks("ann")  # rows as read; none to claim while it is pushed


async def test_a_card_claimed_as_the_next_one_is_not_pushed_on_that_chat(
        any_store: RedisStore) -> None:
    await any_store.create_ask(posting(offers=(offer("ann", "telegram:1", "slack:U1"),)))

    [claimed] = await any_store.next_asks("ann", "telegram", NOW)

    assert claimed.token == "ask-ann" and not claimed.answered
    assert await any_store.offers_to_push([("ask-ann", "telegram")], NOW + 1) == {}
    assert list(await any_store.offers_to_push([("ask-ann", "slack")], NOW + 1)) == [
        ("ask-ann", "slack")]  # their other chat still gets it


async def test_an_answer_read_with_its_expert_is_the_answer_recorded(
        any_store: RedisStore) -> None:
    assert await any_store.save_expert(Expert(id="ann", name="Ann", time_zone="Europe/Rome"),
                                       create=True)
    await any_store.create_ask(posting(offers=(offer("ann"), offer("bob"))))

    recorded, expert = await any_store.answer_ask_reading(answering("ann"))
    again, _ = await any_store.answer_ask_reading(answering("ann"))
    _, nobody = await any_store.answer_ask_reading(answering("bob"))

    assert recorded.status == "recorded" and recorded.decided == "approved"
    assert expert is not None and expert.time_zone == "Europe/Rome"
    assert again.status != "recorded" and nobody is None


async def test_finished_queue_entries_are_not_taken_again(any_store: RedisStore) -> None:
    await any_store.create_ask(posting(offers=(offer("ann", "telegram:1", "slack:U1"),)))

    taken = await any_store.take_ask_jobs("deliveries", "w1", 5, 0, NOW)
    await any_store.finish_ask_jobs("deliveries", [job.entry for job in taken])
    await any_store.finish_ask_jobs("deliveries", [])

    assert len(taken) == 2
    assert await any_store.take_ask_jobs("deliveries", "w2", 5, 0, NOW) == []
    assert [await any_store.finish_ask_job("deliveries", job.entry) for job in taken] == [
        False, False]  # already finished
