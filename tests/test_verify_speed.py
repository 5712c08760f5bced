"""verify's fast check of archived segments (adapters/archive/chains.py) passes what the exact
check passes and fails what it fails: a segment file rewritten (its SHA-256 forged in the
manifest) where orjson and the stdlib json could read a body differently still fails at the
changed event, naming the segment, in a thread and in the worker pool; bodies only the exact
path can hash still verify; and for any body, the fast check accepting it means the stdlib
definition does too."""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
from decimal import Decimal, getcontext
from pathlib import Path

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
import redis.asyncio as aioredis
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.archive.chains import SegmentChains, chained, exact
from adapters.archive.files import LocalSegmentFiles
from adapters.archive.segments import META_KEY, SCHEMA
from adapters.redis.keys import campaign_key, segments_key
from adapters.redis.store import RedisStore
from core.domain.timing import SetClock
from core.provenance.events import GENESIS
from core.provenance.ledger import Ledger
from core.provenance.segments import ArchivedEvent, SegmentMeta
from core.service.archiving import Archiver, ArchiveSettings

SMALL = ArchiveSettings(segment_events=50, segment_seconds=3600, hot_tail=20)
SEQ = 60  # in the second segment (51..100)
HEAD = '{"actor":"system","at":"2026-11-18T11:06:40.000Z","campaign":"c1","type":"note",'

# (as sealed, as rewritten): the stdlib reads the rewrite as another event, and a parser that
# read it the way the comment says would write the sealed bytes back.
TAMPERED = {
    "big integer (read as a float)": ('"x":1.8446744073709552e+19', '"x":18446744073709551616'),
    "big negative integer": ('"x":-9.223372036854776e+18', '"x":-9223372036854775809'),
    "duplicate key (first kept)": ('"x":1', '"x":1,"x":2'),
    "nested duplicate key": ('"x":{"y":1}', '"x":{"y":1,"y":2}'),
    "NaN (written as null)": ('"x":null', '"x":NaN'),
    "overflow (read as Infinity, written as null)": ('"x":null', '"x":1e400'),
    "lone surrogate (replaced)": ('"x":"\\ufffd"', '"x":"\\ud800"'),
    "raw control character (escaped)": ('"x":"a\\nb"', '"x":"a\nb"'),
    "float spelling (another double)": ('"x":0.1', '"x":0.10000000000000002'),
    "integer spelled as a float": ('"x":1', '"x":1.0'),
}


def body(field: str, i: int) -> str:
    return f'{HEAD}"payload":{{"i":{i},{field}}}}}'


@pytest.fixture
def files(tmp_path: Path) -> LocalSegmentFiles:
    return LocalSegmentFiles(tmp_path / "archive")


@pytest.fixture
def archived_store(client: aioredis.Redis, files: LocalSegmentFiles) -> RedisStore:
    return RedisStore(client, files=files)


async def archive(store: RedisStore, files: LocalSegmentFiles, clock: SetClock,
                  special: str) -> list[SegmentMeta]:
    """180 sealed events, event SEQ's payload holding `special`; three segments archived."""
    for seq in range(1, 181):
        await store.append_event("c1", body(special if seq == SEQ else '"x":0', seq))
    await Ledger(store).seal("c1")
    return await Archiver(store, store, files, clock, SMALL).archive("c1")


def file_bytes(meta: SegmentMeta, events: list[ArchivedEvent]) -> bytes:
    """A segment file as the archive writes one, derived columns left empty (a body the
    stdlib cannot read has none to derive)."""
    rows = [{"seq": e.seq, "hash": e.hash, "body": e.body} for e in events]
    table = pa.Table.from_pylist(rows, schema=SCHEMA).replace_schema_metadata(
        {META_KEY: meta.model_copy(update={"sha256": ""}).model_dump_json().encode()})
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()


async def rewrite(client: aioredis.Redis, files: LocalSegmentFiles, meta: SegmentMeta,
                  seq: int, new_body: str) -> None:
    """Whoever can write the archive and the manifest: the event's body replaced, its seal
    kept, the file written again and its SHA-256 forged in the manifest."""
    events = [e if e.seq != seq else e.model_copy(update={"body": new_body})
              for e in files.read_segment(meta)]
    data = file_bytes(meta, events)
    (files.root / "c1" / meta.name).write_bytes(data)
    forged = meta.model_copy(update={"sha256": hashlib.sha256(data).hexdigest()})
    await client.zrem(segments_key("c1"), meta.model_dump_json())
    await client.zadd(segments_key("c1"), {forged.model_dump_json(): meta.last_seq})


