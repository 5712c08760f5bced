"""The store's part in hard cases, on every store (single Redis and the Cluster): an item whose
answers disagree is asked again up to its most, seniors first; one still unsettled goes to an
adjudicator, who sees the earlier answers and must give a reason; a coordinator can send any
item there. Plus the settle rule in Lua against its Python reference."""

from __future__ import annotations

import json

import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st

from adapters.redis.store import RedisStore
from core.domain import rules
from core.domain.hard_cases import Settle, settled
from core.ports import Claimed, Judging, Recorded
from core.provenance.events import Event, body_json, iso_ms
from tests.test_lua_rules import RANDOM, lua
from tests.test_store_contract import NOW, a_claim, a_record, open_campaign


def judging(vote: str, most: int = 3, adjudicate: bool = False, rated: bool = False) -> Judging:
    return Judging(vote=vote, shown=not rated and vote in "AB", most=most, share=0.66,
                   share_ppm=660_000, max_spread=1, rated=rated, adjudicate=adjudicate)


async def answer(store: RedisStore, expert: str, choice: str, now: int = NOW + 1000,
                 escalated_after: int | None = None, adjudicator: bool = False,
                 rationale: str | None = None, **judged: object) -> tuple[Claimed, Recorded]:
    """Claim with overlap 2 and answer `choice` (as shown) with a rationale if given."""
    token = f"k1.{expert}{now}"
    claim = a_claim(expert, token, now=now, overlap=2)._replace(
        escalated_after=escalated_after, adjudicator=adjudicator)
    found = await store.claim(claim)
    assert isinstance(found, Claimed), found
    record = a_record(expert, token, now=now + 10, overlap=2)
    payload = {"decision": {"type": "pairwise", "choice": choice}}
    if rationale:
        payload["rationale"] = rationale
    record = record._replace(judging=judging(choice, **judged),  # type: ignore[arg-type]
                             event=record.event.model_copy(update={"payload": payload}))
    recorded, _ = await store.record(record)
    return found, recorded


async def logged(store: RedisStore, type_: str) -> list[dict[str, object]]:
    events = [json.loads(e.body) for e in await store.read_events("c1", 0, 10_000)]
    return [e for e in events if e["type"] == type_]


def file_choice(claimed: Claimed, shown: str) -> int:
    return claimed.lease.order["AB".index(shown)]


