"""The rules the Lua scripts enforce agree with their Python reference in core/domain/rules.py, on
random inputs: each rule's Lua function against its reference, then the scripts end to end
(an answer's time and stored event, an item's slots through claims, expiries and late
answers), on the embedded Redis and on the 3-master Cluster."""

from __future__ import annotations

import json
import random
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio.cluster import RedisCluster

from adapters.redis.lua import SCRIPTS
from adapters.redis.store import RedisStore
from core.domain import rules
from core.ports import Claimed, Submission
from core.provenance.chain import CHAIN_FIELDS
from core.provenance.events import Event, canonical
from tests.test_store_contract import NOW, a_claim, a_record, claimed, open_campaign

COMMON = (SCRIPTS / "common.lua").read_text()
RANDOM = settings(max_examples=60, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])
TIMES = st.integers(NOW - 10_000, NOW + 10_000_000)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**14) + 1, 10**14 - 1) | st.text(),
    lambda inner: st.lists(inner, min_size=1, max_size=4)  # cjson: an empty list reads as {}
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


async def lua(client: aioredis.Redis, body: str, *args: object) -> Any:
    """Run `body` with the helpers every script is given."""
    return await client.eval(f"{COMMON}\n{body}", 0, *args)  # type: ignore[misc]


# each rule against its reference


@RANDOM
@given(now=TIMES, started=TIMES, limit=st.integers(1, 86_400))
async def test_active_seconds_are_capped_like_the_reference(
        client: aioredis.Redis, now: int, started: int, limit: int) -> None:
    text = await lua(client, "return active_seconds(tonumber(ARGV[1]), tonumber(ARGV[2]), "
                             "tonumber(ARGV[3]))", now, started, limit)
    assert text == json.dumps(rules.active_seconds(now, started, limit))


@RANDOM
@given(opened=st.none() | TIMES, delivered=st.none() | TIMES, assigned=TIMES)
async def test_time_starts_like_the_reference(client: aioredis.Redis, opened: int | None,
                                              delivered: int | None, assigned: int) -> None:
    found = await lua(client, "return tostring(started_at(tonumber(ARGV[1]), tonumber(ARGV[2]), "
                              "tonumber(ARGV[3])))", opened or "", delivered or "", assigned)
    assert int(found) == rules.started_at(opened, delivered, assigned)


@RANDOM
@given(ms=st.lists(st.integers(0, 3_600_000), min_size=1, max_size=rules.RECENT_ANSWERS))
async def test_the_estimate_is_the_median_of_the_reference(client: aioredis.Redis,
                                                           ms: list[int]) -> None:
    recent = [rules.active_seconds(m, 0, 3600) for m in ms]  # as the durations list holds them
    found = await lua(client, "return tostring(median(cjson.decode(ARGV[1])))",
                      json.dumps([json.dumps(s) for s in recent]))
    assert float(found) == rules.median_estimate(recent)


@RANDOM
@given(answers=st.integers(1, 100_000), taken=st.integers(0, 5), overlap=st.integers(1, 5))
async def test_refreshes_and_free_slots_follow_the_reference(
        client: aioredis.Redis, answers: int, taken: int, overlap: int) -> None:
    found = await lua(client, "return {refreshes_estimate(tonumber(ARGV[1])) and 1 or 0, "
                              "slot_free(tonumber(ARGV[2]), tonumber(ARGV[3])) and 1 or 0}",
                      answers, taken, overlap)
    assert found == [int(rules.refreshes_estimate(answers)), int(rules.slot_free(taken, overlap))]


@RANDOM
@given(shuffle=st.permutations(range(26)), n_drafts=st.integers(0, 26))
async def test_the_shown_order_is_the_references(client: aioredis.Redis, shuffle: list[int],
                                                 n_drafts: int) -> None:
    letters = "".join(chr(65 + index) for index in shuffle)  # as store.py sends it
    found = await lua(client, "return json_indices(shown_order(ARGV[1], tonumber(ARGV[2])))",
                      letters, n_drafts)
    assert json.loads(found) == rules.shown_order(shuffle, n_drafts)