def fast(files: LocalSegmentFiles, store: RedisStore, pool: bool) -> Ledger:
    chains = SegmentChains(files, workers=2, pool_events=0) if pool else \
        SegmentChains(files, workers=1)
    return Ledger(store, store, files, chains)


@pytest.mark.parametrize("case", sorted(TAMPERED))
async def test_a_body_rewritten_where_the_parsers_differ_still_fails_at_that_event(
        client: aioredis.Redis, archived_store: RedisStore, files: LocalSegmentFiles,
        clock: SetClock, case: str) -> None:
    sealed, rewritten = TAMPERED[case]
    segments = await archive(archived_store, files, clock, sealed)
    ledger = fast(files, archived_store, pool=False)
    assert (await ledger.verify("c1")).ok

    await rewrite(client, files, segments[1], SEQ, body(rewritten, SEQ))
    verdict = await ledger.verify("c1")

    assert not verdict.ok and verdict.bad_seq == SEQ, verdict.line()
    assert "changed" in (verdict.reason or "") and segments[1].name in (verdict.reason or "")
    exact_verdict = await Ledger(archived_store, archived_store, files).verify("c1")
    assert verdict == exact_verdict


@pytest.mark.parametrize("pool", [False, True], ids=["thread", "pool"])
async def test_the_fast_check_gives_the_exact_checks_verdicts(
        client: aioredis.Redis, archived_store: RedisStore, files: LocalSegmentFiles,
        clock: SetClock, pool: bool) -> None:
    """Bodies whose canonical form orjson does not write (a big integer, NaN, an exponent the
    stdlib spells 1e-07) verify, the same verdict as the exact check's; then a changed
    event in the last segment fails at that event, naming its segment."""
    segments = await archive(archived_store, files, clock,
                             '"x":[123456789012345678901234567890,NaN,1e-7,"\\u00e9\\u2028"]')
    ledger, exact_ledger = fast(files, archived_store, pool), \
        Ledger(archived_store, archived_store, files)
    verdict = await ledger.verify("c1")
    assert verdict.ok and verdict.checked == 180
    assert verdict == await exact_ledger.verify("c1")

    await rewrite(client, files, segments[2], 120, body('"x":1', 120))
    verdict = await ledger.verify("c1")

    assert not verdict.ok and verdict.bad_seq == 120
    assert segments[2].name in (verdict.reason or "")
    assert verdict == await exact_ledger.verify("c1")


async def test_a_segment_that_chains_but_not_to_its_manifest_last_hash_fails(
        client: aioredis.Redis, archived_store: RedisStore, files: LocalSegmentFiles,
        clock: SetClock) -> None:
    segments = await archive(archived_store, files, clock, '"x":1')
    last = segments[-1]
    changed = last.model_copy(update={"last_hash": "f" * 64})
    await client.zrem(segments_key("c1"), last.model_dump_json())
    await client.zadd(segments_key("c1"), {changed.model_dump_json(): last.last_seq})

    for ledger in (fast(files, archived_store, pool=False),
                   Ledger(archived_store, archived_store, files)):
        verdict = await ledger.verify("c1")
        assert not verdict.ok and verdict.bad_seq == last.last_seq
        assert "the manifest says ffffffffffffffff" in (verdict.reason or "")


# --- the fast check against the definition, body by body --------------------------------------

LEAVES = (st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True)
          | st.integers(min_value=-2**80, max_value=2**80).map(float)  # past 2**63 as orjson's
          | st.integers(min_value=-2**80, max_value=2**80) | st.text(max_size=8))
JSON_VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                           max_leaves=8)


def spellings(value: object) -> list[str]:
    """Ways to write a value: json's own, and the forms a rewrite might try in its place."""
    text = json.dumps(value)
    out = [text, text.replace(".0,", ",").replace(".0]", "]"), text.replace("e-0", "e-")]
    if isinstance(value, float) and math.isfinite(value):
        out += [repr(int(value)) if value.is_integer() and abs(value) < 1e30 else text,
                f"{value:.25e}", f"{value:.17g}"]
    if isinstance(value, int) and not isinstance(value, bool):
        out += [f"{value}.0", f"{float(value)!r}"]
    return out


