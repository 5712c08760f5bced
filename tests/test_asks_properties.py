"""Live asks under load, as a property: many asks, many experts answering at once in random
order through two services on one Redis (two web processes), with double taps and withdrawals
mixed in. No ask is decided twice, no recorded answer is lost or kept twice, quorum decides
as its Python reference (core/service/ask_rules.decide) says, and the log verifies."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.redis.store import RedisStore
from core.domain.answers import Answer, Outcome
from core.domain.asks import ASKS_LOG, AskRequest
from core.domain.experts import Expert
from core.domain.kinds import Approve, Choose, Decision
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.ask_rules import decide
from core.service.service import Service
from tests.conftest import NOW


def request(rnd: random.Random, number: int, n_experts: int) -> AskRequest:
    kind = rnd.choice(["approve", "choose"])
    quorum = rnd.choice([{"any_of": 1}, {"all_of": rnd.randint(1, min(3, n_experts))}])
    fields: dict[str, Any] = {"call_id": f"call-{number}", "kind": kind, "question": f"q{number}",
                              "to": {"skills": ["billing"]}, "quorum": quorum}
    if kind == "approve":
        fields["proposal"] = {"function": "refund", "args": {"amount": 10}}
    else:
        fields["drafts"] = [{"text": "a"}, {"text": "b"}]
    return AskRequest.model_validate(fields)


def decision(rnd: random.Random, kind: str) -> Decision:
    if kind == "choose":
        return Choose(choice=rnd.choice(["A", "B", "tie"]))
    verdict = rnd.choice(["approved", "approved", "edited", "rejected"])
    return Approve(verdict=verdict, comment="no" if verdict == "rejected" else None,
                   args={"amount": rnd.choice([5, 10])} if verdict == "edited" else None)


async def scenario(client: aioredis.Redis, rnd: random.Random, n_asks: int, n_experts: int
                   ) -> tuple[RedisStore, list[tuple[Answer, Outcome]], dict[str, int]]:
    await client.flushall()
    store, clock = RedisStore(client), SetClock(NOW)
    services = [Service(store.roles(), clock), Service(store.roles(), clock)]
    for n in range(n_experts):
        await store.save_expert(Expert(id=f"e{n}", name=f"E{n}", skills=["billing"]),
                                create=True)
    asks = [(await services[0].asks.post(request(rnd, n, n_experts), "caller"))[0]
            for n in range(n_asks)]
    needed = {view.id: AskRequest.model_validate_json(
        (await store.load_ask(view.id)).spec).quorum.needed() for view in asks}  # type: ignore[union-attr]
    taps: list[Answer] = []
    order = {view.id: number for number, view in enumerate(asks)}  # ids are random: not them
    for n in range(n_experts):
        cards = sorted(await services[0].asks.cards_for(f"e{n}"), key=lambda c: order[c.item])
        for card in cards:
            if rnd.random() < 0.8:
                kind = "approve" if card.kind == "approve" else "choose"
                tap = Answer(expert=f"e{n}", lease=card.lease, decision=decision(rnd, kind))
                taps += [tap] * rnd.choice([1, 1, 2])  # a double tap now and then
    rnd.shuffle(taps)
    withdrawals = [view.id for view in asks if rnd.random() < 0.2]
    by = [rnd.choice(services) for _ in taps]  # every draw first: none once coroutines exist
    outcomes = await asyncio.gather(
        *(service.submit(tap) for service, tap in zip(by, taps, strict=True)),
        *(services[1].asks.withdraw(ask_id) for ask_id in withdrawals),
        return_exceptions=True)
    answered = [(tap, out) for tap, out in zip(taps, outcomes, strict=False)
                if isinstance(out, Outcome)]
    return store, answered, needed


def check_each_recorded_answer_once(events: list[dict[str, Any]],
                                    answered: list[tuple[Answer, Outcome]]) -> None:
    firsts = {out.seq for _, out in answered if out.status == "recorded" and not out.replayed}
    logged = [e["seq"] for e in events if e["type"] == "ask_answered"]
    assert sorted(firsts) == sorted(logged) and len(set(logged)) == len(logged)
    for tap, out in answered:
        if out.status == "recorded":
            assert out.seq in firsts
            event = next(e for e in events if e["seq"] == out.seq)
            assert (event["expert"], event["lease"]) == (tap.expert, tap.lease)


def check_quorum(events: list[dict[str, Any]], needed: dict[str, int]) -> None:
    decided = Counter(e["item"] for e in events if e["type"] == "ask_decided")
    assert all(n == 1 for n in decided.values()), decided
    for ask_id, quorum in needed.items():
        answers = [e for e in events if e["type"] == "ask_answered" and e["item"] == ask_id
                   and not e["payload"].get("after_withdrawal")]
        votes = [(json.dumps(e["payload"]["decision"], sort_keys=True),
                  e["payload"]["decision"].get("verdict", "answered")) for e in answers]
        verdict = next((e["payload"] for e in events
                        if e["type"] == "ask_decided" and e["item"] == ask_id), None)
        assert (verdict["status"] if verdict else None) == decide(quorum, votes)
        if verdict:  # no answer after it; a rejection decides alone
            deciding = answers[-1:] if verdict["status"] == "rejected" else answers
            assert verdict["answers"] == [e["seq"] for e in deciding]
            assert verdict["by"] == [e["expert"] for e in deciding]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rnd=st.randoms(use_true_random=False), n_asks=st.integers(1, 8),
       n_experts=st.integers(1, 12))
async def test_no_ask_is_decided_twice_and_no_answer_is_lost(
        client: aioredis.Redis, rnd: random.Random, n_asks: int, n_experts: int) -> None:
    store, answered, needed = await scenario(client, rnd, n_asks, n_experts)
    ledger = Ledger(store)
    events = await ledger.events(ASKS_LOG, limit=10_000)

    check_each_recorded_answer_once(events, answered)
    check_quorum(events, needed)
    for ask_id in needed:
        view = await Service(store.roles(), SetClock(NOW)).asks.view(ask_id)
        recorded = [e for e in events if e["type"] == "ask_answered" and e["item"] == ask_id]
        assert [d.seq for d in view.decisions] == [e["seq"] for e in recorded]
    await ledger.seal(ASKS_LOG)
    assert (await ledger.verify(ASKS_LOG)).ok