@RANDOM
@given(fields=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5),
       order=st.lists(st.integers(0, 25), max_size=3))
async def test_an_event_keeps_the_values_the_service_decided(
        client: aioredis.Redis, fields: dict[str, object], order: list[int]) -> None:
    """What Python sends comes back in the event unchanged, beside what the script adds."""
    fields.pop("order", None)
    found = await lua(client, "return json_with(cjson.decode(ARGV[1]), "
                              "'\"order\":' .. json_indices(cjson.decode(ARGV[2])))",
                      json.dumps(fields), json.dumps(order))
    assert json.loads(found) == {**fields, "order": order}


# the scripts end to end


KINDS = st.sampled_from(["redis", "redis-cluster"])


async def store_for(kind: str, client: aioredis.Redis, cluster_client: RedisCluster) -> RedisStore:
    """An emptied store of that kind, for each example."""
    if kind == "redis-cluster":
        await cluster_client.flushall(target_nodes=RedisCluster.PRIMARIES)
        return RedisStore(cluster_client)  # type: ignore[arg-type]
    await client.flushall()
    return RedisStore(client)


@RANDOM
@given(kind=KINDS, delivered=st.none() | st.integers(-1_000, 70_000),
       opened=st.none() | st.integers(-1_000, 70_000), opened_at=st.none() | TIMES,
       acted=st.integers(-5_000, 59_999), limit=st.integers(1, 120), text=st.text())
async def test_an_answer_is_timed_and_written_like_the_reference(
        client: aioredis.Redis, cluster_client: RedisCluster, kind: str, delivered: int | None,
        opened: int | None, opened_at: int | None, acted: int, limit: int, text: str) -> None:
    store = await store_for(kind, client, cluster_client)
    await open_campaign(store, "q1")
    lease = (await claimed(store, "ann", "k1.a")).lease
    marks = {"delivered": delivered, "opened": opened}
    for what, offset in marks.items():
        if offset is not None:
            assert await store.mark("c1", "k1.a", what, NOW + offset, '{"type":"mark"}')
    record = a_record("ann", "k1.a", now=NOW + acted)._replace(time_limit_s=limit,
                                                             opened_at=opened_at)
    record = record._replace(event=record.event.model_copy(update={"payload": {
        "channel": "web", "decision": {"type": "write", "text": text}, "platform_event": None}}))

    result = (await store.record(record))[0]

    timing = expected_timing(record, lease.assigned_at, delivered, opened)
    assert result.active_seconds == timing["active_seconds"]
    body = (await store.read_events("c1", 0, 100))[-1].body
    assert json.loads(body) == expected_event(record.event, timing, lease.order)
    # the timing's numbers as Python writes them, so the canonical form hashes alike
    assert canonical(json.loads(body)["payload"]["timing"]).decode() in body


def expected_timing(record: Submission, assigned: int, delivered: int | None,
                    opened: int | None) -> dict[str, object]:
    delivered_at = None if delivered is None else NOW + delivered
    opened_at = record.opened_at if record.opened_at is not None else (
        None if opened is None else NOW + opened)
    started = rules.started_at(opened_at, delivered_at, assigned)
    return {"active_seconds": rules.active_seconds(record.now, started, record.time_limit_s),
            "answered_at": record.now, "assigned_at": assigned, "delivered_at": delivered_at,
            "opened_at": opened_at}


def expected_event(event: Event, timing: dict[str, object], order: list[int]) -> dict[str, Any]:
    fields = event.model_dump(mode="json", exclude=CHAIN_FIELDS, exclude_none=True)
    return {**fields, "item": "q1",
            "payload": {**fields["payload"], "gold": False, "order": order, "timing": timing}}


MOVES = {"claim": 3, "answer": 2, "skip": 1, "tick": 2, "late_answer": 2, "late_skip": 1}


