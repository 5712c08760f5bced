"""Tampering with a sealed provenance log is detected, and the verdict names the seq and why."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from adapters.redis import keys
from adapters.redis.store import RedisStore
from core.domain.answers import Answer
from core.domain.campaigns import CampaignSpec
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import Choose
from core.provenance.chain import Verdict
from core.provenance.ledger import BATCH, Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items

LOG = keys.campaign_key("c1", "log")
Entries = list[tuple[int, str]]


@pytest.fixture
async def sealed(service: Service, coordinator: Coordinator, ledger: Ledger) -> int:
    """A campaign with a few answers, sealed; returns how many events its log holds."""
    spec = CampaignSpec(id="c1", title="Better answer?", kind="pairwise", overlap=2)
    items = [{"id": f"q{i}", "prompt": f"Q{i}?", "drafts": [{"text": "yes", "model": "m1"},
                                                            {"text": "no", "model": "m2"}]}
             for i in range(3)]
    spool = spool_items(spec, items)
    await coordinator.post_campaign(spec, spool)
    spool.close()
    for expert in ("ann", "bob"):
        await coordinator.add_expert(Expert(id=expert, name=expert))
        for _ in range(2):
            task = await service.next_task(expert)
            assert isinstance(task, Card)
            await service.submit(Answer(expert=expert, lease=task.lease,
                                        decision=Choose(choice="A")))
    count = await ledger.seal("c1")
    verdict = await ledger.verify("c1")
    assert verdict.ok and verdict.checked == count >= 14
    return count


async def read_log(client: aioredis.Redis) -> Entries:
    return [(int(entry_id.split("-")[1]), fields["e"])
            for entry_id, fields in await client.xrange(LOG)]


async def rewrite_log(client: aioredis.Redis, entries: Entries) -> None:
    """Rebuild the stream as given; stream entries cannot be edited in place."""
    await client.delete(LOG)
    for seq, body in entries:
        await client.xadd(LOG, {"e": body}, id=f"0-{seq}")


async def change_body(client: aioredis.Redis, seq: int, change: Callable[[str], str]) -> None:
    entries = await read_log(client)
    await rewrite_log(client, [(s, change(body) if s == seq else body) for s, body in entries])


def body_with(**fields: object) -> Callable[[str], str]:
    return lambda body: json.dumps({**json.loads(body), **fields})


async def test_a_changed_decision_is_detected(sealed: int, client: aioredis.Redis,
                                              ledger: Ledger) -> None:
    entries = await read_log(client)
    seq = next(s for s, body in entries if json.loads(body)["type"] == "answered")

    def flip_choice(body: str) -> str:
        event = json.loads(body)
        event["payload"]["decision"]["choice"] = "B"
        return json.dumps(event)

    await change_body(client, seq, flip_choice)
    verdict = await ledger.verify("c1")

    assert not verdict.ok and verdict.bad_seq == seq
    assert "changed" in (verdict.reason or "")


@pytest.mark.parametrize("seq", [1, 7, 13])
async def test_a_changed_timestamp_is_detected_anywhere(sealed: int, client: aioredis.Redis,
                                                        ledger: Ledger, seq: int) -> None:
    await change_body(client, seq, body_with(at="2020-01-01T00:00:00.000Z"))

    verdict = await ledger.verify("c1")

    assert (verdict.ok, verdict.bad_seq) == (False, seq)
    assert "changed" in (verdict.reason or "")


def flip_digit(body: str) -> str:
    """Change one byte: the last digit of the event's timestamp."""
    at = body.index('"at":"') + len('"at":"2026-11-18T11:06:40.00')
    return body[:at] + ("7" if body[at] != "7" else "8") + body[at + 1:]


@pytest.mark.parametrize("change", [flip_digit, lambda body: body[:-1] + "]",
                                    lambda body: body.replace('"', "'", 1)],
                         ids=["digit", "bracket", "quote"])
async def test_a_single_changed_byte_is_detected(sealed: int, client: aioredis.Redis,
                                                 ledger: Ledger,
                                                 change: Callable[[str], str]) -> None:
    before = dict(await read_log(client))[9]
    await change_body(client, 9, change)
    after = dict(await read_log(client))[9]
    assert len(after) == len(before)
    assert sum(a != b for a, b in zip(after, before, strict=True)) == 1

    verdict = await ledger.verify("c1")

    assert (verdict.ok, verdict.bad_seq) == (False, 9)
    assert "changed" in (verdict.reason or "")


@pytest.mark.parametrize("field", ["seq", "prev", "hash"])
async def test_a_body_claiming_its_own_chain_fields_is_detected(
        sealed: int, client: aioredis.Redis, ledger: Ledger, field: str) -> None:
    await change_body(client, 5, body_with(**{field: "0" * 64 if field != "seq" else 99}))

    verdict = await ledger.verify("c1")

    assert (verdict.ok, verdict.bad_seq) == (False, 5)
    assert "changed" in (verdict.reason or "")


async def test_an_added_field_is_detected(sealed: int, client: aioredis.Redis,
                                          ledger: Ledger) -> None:
    await change_body(client, 6, body_with(note="approved by admin"))

    verdict = await ledger.verify("c1")

    assert (verdict.ok, verdict.bad_seq) == (False, 6)