async def test_answers_that_agree_settle_the_item_at_its_least(any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1")
    first, _ = await answer(any_store, "ann", "A")
    agreeing = "A" if (await any_store.claim(a_claim("bob", "k1.peek", overlap=2))).lease.order \
        == first.lease.order else "B"  # type: ignore[union-attr]
    await any_store.record(a_record("bob", "k1.peek", overlap=2)._replace(
        judging=judging(agreeing), event=Event(
            campaign="c1", type="answered", at=iso_ms(NOW), actor="expert", expert="bob",
            lease="k1.peek", payload={"decision": {"type": "pairwise", "choice": agreeing}})))

    assert await logged(any_store, "escalated") == []
    assert (await any_store.status(*await campaign_and_state(any_store))).done == 1
    assert await any_store.claim(a_claim("cy", "k1.c", overlap=2)._replace(
        escalated_after=NOW + 5000)) == "empty"


async def campaign_and_state(store: RedisStore):  # type: ignore[no-untyped-def]
    campaign = await store.load_campaign("c1")
    return campaign, await store.campaign_state("c1")


async def test_a_disagreement_asks_one_more_expert_seniors_at_once_others_after_a_wait(
        any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1")
    ann, _ = await answer(any_store, "ann", "A")
    bob_claim = await any_store.claim(a_claim("bob", "k1.bob", overlap=2))
    assert isinstance(bob_claim, Claimed)
    differ = "B" if bob_claim.lease.order == ann.lease.order else "A"
    await any_store.record(a_record("bob", "k1.bob", overlap=2)._replace(
        judging=judging(differ), event=Event(
            campaign="c1", type="answered", at=iso_ms(NOW), actor="expert", expert="bob",
            lease="k1.bob", payload={"decision": {"type": "pairwise", "choice": differ}})))

    [escalated] = await logged(any_store, "escalated")
    payload = escalated["payload"]
    assert payload["target"] == 3 and sorted(payload["votes"].values()) == [1, 1]  # type: ignore[index]
    assert "1 of 2" in payload["why"]  # type: ignore[index,operator]
    later = NOW + 1000
    junior = a_claim("cy", "k1.cy", now=later, overlap=2)._replace(escalated_after=later - 600_000)
    assert await any_store.claim(junior) == "empty"  # escalated at NOW+1010: not waited enough
    senior = await any_store.claim(a_claim("dee", "k1.dee", now=later, overlap=2)._replace(
        escalated_after=later))
    assert isinstance(senior, Claimed) and senior.lease.item == "q1" and senior.lease.escalated
    assert await any_store.claim(a_claim("eve", "k1.eve", now=later, overlap=2)._replace(
        escalated_after=later)) == "empty"  # three judgments: full


async def test_unsettled_at_its_most_the_item_waits_for_an_adjudicators_reasoned_call(
        any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1")
    ann, _ = await answer(any_store, "ann", "A", most=2, adjudicate=True, rationale="Clearer.")
    bob_claim = await any_store.claim(a_claim("bob", "k1.bob", overlap=2))
    assert isinstance(bob_claim, Claimed)
    differ = "B" if bob_claim.lease.order == ann.lease.order else "A"
    await any_store.record(a_record("bob", "k1.bob", overlap=2)._replace(
        judging=judging(differ, most=2, adjudicate=True), event=Event(
            campaign="c1", type="answered", at=iso_ms(NOW), actor="expert", expert="bob",
            lease="k1.bob", payload={"decision": {"type": "pairwise", "choice": differ}})))

    assert len(await logged(any_store, "adjudication_needed")) == 1
    campaign, state = await campaign_and_state(any_store)
    assert (await any_store.status(campaign, state)).awaiting_adjudication == 1
    assert await any_store.claim(a_claim("cy", "k1.cy", overlap=2)) == "empty"  # not for anyone
    judge = await any_store.claim(a_claim("dee", "k1.dee", overlap=2)._replace(adjudicator=True))
    assert isinstance(judge, Claimed) and judge.lease.adjudicate and len(judge.prior) == 2
    call = a_record("dee", "k1.dee", overlap=2)
    refused, _ = await any_store.record(call)
    assert refused.status == "reason_needed"
    reasoned = call._replace(event=call.event.model_copy(update={"payload": {
        "decision": {"type": "pairwise", "choice": "A"}, "rationale": "A cites the guideline."}}))
    assert (await any_store.record(reasoned))[0].status == "recorded"

    [final] = await logged(any_store, "adjudicated")
    assert final["payload"]["rationale"] == "A cites the guideline."  # type: ignore[index]
    status = await any_store.status(campaign, state)
    assert (status.awaiting_adjudication, status.adjudicated) == (0, 1)


async def test_a_coordinator_sends_any_item_to_adjudication_once(any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1")
    body = body_json(Event(campaign="c1", type="sent_to_adjudication", at=iso_ms(NOW),
                           actor="coordinator", item="q1"))

    assert await any_store.to_adjudication("c1", "q1", NOW, body) == 1
    assert await any_store.to_adjudication("c1", "q1", NOW, body) == 0
    assert await any_store.to_adjudication("c1", "nope", NOW, body) == -1
    judge = await any_store.claim(a_claim("dee", "k1.dee", overlap=2)._replace(adjudicator=True))
    assert isinstance(judge, Claimed) and judge.lease.adjudicate and judge.prior == ()
    assert await any_store.to_adjudication("c1", "q1", NOW, body) == 0  # being adjudicated
    assert len(await logged(any_store, "sent_to_adjudication")) == 1


@RANDOM
@given(votes=st.lists(st.sampled_from(["0", "1", "tie"]), min_size=1, max_size=9),
       share=st.sampled_from([0.5, 0.6, 0.66, 0.67, 0.75, 1.0]))
async def test_the_settle_rule_in_lua_agrees_with_its_reference(
        client: aioredis.Redis, votes: list[str], share: float) -> None:
    rule = Settle(share=share)
    found = await lua(client, "return settles(cjson.decode(ARGV[1]), tonumber(ARGV[2]), 1, false) "
                              "and 1 or 0", json.dumps(votes), rule.share_ppm())
    assert bool(found) == settled(votes, rule, rated=False)[0]


@RANDOM
@given(scores=st.lists(st.integers(1, 7), min_size=1, max_size=9), spread=st.integers(0, 3))
async def test_the_spread_rule_in_lua_agrees_with_its_reference(
        client: aioredis.Redis, scores: list[int], spread: int) -> None:
    rule = Settle(max_spread=spread)
    found = await lua(client, "return settles(cjson.decode(ARGV[1]), 0, tonumber(ARGV[2]), true) "
                              "and 1 or 0", json.dumps([str(s) for s in scores]), spread)
    assert bool(found) == settled([str(s) for s in scores], rule, rated=True)[0]


def test_two_of_three_settles_at_066_and_not_at_067() -> None:
    assert settled(["0", "0", "1"], Settle(share=0.66), rated=False)[0]
    assert not settled(["0", "0", "1"], Settle(share=0.67), rated=False)[0]


@RANDOM
@given(order=st.sampled_from(["file", "least_confident", "most_disagreement"]),
       seq=st.integers(1, 10**6), confidence=st.none() | st.floats(-20, 0),
       texts=st.lists(st.text(alphabet="abc dE9é,.", max_size=30), max_size=4))
async def test_the_route_order_in_lua_agrees_with_its_reference(
        client: aioredis.Redis, order: str, seq: int, confidence: float | None,
        texts: list[str]) -> None:
    found = await lua(client, "local key = queue_key(ARGV[1], tonumber(ARGV[3]), "
                              "cjson.decode(ARGV[4])); return tostring(queue_score(key, "
                              "tonumber(ARGV[2])))",
                      order, seq, "" if confidence is None else repr(confidence),
                      json.dumps(texts))
    key = rules.queue_key(order, confidence, texts)
    assert int(float(found)) == rules.queue_score(key, seq)


async def test_a_line_of_why_after_the_answer_is_kept_once_by_the_answers_seq(
        any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1")
    body = body_json(Event(campaign="c1", type="rationale_added", at=iso_ms(NOW),
                           actor="expert", item="q1", payload={"answer": 7}))

    assert await any_store.add_rationale("c1", 7, "Food first.", body)
    assert not await any_store.add_rationale("c1", 7, "Resent.", body)

    assert await any_store.late_rationales("c1") == {7: "Food first."}
    assert len(await logged(any_store, "rationale_added")) == 1