class Slots:
    """One item's slots as the reference counts them, beside the leases the test holds."""

    def __init__(self, overlap: int) -> None:
        self.overlap, self.taken, self.now, self.claims = overlap, 0, NOW, 0
        self.live: dict[str, int] = {}  # token -> expires_at
        self.expired: dict[str, int] = {}  # ended by the expiry pass, not yet answered


@settings(RANDOM, max_examples=100)
@given(kind=KINDS, overlap=st.integers(1, 3), rnd=st.randoms(use_true_random=False))
async def test_an_items_slots_follow_the_reference(
        client: aioredis.Redis, cluster_client: RedisCluster, kind: str, overlap: int,
        rnd: random.Random) -> None:
    """Claims, answers, skips, the expiry pass and late answers (which take a free slot back):
    a new expert gets the item exactly when the reference says a slot is free."""
    store = await store_for(kind, client, cluster_client)
    await open_campaign(store, "q1", overlap=overlap)
    slots = Slots(overlap)
    for move in rnd.choices(list(MOVES), weights=list(MOVES.values()), k=30):
        await MOVE_RUNNERS[move](store, slots, rnd.randrange(10**6))
    await claim(store, slots, 0)


async def claim(store: RedisStore, slots: Slots, pick: int) -> None:
    slots.claims += 1
    token = f"k1.{slots.claims}"
    got = await store.claim(a_claim(f"e{slots.claims}", token, now=slots.now,
                                    overlap=slots.overlap))
    if not rules.slot_free(slots.taken, slots.overlap):
        assert got == "empty"
        return
    assert isinstance(got, Claimed) and got.lease.item == "q1"
    slots.taken, _ = rules.slots_after_claim(slots.taken, slots.overlap)
    slots.live[token] = slots.now + 60_000


async def answer_live(store: RedisStore, slots: Slots, pick: int, effect: str) -> None:
    if not slots.live:
        return
    token = sorted(slots.live)[pick % len(slots.live)]
    del slots.live[token]
    result = (await store.record(answer(token, effect, slots.now, slots.overlap)))[0]
    assert (result.status, result.late) == ("recorded", False)
    if effect != "answered":
        slots.taken = rules.slots_after_return(slots.taken)


async def tick(store: RedisStore, slots: Slots, pick: int) -> None:
    slots.now += (1 + pick % 3) * 30_000  # a lease runs 60 s
    due = {t: end for t, end in slots.live.items() if end <= slots.now}
    assert await store.expire_due("c1", slots.now) == len(due)
    for token, end in due.items():
        del slots.live[token]
        slots.expired[token] = end
        slots.taken = rules.slots_after_return(slots.taken)


async def answer_late(store: RedisStore, slots: Slots, pick: int, effect: str) -> None:
    if not slots.expired:
        return
    token = sorted(slots.expired)[pick % len(slots.expired)]
    acted = slots.expired[token] - 1 - pick % 50_000  # before its deadline
    after = rules.slots_after_late(slots.taken, slots.overlap, counted=effect == "answered")
    result = (await store.record(answer(token, effect, acted, slots.overlap)))[0]
    if after is None:
        assert result.status == "taken"  # stays expired: a slot may free up for a retry
        return
    assert (result.status, result.late) == ("recorded", True)
    del slots.expired[token]
    slots.taken = after


def answer(token: str, effect: str, now: int, overlap: int) -> Submission:
    expert = "e" + token.split(".")[1]
    return a_record(expert, token, effect, now=now, overlap=overlap)


MOVE_RUNNERS: dict[str, Any] = {
    "claim": claim,
    "answer": lambda store, slots, pick: answer_live(store, slots, pick, "answered"),
    "skip": lambda store, slots, pick: answer_live(store, slots, pick, "skipped"),
    "tick": tick,
    "late_answer": lambda store, slots, pick: answer_late(store, slots, pick, "answered"),
    "late_skip": lambda store, slots, pick: answer_late(store, slots, pick, "skipped"),
}
