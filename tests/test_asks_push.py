"""The push of live asks' cards and the next card after an answer meet without showing an
expert one ask twice: a card already shown on a chat leaves the push queue, and a card being
pushed is not also handed back as the next one. And an answer, whose script runs beside the
profile read, after Redis lost its scripts."""

from __future__ import annotations

from typing import Any

from adapters.redis.store import RedisStore
from core.domain.answers import Answer
from core.domain.asks import AskRequest
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import Approve
from core.domain.timing import SetClock
from core.service.service import Service

CALLER = "c0ffee"


def ask(call_id: str) -> AskRequest:
    return AskRequest.model_validate({
        "call_id": call_id, "kind": "approve", "question": f"Refund order {call_id}?",
        "proposal": {"function": "refund", "args": {"order": 1}}, "to": {"experts": ["ann"]},
        "deadline_s": 900})


async def two_asks(service: Service, store: RedisStore) -> list[Card]:
    ann = Expert(id="ann", name="Ann", identities=["telegram:501"])
    assert await store.save_expert(ann, create=True)
    for call_id in ("one", "two"):
        await service.asks.post(ask(call_id), CALLER)
    return await service.asks.cards_for("ann")


async def approve(service: Service, card: Card, channel: str = "api") -> Any:
    return await service.submit(Answer(expert="ann", lease=card.lease, channel=channel,
                                       decision=Approve(verdict="approved")))


async def test_a_next_card_not_yet_sent_is_not_pushed_on_its_chat_too(
        service: Service, store: RedisStore) -> None:
    """The race: the answer's next card is chosen, and before its channel has sent it (and
    marked it delivered) a worker takes the push queue. Exactly one of them shows it."""
    first, second = await two_asks(service, store)

    outcome = await approve(service, first, channel="telegram")
    pushing = await service.asks.take_deliveries("w", 10, 0)

    assert isinstance(outcome.next, Card) and outcome.next.lease == second.lease
    assert pushing == []


async def test_a_card_being_pushed_is_not_claimed_as_the_next_card(
        service: Service, store: RedisStore) -> None:
    """The other order, on a chat: the push took it first, so the next card is another."""
    first, second = await two_asks(service, store)
    pushing = await service.asks.take_deliveries("w", 10, 0)

    outcome = await approve(service, first, channel="telegram")

    assert second.lease in [d.card.lease for d in pushing]
    assert not (isinstance(outcome.next, Card) and outcome.next.lease == second.lease)


async def test_a_next_card_shown_on_one_chat_is_still_pushed_to_the_other(
        service: Service, store: RedisStore) -> None:
    ann = Expert(id="ann", name="Ann", identities=["telegram:501", "slack:U501"])
    assert await store.save_expert(ann, create=True)
    for call_id in ("one", "two"):
        await service.asks.post(ask(call_id), CALLER)
    first, second = await service.asks.cards_for("ann")
    await service.delivered(first.lease, channel="telegram", message_id="1")
    await service.delivered(first.lease, channel="slack", message_id="1")

    outcome = await approve(service, first, channel="telegram")
    pushing = await service.asks.take_deliveries("w", 10, 0)

    assert isinstance(outcome.next, Card) and outcome.next.lease == second.lease
    assert [(d.card.lease, d.identity) for d in pushing] == [(second.lease, "slack:U501")]


async def test_a_next_card_never_sent_is_pushed_after_a_minute(
        service: Service, store: RedisStore, clock: SetClock) -> None:
    """A channel that claimed the next card and then failed to send it (a crash) does not
    keep it from the expert's chat for ever."""
    first, second = await two_asks(service, store)
    await approve(service, first, channel="telegram")

    clock.advance(61)
    pushing = await service.asks.take_deliveries("w", 10, 0)

    assert [d.card.lease for d in pushing] == [second.lease]


async def test_a_card_shown_as_the_next_one_is_not_pushed_again(
        service: Service, store: RedisStore) -> None:
    first, second = await two_asks(service, store)
    outcome = await approve(service, first)
    assert isinstance(outcome.next, Card) and outcome.next.lease == second.lease
    await service.delivered(second.lease, channel="telegram", message_id="7")

    assert await service.asks.take_deliveries("w", 10, 0) == []


async def test_a_card_being_pushed_is_not_the_next_card_too(
        service: Service, store: RedisStore) -> None:
    first, second = await two_asks(service, store)
    pushing = await service.asks.take_deliveries("w", 10, 0)
    assert sorted(d.card.lease for d in pushing) == sorted([first.lease, second.lease])

    outcome = await approve(service, first)

    assert outcome.status == "recorded"
    assert not (isinstance(outcome.next, Card) and outcome.next.lease == second.lease)
    assert [c.lease for c in await service.asks.cards_for("ann")] == [second.lease]


async def test_a_card_pushed_once_then_shown_is_still_the_live_one(
        service: Service, store: RedisStore) -> None:
    first, second = await two_asks(service, store)
    for delivery in await service.asks.take_deliveries("w", 10, 0):
        await service.delivered(delivery.card.lease, channel="telegram", message_id="8")
        await service.asks.delivery_done(delivery)

    outcome = await approve(service, first)

    assert outcome.status == "recorded"
    assert await service.asks.card(second.lease) is not None
    assert await service.asks.take_deliveries("w", 10, 0) == []


async def test_an_answer_after_redis_forgot_its_scripts_is_recorded_and_paid(
        service: Service, store: RedisStore) -> None:
    """The answer's script runs by its SHA beside the profile read; a restarted Redis has no
    scripts, so it is loaded then."""
    first, _ = await two_asks(service, store)
    await store.client.script_flush()

    outcome = await approve(service, first)

    assert outcome.status == "recorded" and not outcome.replayed
    assert (await store.expert_tallies("ann"))["answers"] == 1


async def test_the_batch_reads_work_on_every_store(any_store: RedisStore,
                                                   clock: SetClock) -> None:
    """A skilled ask, its push and an answer on each store, the Cluster too (the batch reads
    and the answer's pipeline cross the asks' slot and the experts' own)."""
    service = Service(any_store.roles(), clock)
    ann = Expert(id="ann", name="Ann", skills=["billing"], identities=["telegram:501"])
    assert await any_store.save_expert(ann, create=True)
    view, _ = await service.asks.post(AskRequest.model_validate({
        "call_id": "c", "kind": "approve", "question": "Refund?", "to": {"skills": ["billing"]},
        "proposal": {"function": "refund", "args": {}}, "deadline_s": 900}), CALLER)

    [pushed] = await service.asks.take_deliveries("w", 10, 0)
    await service.asks.delivery_done(pushed)
    outcome = await approve(service, pushed.card)

    assert pushed.card.item == view.id and outcome.status == "recorded"
    assert (await service.asks.view(view.id)).status == "approved"
    assert (await any_store.expert_tallies("ann"))["answers"] == 1
