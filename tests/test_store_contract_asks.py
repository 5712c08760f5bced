"""The AskStore role's contract on every store (single Redis and the Cluster): an ask, its
offers and answers, quorum in one step, the guarded changes a tick makes, marks, and the
queues several workers share."""

from __future__ import annotations

import json

from adapters.redis.store import RedisStore
from core.domain.experts import Expert
from core.ports import AskAnswering, AskChange, AskOffer, AskPosting, AskRetry

NOW = 1_795_000_000_000


def posting(ask_id: str = "ask_1", call: str = "me:c1", sha: str = "s1",
            offers: tuple[AskOffer, ...] = (), later: tuple[str, ...] = ()) -> AskPosting:
    spec = json.dumps({"call_id": "c1", "kind": "approve", "question": "ok?",
                       "proposal": {"function": "f"}})
    body = json.dumps({"campaign": "asks", "type": "ask_posted", "item": ask_id})
    return AskPosting(id=ask_id, call=call, body_sha=sha, call_ttl_ms=60_000, spec=spec,
                      callback="http://127.0.0.1:9/hook", created_at=NOW,
                      expires_at=NOW + 60_000, offers=offers, later=later,
                      waiting="" if offers else "nobody", event_body=body)


def offer(expert: str, *accounts: str) -> AskOffer:
    return AskOffer(expert, f"ask-{expert}", accounts)


def answering(expert: str, verdict: str = "approved", needed: int = 1) -> AskAnswering:
    decision = json.dumps({"verdict": verdict})
    body = json.dumps({"campaign": "asks", "type": "ask_answered", "expert": expert})
    return AskAnswering(token=f"ask-{expert}", expert=expert, now=NOW + 5, at_iso="t",
                        decision=decision, key=decision, status=verdict,
                        rejects=verdict == "rejected", needed=needed,
                        comment="why" if verdict == "rejected" else None, event_body=body,
                        late_body=body[:-1] + ', "after_withdrawal": true}')


async def test_an_ask_is_created_once_per_call_and_read_back(any_store: RedisStore) -> None:
    assert await any_store.create_ask(posting(offers=(offer("ann", "telegram:1"),))) == \
        ("created", "ask_1")
    assert await any_store.create_ask(posting(ask_id="ask_2")) == ("same", "ask_1")
    assert await any_store.create_ask(posting(ask_id="ask_3", sha="s2")) == ("conflict", "ask_1")

    stored = await any_store.load_ask("ask_1")
    assert stored is not None and stored.status == "pending" and stored.seqs == [1]
    assert stored.offered == {"ann": "ask-ann"} and stored.expires_at == NOW + 60_000
    assert await any_store.load_ask("ask_3") is None
    assert [a.id for a in await any_store.list_asks(10, "pending")] == ["ask_1"]
    assert await any_store.list_asks(10, "approved") == []


async def test_offers_are_held_by_their_expert_and_found_by_token(any_store: RedisStore
                                                                  ) -> None:
    await any_store.save_expert(Expert(id="ann", name="Ann"), create=True)
    await any_store.create_ask(posting(offers=(offer("ann"), offer("bob"))))

    held = await any_store.held_asks("ann")
    found = await any_store.token_ask("ask-bob")

    assert [(h.token, h.expert, h.ask.id, h.answered) for h in held] == [
        ("ask-ann", "ann", "ask_1", False)]
    assert found is not None and found.expert == "bob" and found.offered_at == NOW
    assert await any_store.held_asks("cy") == [] and await any_store.token_ask("ask-x") is None
    assert [e.id for e in await any_store.ask_experts()] == ["ann"]


async def test_an_answer_is_recorded_once_and_quorum_decides(any_store: RedisStore) -> None:
    await any_store.create_ask(posting(offers=(offer("ann"), offer("bob"), offer("cy"))))

    first = await any_store.answer_ask(answering("ann", needed=2))
    again = await any_store.answer_ask(answering("ann", needed=2))
    forged = await any_store.answer_ask(answering("bob")._replace(expert="cy"))
    second = await any_store.answer_ask(answering("bob", needed=2))
    late = await any_store.answer_ask(answering("cy", needed=2))

    assert (first.status, first.decided, first.started) == ("recorded", None, NOW)
    assert (again.status, again.seq) == ("duplicate", first.seq)
    assert forged.status == "gone"
    assert (second.status, second.decided) == ("recorded", "approved")
    assert late.status == "approved"
    stored = await any_store.load_ask("ask_1")
    assert stored is not None and stored.by == ["ann", "bob"] and len(stored.answers) == 2
    assert await any_store.held_asks("cy") == []
    assert [j.fields["ask"] for j in await any_store.take_ask_jobs("callbacks", "w", 5, 0,
                                                                    NOW)] == ["ask_1"]


