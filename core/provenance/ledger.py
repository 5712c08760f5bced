"""Sealing and checking a campaign's provenance log through the store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Protocol

from core.ports import Archived, Log, SegmentFiles
from core.privacy.pseudonyms import pseudonymise
from core.provenance.chain import CHAIN_FIELDS, ChainChecker, StoredEvent, Verdict, seal_events
from core.provenance.events import GENESIS, chain_hash
from core.provenance.segments import ArchivedEvent, SegmentError, SegmentMeta

BATCH = 2000


class ChainEnds(Protocol):
    """Checks archived segments from their files, each from its manifest's `prev`, away from
    the event loop and side by side where it can (adapters/archive/chains.py)."""

    def chain_ends(self, segments: list[SegmentMeta]) -> AsyncGenerator[str | None, None]:
        """For each segment, in order: the hash its events chain to, every event hashing to its
        seal; None for any doubt. Never a failure: the ledger checks a None itself."""
        ...

    def chained(self, seq: int, prev: str, seqs: list[int], seals: list[str],
                bodies: list[str]) -> str | None:
        """The last seal, if the events (from `seq`, without a gap) chain from `prev` to it,
        each hashing to its seal; None for any doubt (the checker then says where)."""
        ...


class Ledger:
    """`archived` and `files` (the manifest and the archive's files) let `verify` check each
    archived segment against its file; without them it reads the log as the store serves it.
    `chains` checks segments faster than the ledger can; the ledger still decides."""

    def __init__(self, log: Log, archived: Archived | None = None,
                 files: SegmentFiles | None = None, chains: ChainEnds | None = None) -> None:
        self.log = log
        self.archived = archived
        self.files = files
        self.chains = chains

    async def seal(self, campaign_id: str) -> int:
        """Hash every event appended since the last seal, in log order; returns how many.
        Sealers may run side by side: the chain is a function of the log, so they agree. A
        save the store refused (the head was read on a master that has since failed over, and
        these events sit past a gap on the new one) ends the pass: the next starts again from
        the stored head, and a worker must not die of it."""
        sealed = 0
        head = await self.log.chain_head(campaign_id)
        while True:
            events = await self.log.read_events(campaign_id, head.seq, BATCH)
            if not events:
                return sealed
            seals = seal_events(head, events)
            await self.log.save_seals(campaign_id, seals)
            head = await self.log.chain_head(campaign_id)
            if head.seq < seals[-1].seq:  # refused: the log changed under this sealer
                return sealed
            sealed += len(seals)

    async def events(self, campaign_id: str, after: int = 0, limit: int = 100
                     ) -> list[dict[str, object]]:
        """Events as the contract shows them: the stored body with its `seq`, `prev` and `hash`
        (`prev`/`hash` are null until the sealer has reached the event). Erased experts appear
        under their pseudonyms: every report, export and listing reads the log through here."""
        stored = await self.log.read_events(campaign_id, after, limit)
        seqs = [event.seq for event in stored]
        seals = await self.log.read_seals(campaign_id, [seqs[0] - 1, *seqs] if seqs else [])
        if seqs and seqs[0] == 1:
            seals[0] = GENESIS
        return pseudonymise([{**json.loads(event.body), "seq": event.seq,
                              "prev": seals.get(event.seq - 1), "hash": seals.get(event.seq)}
                             for event in stored], await self.log.erasures())

    async def verify(self, campaign_id: str) -> Verdict:
        """Recompute the whole chain, archived segments then the Redis tail, and compare with the
        stored seals, and the events found with the number the log counted before the check
        began. A segment must chain on from the one before, hash to its `last_hash`, and its
        file must be the one the manifest names: deleted, replaced, truncated or out of reach
        is a failure naming the segment."""
        appended = await self.log.last_seq(campaign_id)
        head = await self.log.chain_head(campaign_id)
        checker = ChainChecker(campaign_id, head.seq)
        segments = await self.archived.segments(campaign_id) if self.archived else []
        after = 0
        async with aclosing(self._ends(segments)) as ends:
            async for segment, end in ends:
                if not await self._check_segment(checker, segment, end):
                    return checker.finish(appended)
                after = segment.last_seq
        try:
            await self._check_tail(checker, campaign_id, after)
        except SegmentError as exc:  # the store reads archived seqs itself (no manifest here)
            checker.refuse(checker.expected, str(exc))
        return checker.finish(appended)

    async def _check_tail(self, checker: ChainChecker, campaign_id: str, after: int) -> None:
        while True:
            events = await self.log.read_events(campaign_id, after, BATCH)
            if not events:
                return
            seqs = [event.seq for event in events]
            # a few seals past the batch, so a swap across its edge is still told from a change
            beyond = range(seqs[-1] + 1, seqs[-1] + 9)
            seals = await self.log.read_seals(campaign_id, [*seqs, *beyond])
            if not self._tail_chains(checker, events, seals) and \
                    not checker.feed(events, seals):
                return
            after = events[-1].seq

    def _tail_chains(self, checker: ChainChecker, events: list[StoredEvent],
                     seals: dict[int, str]) -> bool:
        """A sealed batch of the tail checked by `chains`, if it has one; the checker moves past
        it only when every event chains. Anything else is left to the checker's own feed."""
        last = events[-1].seq
        if self.chains is None or checker.fault is not None or checker.unsealed or \
                last > checker.sealed_up_to or any(e.seq not in seals for e in events):
            return False
        end = self.chains.chained(checker.expected, checker.prev, [e.seq for e in events],
                                  [seals[e.seq] for e in events], [e.body for e in events])
        if end is None:
            return False
        checker.expected, checker.prev = last + 1, end
        return True

    async def _ends(self, segments: list[SegmentMeta]
                    ) -> AsyncGenerator[tuple[SegmentMeta, str | None], None]:
        if self.chains is None or not segments:  # one at a time, read here
            for segment in segments:
                yield segment, None
            return
        async with aclosing(self.chains.chain_ends(segments)) as ends:
            for segment in segments:
                yield segment, await anext(ends, None)

    async def _check_segment(self, checker: ChainChecker, segment: SegmentMeta,
                             end: str | None = None) -> bool:
        """Feed one archived segment, read from its file; False at the first fault. `end`: the
        hash its file was found to chain to from its manifest's `prev`, if known."""
        name = segment.name
        if segment.first_seq != checker.expected:
            return checker.refuse(checker.expected, f"segment {name} starts at seq "
                                  f"{segment.first_seq}: events {checker.expected}.."
                                  f"{segment.first_seq - 1} are in no segment (a gap)")
        if segment.prev != checker.prev:
            return checker.refuse(segment.first_seq, f"segment {name} does not chain from the "
                                  f"event before it (its prev {segment.prev[:16]}..., the "
                                  f"chain's {checker.prev[:16]}...)")
        if end is not None and end == segment.last_hash and _passes(checker, segment):
            checker.expected, checker.prev = segment.last_seq + 1, end
            return True
        try:
            events = await self._read(segment)
        except SegmentError as exc:
            return checker.refuse(segment.first_seq, str(exc))
        if not _chains(events, checker):  # the common case moves past it as fast as it hashes
            stored = [StoredEvent(event.seq, event.body) for event in events]
            if not checker.feed(stored, {event.seq: event.hash for event in events}):
                seq, reason = checker.fault or (segment.first_seq, "")
                return checker.refuse(seq, f"{reason} (in segment {name})")
        if checker.prev != segment.last_hash:
            return checker.refuse(segment.last_seq, f"segment {name} ends at hash "
                                  f"{checker.prev[:16]}..., the manifest says "
                                  f"{segment.last_hash[:16]}...")
        return True

    async def _read(self, segment: SegmentMeta) -> list[ArchivedEvent]:
        """The segment's events from its file, read afresh (never a cached copy)."""
        if self.files is None:
            raise SegmentError(f"segment {segment.name}: archived, and no archive is "
                               "configured to read it from (EXPERTLOOP_ARCHIVE)")
        return await asyncio.to_thread(self.files.read_segment, segment)


def _passes(checker: ChainChecker, segment: SegmentMeta) -> bool:
    """Whether the checker may move past a whole segment found to chain (sealed, no fault)."""
    return checker.fault is None and not checker.unsealed and \
        segment.last_seq <= checker.sealed_up_to


def _chains(events: list[ArchivedEvent], checker: ChainChecker) -> bool:
    """Whether a segment's events follow the checker's chain without a fault, each hashing
    (`chain_hash`, the chain's one definition) to its seal; if so, the checker moves past
    them. Any doubt returns False, and the checker's own feed then says where and why."""
    seq, prev = checker.expected, checker.prev
    if checker.fault is not None or checker.unsealed or seq + len(events) - 1 > \
            checker.sealed_up_to:
        return False
    for event in events:
        try:
            fields = json.loads(event.body)
        except ValueError:
            return False
        if event.seq != seq or not isinstance(fields, dict) or fields.keys() & CHAIN_FIELDS:
            return False
        try:
            prev = chain_hash(fields, seq, prev)
        except UnicodeEncodeError:  # a lone surrogate: the checker's feed says where
            return False
        if prev != event.hash:
            return False
        seq += 1
    checker.expected, checker.prev = seq, prev
    return True
