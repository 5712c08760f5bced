"""The Log role on Redis: a campaign's events in a stream, their seals in a hash, the head, and
the pseudonyms of erased experts the log is shown through. With the Archived role: sealed
segments that left the stream for the archive's files (the manifest), read back as one log."""

from __future__ import annotations

import asyncio
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.asyncio import Redis

from adapters.redis import keys as k
from adapters.redis.lua import OnRedis, Scripts
from core.ports import HeldItem, LastCheckpoint, SegmentFiles
from core.privacy.pseudonyms import Erasures
from core.provenance.chain import START, ChainHead, Seal, StoredEvent
from core.provenance.segments import SegmentError, SegmentMeta

SEGMENTS_KEPT = 3  # decoded segments per process: files are immutable, so a copy never goes stale


class Decoded(NamedTuple):
    """A segment's events by position: seq `first_seq + i` is at `i`."""

    first_seq: int
    hashes: list[str]
    bodies: list[str]


class RedisLog(OnRedis):
    """Events are appended by the Lua scripts that change state; reads are plain commands. A
    seq at or below the last archived one is served from its segment file through `files`."""

    def __init__(self, client: Redis, scripts: Scripts | None = None,
                 files: SegmentFiles | None = None) -> None:
        super().__init__(client, scripts)
        self.files = files
        self._decoded: OrderedDict[tuple[str, str, str], Decoded] = OrderedDict()
        self._archived_upto: dict[str, int] = {}  # per campaign; only ever grows, like the archive

    async def append_event(self, campaign_id: str, event_body: str) -> int:
        return int(await self._run("append", campaign_id, [event_body]))

    async def add_rationale(self, campaign_id: str, answer_seq: int, rationale: str,
                            event_body: str) -> bool:
        return bool(await self._run("add_rationale", campaign_id,
                                    [answer_seq, rationale, event_body]))

    async def late_rationales(self, campaign_id: str) -> dict[int, str]:
        found = await self.client.hgetall(k.campaign_key(campaign_id, "rationales"))
        return {int(seq): str(text) for seq, text in found.items()}

    async def read_events(self, campaign_id: str, after: int, count: int) -> list[StoredEvent]:
        """The stream alone while it holds `after + 1` (the usual case: one XRANGE); the
        manifest and the segment files for what was archived."""
        tail = None
        if after >= self._archived_upto.get(campaign_id, 0):
            tail = await self._stream(campaign_id, after, count)
            if tail and tail[0].seq == after + 1:
                return tail
        # Read after the stream: a trim in between only moves more seqs to the files, which
        # hold the same events, so `tail` still starts at or before the manifest's end + 1.
        metas = await self._manifest(campaign_id, after + 1)
        if not metas:
            return tail if tail is not None else await self._stream(campaign_id, after, count)
        archived = await self._archived(campaign_id, metas, range(after + 1, after + count + 1))
        upto = metas[-1].last_seq
        if len(archived) >= count:
            return archived[:count]
        if tail is None:
            tail = await self._stream(campaign_id, upto, count - len(archived))
        rest = [event for event in tail if event.seq > upto]
        if rest and rest[0].seq != upto + 1:  # archived meanwhile: the next read gets them
            rest = []
        return (archived + rest)[:count]

    async def read_events_at(self, campaign_id: str, seqs: list[int]) -> list[StoredEvent]:
        log = k.campaign_key(campaign_id, "log")
        async with self.client.pipeline(transaction=False) as pipe:
            for seq in seqs:
                pipe.xrange(log, min=f"0-{seq}", max=f"0-{seq}", count=1)
            found = await pipe.execute()
        bodies = {seq: entries[0][1]["e"] for seq, entries in zip(seqs, found, strict=True)
                  if entries}
        missing = sorted(seq for seq in set(seqs) - bodies.keys() if seq > 0)
        if missing and (metas := await self._manifest(campaign_id, missing[0])):
            archived = await self._archived(campaign_id, metas, missing)
            bodies |= {event.seq: event.body for event in archived}
        return [StoredEvent(seq, bodies[seq]) for seq in seqs if seq in bodies]

    async def chain_head(self, campaign_id: str) -> ChainHead:
        raw = await self.client.get(k.campaign_key(campaign_id, "head"))
        if not raw:
            return START
        seq, digest = raw.split(" ")
        return ChainHead(int(seq), digest)

    async def last_seq(self, campaign_id: str) -> int:
        return int(await self.client.get(k.campaign_key(campaign_id, "seq")) or 0)

    async def save_seals(self, campaign_id: str, seals: list[Seal]) -> None:
        if not seals:
            return
        args: list[Any] = [seals[-1].seq, seals[-1].hash]
        for seal in seals:
            args += [seal.seq, seal.hash]
        await self._run("seal", campaign_id, args)

    async def read_seals(self, campaign_id: str, seqs: list[int]) -> dict[int, str]:
        if not seqs:
            return {}
        found = await self.client.hmget(k.campaign_key(campaign_id, "hashes"), seqs)
        seals = {seq: str(h) for seq, h in zip(seqs, found, strict=True) if h}
        missing = sorted(seq for seq in set(seqs) - seals.keys() if seq > 0)
        if missing and (metas := await self._manifest(campaign_id, missing[0])):
            for decoded, wanted in await self._covering(campaign_id, metas, missing):
                seals |= {seq: decoded.hashes[seq - decoded.first_seq] for seq in wanted}
        return seals

    async def erasures(self) -> Erasures:
        found = await self.client.hgetall(k.ERASED)
        return Erasures({f[2:]: str(p) for f, p in found.items() if f.startswith("e:")},
                        {f[2:]: str(p) for f, p in found.items() if f.startswith("h:")})

    async def save_checkpoint(self, campaign_id: str, last: LastCheckpoint) -> None:
        """Only ever forward: a slower worker's older checkpoint does not move it back."""
        key = k.campaign_key(campaign_id, "checkpoint")
        await self.client.eval(KEEP_LARGER, 1, key, last.size, last.at)

    async def last_checkpoint(self, campaign_id: str) -> LastCheckpoint | None:
        raw = await self.client.get(k.campaign_key(campaign_id, "checkpoint"))
        if not raw:
            return None
        size, at = raw.split(" ")
        return LastCheckpoint(int(size), int(at))

    # The Archived role.

    async def segments(self, campaign_id: str) -> list[SegmentMeta]:
        return _metas(await self.client.zrange(k.segments_key(campaign_id), 0, -1))

    async def trim_archived(self, campaign_id: str, segment: SegmentMeta,
                            items: Sequence[HeldItem] = ()) -> bool:
        args: list[Any] = [segment.model_dump_json(), segment.first_seq, segment.last_seq,
                           segment.prev, segment.last_hash]
        for held in items:
            args += [held.seq, held.item]
        return bool(await self._run("trim_archived", campaign_id, args))

    async def _stream(self, campaign_id: str, after: int, count: int) -> list[StoredEvent]:
        entries = await self.client.xrange(k.campaign_key(campaign_id, "log"),
                                           min=f"0-{after + 1}", max="+", count=count)
        return [StoredEvent(int(entry_id.split("-")[1]), fields["e"])
                for entry_id, fields in entries]

    async def _manifest(self, campaign_id: str, first_seq: int) -> list[SegmentMeta]:
        """The segments holding `first_seq` or later; notes how far the archive reaches, so a
        scan of archived seqs goes to the files without reading the stream first."""
        metas = _metas(await self.client.zrangebyscore(k.segments_key(campaign_id), first_seq,
                                                       "+inf"))
        if metas:
            known = self._archived_upto.get(campaign_id, 0)
            self._archived_upto[campaign_id] = max(known, metas[-1].last_seq)
        return metas

    async def _archived(self, campaign_id: str, metas: list[SegmentMeta],
                        seqs: Sequence[int]) -> list[StoredEvent]:
        """The events at `seqs` (ascending) that the segments hold, in seq order."""
        return [StoredEvent(seq, decoded.bodies[seq - decoded.first_seq])
                for decoded, wanted in await self._covering(campaign_id, metas, seqs)
                for seq in wanted]

    async def _covering(self, campaign_id: str, metas: list[SegmentMeta],
                        seqs: Sequence[int]) -> list[tuple[Decoded, Sequence[int]]]:
        """Each segment holding some of `seqs` (ascending), decoded, with the seqs it holds."""
        found = []
        for meta in metas:
            wanted = seqs[bisect_left(seqs, meta.first_seq):bisect_right(seqs, meta.last_seq)]
            if wanted:
                found.append((await self._segment(campaign_id, meta), wanted))
        return found

    async def _segment(self, campaign_id: str, meta: SegmentMeta) -> Decoded:
        key = (campaign_id, meta.name, meta.sha256)
        decoded = self._decoded.get(key)
        if decoded is not None:
            self._decoded.move_to_end(key)
            return decoded
        if self.files is None:
            raise SegmentError(f"segment {meta.name}: archived, and no archive is configured "
                               "to read it from (EXPERTLOOP_ARCHIVE)")
        events = await asyncio.to_thread(self.files.read_segment, meta)
        if [event.seq for event in events] != list(range(meta.first_seq, meta.last_seq + 1)):
            raise SegmentError(f"segment {meta.name}: its seqs are not {meta.first_seq}.."
                               f"{meta.last_seq} in order")
        decoded = Decoded(meta.first_seq, [e.hash for e in events], [e.body for e in events])
        self._decoded[key] = decoded
        while len(self._decoded) > SEGMENTS_KEPT:
            self._decoded.popitem(last=False)
        return decoded


def _metas(manifest: list[str]) -> list[SegmentMeta]:
    return [SegmentMeta.model_validate_json(raw) for raw in manifest]


KEEP_LARGER = """
local old = redis.call('GET', KEYS[1])
if old and tonumber(string.match(old, '^%d+')) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2])
return 1
"""