async def test_changes_apply_once_at_the_stage_read_and_after_the_deadline(
        any_store: RedisStore) -> None:
    await any_store.create_ask(posting(later=("bob",)))
    body = json.dumps({"campaign": "asks", "type": "ask_escalated"})
    escalate = AskChange(ask="ask_1", mode="escalate", now=NOW + 60_000, stage=0,
                         event_body=body, new_stage=1, expires_at=NOW + 120_000,
                         offers=(offer("cy", "slack:U3"),), later=(), waiting="")

    assert await any_store.due_asks(NOW, 10) == ([], ["ask_1"])
    assert await any_store.change_ask(escalate._replace(now=NOW)) == "early"
    assert await any_store.change_ask(escalate) == "ok"
    assert await any_store.change_ask(escalate) == "moved"
    stored = await any_store.load_ask("ask_1")
    assert stored is not None and (stored.stage, stored.later) == (1, [])
    assert await any_store.due_asks(NOW + 60_000, 10) == ([], [])
    withdraw = AskChange(ask="ask_1", mode="withdraw", now=NOW, stage=0, event_body=body)
    assert await any_store.change_ask(withdraw) == "ok"
    assert await any_store.change_ask(withdraw) == "withdrawn"
    assert await any_store.change_ask(withdraw._replace(ask="ask_9")) == "missing"


async def test_marks_are_noted_once(any_store: RedisStore) -> None:
    await any_store.create_ask(posting(offers=(offer("ann"),)))
    body = json.dumps({"campaign": "asks", "type": "ask_delivered"})

    assert await any_store.mark_ask("ask-ann", "delivered", NOW + 1, body, "", "slack")
    assert not await any_store.mark_ask("ask-ann", "delivered", NOW + 2, body, "", "slack")
    assert await any_store.mark_ask("ask-ann", "opened", NOW + 3, "", "ann", "")
    assert not await any_store.mark_ask("ask-ann", "opened", NOW + 3, "", "bob", "")
    assert not await any_store.mark_ask("ask-ann", "rationale", NOW + 4, body, "ann", "")
    recorded = await any_store.answer_ask(answering("ann"))
    assert recorded.started == NOW + 3  # from the first touch
    assert await any_store.mark_ask("ask-ann", "rationale", NOW + 4, body, "ann", "")


async def test_queue_entries_are_shared_by_consumers_and_retried(any_store: RedisStore) -> None:
    await any_store.create_ask(posting(offers=(offer("ann", "telegram:1", "slack:U1"),)))
    await any_store.answer_ask(answering("ann"))

    one = await any_store.take_ask_jobs("deliveries", "w1", 1, 0, NOW)
    two = await any_store.take_ask_jobs("deliveries", "w2", 5, 0, NOW)
    [callback] = await any_store.take_ask_jobs("callbacks", "w1", 5, 0, NOW)
    retry = AskRetry({**callback.fields, "tries": "1"}, NOW + 1000)

    assert len(one) == len(two) == 1 and one[0].entry != two[0].entry
    assert await any_store.finish_ask_job("deliveries", one[0].entry)
    assert not await any_store.finish_ask_job("deliveries", one[0].entry)
    assert await any_store.finish_ask_job("callbacks", callback.entry, retry)
    assert await any_store.take_ask_jobs("callbacks", "w1", 5, 0, NOW) == []
    [back] = await any_store.take_ask_jobs("callbacks", "w2", 5, 0, NOW + 1000)
    assert back.fields["tries"] == "1" and back.fields["delivery"] == "cb-ask_1"


async def test_the_routing_read_tells_whether_an_expert_holds_an_open_ask(
        any_store: RedisStore) -> None:
    await any_store.create_ask(posting(offers=(offer("ann"), offer("bob"))))

    before = [(await any_store.routing(e, [])).asks for e in ("ann", "bob", "cy")]
    await any_store.answer_ask(answering("ann"))

    assert before == [True, True, False]
    assert not (await any_store.routing("ann", [])).asks
    assert not (await any_store.routing("bob", [])).asks  # decided: bob's card is closed


async def test_asks_waiting_for_experts_are_looked_at_in_turn(any_store: RedisStore) -> None:
    await any_store.create_ask(posting(later=("bob",)))
    await any_store.create_ask(posting(ask_id="ask_2", call="me:c2", later=("bob",))
                               ._replace(created_at=NOW + 1))
    looked = AskChange(ask="ask_1", mode="offer", now=NOW + 500, stage=0, later=("bob",),
                       waiting="bob is paused")

    first = (await any_store.due_asks(NOW + 500, 1))[1]
    assert await any_store.change_ask(looked) == "ok"
    second = (await any_store.due_asks(NOW + 500, 1))[1]

    assert (first, second) == (["ask_1"], ["ask_2"])