@pytest.mark.parametrize("seq", [1, 6])
async def test_a_deleted_event_is_detected(sealed: int, client: aioredis.Redis,
                                           ledger: Ledger, seq: int) -> None:
    assert await client.xdel(LOG, f"0-{seq}") == 1

    verdict = await ledger.verify("c1")

    assert (verdict.ok, verdict.bad_seq) == (False, seq)
    assert "removed" in (verdict.reason or "")


async def test_the_deleted_last_event_is_detected(sealed: int, client: aioredis.Redis,
                                                  ledger: Ledger) -> None:
    assert await client.xdel(LOG, f"0-{sealed}") == 1

    verdict = await ledger.verify("c1")

    assert (verdict.ok, verdict.bad_seq) == (False, sealed)
    assert "removed" in (verdict.reason or "")


async def test_the_deleted_last_events_are_detected_even_when_renumbered(
        sealed: int, client: aioredis.Redis, ledger: Ledger) -> None:
    entries = await read_log(client)
    await rewrite_log(client, entries[:-3])

    verdict = await ledger.verify("c1")

    assert (verdict.ok, verdict.bad_seq) == (False, sealed - 2)
    assert "removed" in (verdict.reason or "")


@pytest.mark.parametrize("first", [1, 8, 12])
async def test_two_swapped_events_are_detected(sealed: int, client: aioredis.Redis,
                                               ledger: Ledger, first: int) -> None:
    entries = dict(await read_log(client))
    entries[first], entries[first + 1] = entries[first + 1], entries[first]
    await rewrite_log(client, sorted(entries.items()))

    verdict = await ledger.verify("c1")

    assert (verdict.ok, verdict.bad_seq) == (False, first)
    assert "reordered" in (verdict.reason or "")


async def test_a_deleted_seal_is_detected(sealed: int, client: aioredis.Redis,
                                          ledger: Ledger) -> None:
    await client.hdel(keys.campaign_key("c1", "hashes"), "4")

    verdict = await ledger.verify("c1")

    assert (verdict.ok, verdict.bad_seq) == (False, 4)
    assert "seal" in (verdict.reason or "")


async def test_events_after_the_seal_are_reported_unsealed_not_broken(
        sealed: int, service: Service, ledger: Ledger) -> None:
    task = await service.next_task("ann")
    assert isinstance(task, Card)
    assert await service.opened(task.lease, "ann")

    verdict = await ledger.verify("c1")
    assert verdict.ok and (verdict.sealed, verdict.unsealed) == (sealed, 1)
    assert "1 not yet sealed" in verdict.line()

    assert await ledger.seal("c1") == 1
    assert (await ledger.verify("c1")).unsealed == 0


async def test_a_sealed_chain_that_is_resealed_stays_the_same(sealed: int,
                                                              ledger: Ledger) -> None:
    head = (await ledger.verify("c1")).head

    assert await ledger.seal("c1") == 0
    assert (await ledger.verify("c1")).head == head


async def test_the_verdict_line_names_the_broken_seq(sealed: int, client: aioredis.Redis,
                                                     ledger: Ledger) -> None:
    await client.xdel(LOG, "0-3")

    verdict = await ledger.verify("c1")

    assert verdict.line().startswith("c1: chain broken at seq 3: ")
    assert "removed" in verdict.line()


def test_verdict_lines_read_as_a_user_expects() -> None:
    good = Verdict(campaign="c9", ok=True, checked=12, sealed=12, head="ab" * 32)
    bad = Verdict(campaign="c9", ok=False, checked=4, sealed=12, bad_seq=5,
                  reason="its contents do not match its seal (changed)")

    assert good.line() == f"c9: chain verified, 12 events, head {'ab' * 32}"
    assert bad.line() == "c9: chain broken at seq 5: its contents do not match its seal (changed)"


async def test_a_swap_across_a_read_batch_is_still_called_reordered(
        store: RedisStore, client: aioredis.Redis, ledger: Ledger) -> None:
    bodies = [json.dumps({"actor": "system", "at": "2026-11-18T11:06:40.000Z", "campaign": "c1",
                          "type": "note", "payload": {"n": n}}) for n in range(BATCH + 10)]
    for body in bodies:
        await store.append_event("c1", body)
    await ledger.seal("c1")
    entries = dict(await read_log(client))
    entries[BATCH], entries[BATCH + 1] = entries[BATCH + 1], entries[BATCH]
    await rewrite_log(client, sorted(entries.items()))

    verdict = await ledger.verify("c1")

    assert (verdict.ok, verdict.bad_seq) == (False, BATCH)
    assert "reordered" in (verdict.reason or "")


async def test_unsealed_events_removed_from_the_end_are_missed_by_nobody(
        sealed: int, client: aioredis.Redis, ledger: Ledger) -> None:
    await client.xadd(LOG, {"e": '{"type":"note"}'}, id=f"0-{sealed + 1}")  # grows past the seal
    await client.incr(keys.campaign_key("c1", "seq"))
    await client.xdel(LOG, f"0-{sealed + 1}")  # ...and its unsealed end is removed

    verdict = await ledger.verify("c1")

    assert not verdict.ok and verdict.bad_seq == sealed + 1
    assert "removed before they were sealed" in verdict.line()