@settings(max_examples=500, deadline=None)
@example(sealed=float(2**64), other=None, pick=3)  # 18446744073709551616, orjson's 2.0**64
@given(sealed=LEAVES | JSON_VALUES, other=JSON_VALUES, pick=st.integers(0, 9))
def test_the_fast_check_accepts_a_body_only_where_the_definition_does(
        sealed: object, other: object, pick: int) -> None:
    """A rewrite spells the sealed value another way (or writes another value): where the
    fast check accepts it, the stdlib definition hashes it to the same seal."""
    original = json.dumps({"campaign": "c1", "payload": {"x": sealed}})
    seal = exact(original, 1, GENESIS)
    if seal is None:  # a string with a lone surrogate: never sealed
        return
    tries = spellings(sealed) + spellings(other) if pick > 6 else spellings(sealed)
    rewritten = '{"campaign":"c1","payload":{"x":' + tries[pick % len(tries)] + "}}"

    accepted = chained(1, GENESIS, [1], [seal], [rewritten])

    assert accepted is None or exact(rewritten, 1, GENESIS) == seal
    assert chained(1, GENESIS, [1], [seal], [original]) == seal


def test_orjson_reads_the_hardest_floats_as_the_stdlib_does() -> None:
    """Decimal strings half way between two doubles (and a digit either side), where a parser
    that does not round correctly picks the wrong one: the fast check hashes orjson's reading,
    so it must be the stdlib's."""
    getcontext().prec = 800
    rng = random.Random(17)
    for _ in range(3000):
        x = math.ldexp(rng.random() + 0.5, rng.randint(-1070, 1020))
        mid = (Decimal(x) + Decimal(math.nextafter(x, math.inf))) / 2
        for digits in (16, 17, 18, 19, 20, 30):
            for text in (format(mid, f".{digits}e"), format(mid.next_plus(), f".{digits}e"),
                         format(mid.next_minus(), f".{digits}e")):
                assert repr(orjson.loads(text)) == repr(json.loads(text)), text


@pytest.mark.parametrize("workers", [1, 2], ids=["thread", "processes"])
async def test_the_workers_answer_each_segment_in_order_and_none_for_a_missing_file(
        archived_store: RedisStore, files: LocalSegmentFiles, clock: SetClock,
        workers: int) -> None:
    """The answers themselves (verify's verdict is the same without them): each segment's
    last hash, in order, from worker processes too; None for a file that is not there."""
    segments = await archive(archived_store, files, clock, '"x":1')
    (files.root / "c1" / segments[1].name).unlink()
    chains = SegmentChains(files, workers=workers, pool_events=0)

    ends = [end async for end in chains.chain_ends(segments)]

    assert ends == [segments[0].last_hash, None, segments[2].last_hash]


async def rewrite_tail(client: aioredis.Redis, change: dict[int, str]) -> None:
    """The Redis log rebuilt with some bodies replaced (stream entries cannot be edited)."""
    log = campaign_key("c1", "log")
    entries = [(entry_id, fields["e"]) for entry_id, fields in await client.xrange(log)]
    await client.delete(log)
    for entry_id, event_body in entries:
        seq = int(entry_id.split("-")[1])
        await client.xadd(log, {"e": change.get(seq, event_body)}, id=entry_id)


@pytest.mark.parametrize("case", [*sorted(TAMPERED), "swapped with the next event"])
async def test_the_redis_tail_checked_fast_gives_the_exact_verdict(
        client: aioredis.Redis, archived_store: RedisStore, files: LocalSegmentFiles,
        case: str) -> None:
    sealed, rewritten = TAMPERED.get(case, ('"x":1', ""))
    for seq in range(1, 181):
        await archived_store.append_event("c1", body(sealed if seq == SEQ else '"x":0', seq))
    await Ledger(archived_store).seal("c1")
    ledger = Ledger(archived_store, chains=SegmentChains(files, workers=1))
    assert (await ledger.verify("c1")).ok

    await rewrite_tail(client, {SEQ: body(rewritten, SEQ)} if rewritten else
                       {SEQ: body('"x":0', SEQ + 1), SEQ + 1: body(sealed, SEQ)})
    verdict = await ledger.verify("c1")

    assert not verdict.ok and verdict.bad_seq == SEQ
    assert verdict == await Ledger(archived_store).verify("c1")
