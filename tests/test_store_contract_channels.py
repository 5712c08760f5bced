"""The roles a channel uses, on every store (single Redis and the Cluster): the Inbox (platform
requests kept until handled, resends dropped), the Outbox (what is owed, one entry per key) and
Turns' paced send slots."""

from __future__ import annotations

from adapters.redis.store import RedisStore

TTL_MS = 60_000
KEPT_AT = 1_795_000_000_000


async def kept(store: RedisStore, *request_ids: str, lane: str = "U1") -> None:
    """Requests kept in the `slack` inbox, its consumer group made first (a take on an inbox
    with none makes it and reads nothing)."""
    assert await store.inbox_take("slack", "w1", 10, 1) == []
    for request_id in request_ids:
        assert await store.inbox_put("slack", request_id, lane, f"body {request_id}", TTL_MS,
                                     KEPT_AT)


async def test_a_request_is_kept_once_and_leaves_when_done(any_store: RedisStore) -> None:
    await kept(any_store, "r1")
    assert not await any_store.inbox_put("slack", "r1", "U1", "resent", TTL_MS, KEPT_AT + 5)
    assert await any_store.inbox_size("slack") == 1

    [entry] = await any_store.inbox_take("slack", "w1", 10, 1)

    assert (entry.lane, entry.body, entry.attempts, entry.kept_at) == (
        "U1", "body r1", 0, KEPT_AT)
    assert await any_store.inbox_take("slack", "w2", 10, 1) == []  # handed out once
    await any_store.inbox_done("slack", entry.id)
    assert await any_store.inbox_size("slack") == 0
    assert await any_store.inbox_size("telegram") == 0


async def test_requests_come_in_the_order_they_were_kept(any_store: RedisStore) -> None:
    await kept(any_store, "r1", "r2", "r3")

    taken = await any_store.inbox_take("slack", "w1", 2, 1)

    assert [e.body for e in taken] == ["body r1", "body r2"]
    assert [e.body for e in await any_store.inbox_take("slack", "w1", 2, 1)] == ["body r3"]


async def test_a_request_left_by_a_consumer_is_reclaimed(any_store: RedisStore) -> None:
    await kept(any_store, "r1")
    [taken] = await any_store.inbox_take("slack", "dead worker", 10, 1)

    assert await any_store.inbox_reclaim("slack", "w2", 10, 60_000) == []  # not stale yet
    [reclaimed] = await any_store.inbox_reclaim("slack", "w2", 10, 0)

    assert reclaimed == taken
    assert await any_store.inbox_reclaim("telegram", "w2", 10, 0) == []  # no group yet: none


async def test_a_failed_request_is_retried_then_set_aside(any_store: RedisStore) -> None:
    await kept(any_store, "r1")
    [first] = await any_store.inbox_take("slack", "w1", 10, 1)

    assert await any_store.inbox_retry("slack", first, max_attempts=2)
    [second] = await any_store.inbox_take("slack", "w1", 10, 1)
    assert (second.body, second.attempts, second.kept_at) == ("body r1", 1, KEPT_AT)
    assert second.id != first.id

    assert not await any_store.inbox_retry("slack", second, max_attempts=2)
    assert await any_store.inbox_size("slack") == 0
    assert await any_store.inbox_take("slack", "w1", 10, 1) == []


async def test_a_platform_event_is_taken_once_until_forgotten(any_store: RedisStore) -> None:
    assert await any_store.take_delivery("telegram", "7", TTL_MS)
    assert not await any_store.take_delivery("telegram", "7", TTL_MS)
    assert await any_store.take_delivery("slack", "7", TTL_MS)  # channels apart

    await any_store.forget_delivery("telegram", "7")

    assert await any_store.take_delivery("telegram", "7", TTL_MS)


async def test_the_outbox_keeps_one_entry_per_key(any_store: RedisStore) -> None:
    await any_store.outbox_put("slack", "card:U1", '{"expert":"ann"}')
    await any_store.outbox_put("slack", "card:U1", '{"expert":"ann"}')  # owed twice
    await any_store.outbox_put("slack", "update:C1:1.5", "edit")

    owed = await any_store.outbox_items("slack", 10)

    assert {key: o.entry for key, o in owed.items()} == {
        "card:U1": '{"expert":"ann"}', "update:C1:1.5": "edit"}
    assert await any_store.outbox_items("telegram", 10) == {}
    assert len(await any_store.outbox_items("slack", 1)) == 1


async def test_an_entry_owed_anew_while_sending_stays(any_store: RedisStore) -> None:
    await any_store.outbox_put("slack", "card:U1", "card")
    sent = (await any_store.outbox_items("slack", 10))["card:U1"]
    await any_store.outbox_put("slack", "card:U1", "card")  # owed again meanwhile

    assert not await any_store.outbox_done("slack", "card:U1", sent)
    again = (await any_store.outbox_items("slack", 10))["card:U1"]
    assert again.version != sent.version

    assert await any_store.outbox_done("slack", "card:U1", again)
    assert await any_store.outbox_items("slack", 10) == {}


async def test_paced_slots_follow_one_another(any_store: RedisStore) -> None:
    """Three sends reserved at once: the first now, each next one an interval after the one
    before (waits measured on Redis's clock, which moves on a little between the calls)."""
    waits = [await any_store.next_slot("slack:C1", 10_000) for _ in range(3)]

    assert waits[0] == 0
    assert 0 < waits[1] <= 10_000 and 10_000 < waits[2] <= 20_000
    assert waits[2] - waits[1] <= 10_000
    assert await any_store.next_slot("slack:C2", 10_000) == 0  # each name its own pace

