"""Checking archived segments' chains from their files, fast: the `ChainEnds` that
`core.provenance.ledger.Ledger.verify` takes.

Each segment is checked on its own, from the `prev` its manifest names, so several are checked
at once in worker processes (adapters/archive/chain_workers.py; only when there are enough
events to pay for starting them).
The answer for a segment is only ever "every event chains, to this hash" or "not sure": the
ledger then checks that segment itself and says where and why. So this module may be fast but
never decides a failure, and must never pass an event the exact path would fail.

The fast path hashes what orjson parses and writes. It accepts an event only when that SHA-256
equals the seal; on any other outcome `core.provenance.events.chain_hash` (the stdlib
definition) decides. Where the two parsers differ, the bytes must not be able to match a seal:
- integers past 64 bits: orjson reads them as floats (json as ints), and then writes them in
  exponent form (magnitude >= 2**63 > 1e16), so an output holding `e+` goes to the exact path;
- NaN, Infinity and numbers that overflow to them, lone surrogates, control characters in
  strings, a byte order mark, trailing commas: orjson refuses them (json accepts the first
  ones), so the exact path decides;
- duplicate keys (the last wins in both), other floats (both round correctly), escapes: the
  same values. tests/test_verify_speed.py holds each of these as a tampered segment."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections import deque
from collections.abc import AsyncGenerator
from contextlib import aclosing

import orjson

from adapters.archive.chain_workers import ChainWorker
from adapters.archive.files import FsspecSegmentFiles, LocalSegmentFiles
from adapters.archive.segments import check_file
from core.provenance.chain import CHAIN_FIELDS
from core.provenance.events import chain_hash
from core.provenance.segments import SegmentError, SegmentMeta

POOL_EVENTS = 300_000  # below this, starting workers (~0.5 s of imports) costs more than it saves
SORTED = orjson.OPT_SORT_KEYS


class SegmentChains:
    """Reads each segment's file here (the archive may be an fsspec URL a worker cannot see)
    and checks its chain in a worker process, or in a thread for a small verify."""

    def __init__(self, files: LocalSegmentFiles | FsspecSegmentFiles,
                 workers: int | None = None, pool_events: int = POOL_EVENTS) -> None:
        self.files = files
        self.workers = workers or os.cpu_count() or 1
        self.pool_events = pool_events

    async def chain_ends(self, segments: list[SegmentMeta]
                         ) -> AsyncGenerator[str | None, None]:
        """For each segment, in order: the hash its events chain to from its `prev`, or None."""
        workers: list[ChainWorker] = []
        try:
            if self.workers >= 2 and len(segments) >= 2 and \
                    sum(segment.events for segment in segments) >= self.pool_events:
                workers = await _started(min(self.workers, len(segments)))
            async with aclosing(self._spread(workers, segments) if workers
                                else self._here(segments)) as ends:
                async for end in ends:
                    yield end
        finally:
            await asyncio.gather(*(worker.stop() for worker in workers))

    async def _here(self, segments: list[SegmentMeta]) -> AsyncGenerator[str | None, None]:
        for segment in segments:
            yield await asyncio.to_thread(self._end, segment)

    async def _spread(self, workers: list[ChainWorker], segments: list[SegmentMeta]
                      ) -> AsyncGenerator[str | None, None]:
        """Segment i goes to worker i mod n, one at a time each: the answers come in order and
        the files in flight are one per worker."""
        asked: deque[asyncio.Task[str | None]] = deque()
        try:
            for index, segment in enumerate(segments):
                if len(asked) == len(workers):
                    yield await asked.popleft()
                worker = workers[index % len(workers)]
                asked.append(asyncio.create_task(self._ask(worker, segment)))
            while asked:
                yield await asked.popleft()
        finally:
            for task in asked:
                task.cancel()

    async def _ask(self, worker: ChainWorker, segment: SegmentMeta) -> str | None:
        try:
            data = await asyncio.to_thread(self.files.read_bytes, segment)
        except SegmentError:
            return None  # the ledger reads it again and names the fault
        return await worker.chain_end(data, segment)

    def chained(self, seq: int, prev: str, seqs: list[int], seals: list[str],
                bodies: list[str]) -> str | None:
        """Events already in memory (the Redis tail), checked here and now."""
        return chained(seq, prev, seqs, seals, bodies)

    def _end(self, segment: SegmentMeta) -> str | None:
        try:
            return chain_end(self.files.read_bytes(segment), segment)
        except SegmentError:
            return None


async def _started(count: int) -> list[ChainWorker]:
    """Up to `count` workers; fewer (none) where the system refuses a process."""
    workers: list[ChainWorker] = []
    try:
        for _ in range(count):
            workers.append(await ChainWorker.start())
    except OSError:
        pass
    return workers


def chain_end(data: bytes, segment: SegmentMeta) -> str | None:
    """The hash a segment file's events chain to from `segment.prev`, if the file is the one
    the manifest names and every event, in seq order from its first, hashes to its seal."""
    try:
        table = check_file(data, segment)
    except SegmentError:
        return None
    seqs = table.column("seq").to_pylist()
    hashes = table.column("hash").to_pylist()
    bodies = table.column("body").to_pylist()
    del table
    return chained(segment.first_seq, segment.prev, seqs, hashes, bodies)


def chained(seq: int, prev: str, seqs: list[int], hashes: list[str], bodies: list[str]
            ) -> str | None:
    """The last seal, if each event (from `seq`, without a gap) chains from `prev` to it."""
    sha256, loads, dumps = hashlib.sha256, orjson.loads, orjson.dumps
    for found, seal, body in zip(seqs, hashes, bodies, strict=True):
        if found != seq:
            return None
        try:
            fields = loads(body)
            if type(fields) is not dict or not CHAIN_FIELDS.isdisjoint(fields):
                return None
            fields["seq"], fields["prev"] = seq, prev
            text = dumps(fields, option=SORTED)
        except (ValueError, TypeError):  # orjson's errors are these (a null body too)
            text = b"e+"  # the exact path decides
        if (b"e+" in text or sha256(text).hexdigest() != seal) and \
                exact(body, seq, prev) != seal:
            return None
        prev = seal
        seq += 1
    return prev


def exact(body: str, seq: int, prev: str) -> str | None:
    """The chain hash by its definition (stdlib json), or None for a body it cannot hash."""
    try:
        fields = json.loads(body)
        if not isinstance(fields, dict) or not CHAIN_FIELDS.isdisjoint(fields):
            return None
        return chain_hash(fields, seq, prev)
    except (ValueError, TypeError):  # not JSON, a lone surrogate UTF-8 cannot hold, a null
        return None
