"""Moving each campaign's sealed history out of Redis: events older than the hot tail go into
immutable segment files (the `SegmentFiles` port), and only once a file is written and read
back are they trimmed from Redis (the `Archived` role), so Redis keeps live state and the tail.

Each step can die at any point and the next run finishes the job: a file written but not yet
trimmed is found at its name and kept (LocalSegmentFiles keeps a file that holds exactly the
segment), and trim_archived refuses a segment that does not follow the last archived one.
So two workers archiving one campaign at once are harmless: the slower one's trim changes
nothing. The worker still takes a turn per campaign (`archive:<id>`) so they rarely do the work
twice."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from pydantic import BaseModel, Field

from core.ports import Archived, Clock, HeldItem, History, Log, SegmentFiles
from core.provenance.events import GENESIS
from core.provenance.segments import ArchivedEvent, SegmentMeta, segment_name

READ_BATCH = 2000
# Events whose body is an item, which a lease reads by seq while the item is live.
ITEM_EVENTS = ("item_added", "item_ready", "qualification_item_added")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ArchiveSettings(BaseModel):
    """EXPERTLOOP_SEGMENT_EVENTS, EXPERTLOOP_SEGMENT_SECONDS, EXPERTLOOP_HOT_TAIL_EVENTS."""

    segment_events: int = Field(default=100_000, gt=0)
    segment_seconds: float = Field(default=3600.0, gt=0)
    hot_tail: int = Field(default=10_000, ge=0)


class Segment(NamedTuple):
    """A segment due for the archive: its meta, its events with their seals, and which of them
    hold an item."""

    meta: SegmentMeta
    events: list[ArchivedEvent]
    items: list[HeldItem]


class Archiver:
    """Per campaign: `archive` runs the three steps (`next_segment`, `write`, `trim`) while a
    segment is due, then hands each archived segment to `history` (History.after_archived:
    the reports' tallies of it are kept once, beside it)."""

    def __init__(self, log: Log, archived: Archived, files: SegmentFiles, clock: Clock,
                 settings: ArchiveSettings, *, history: History | None = None) -> None:
        self.log = log
        self.archived = archived
        self.files = files
        self.clock = clock
        self.settings = settings
        self.history = history

    async def archive(self, campaign_id: str, stop: asyncio.Event | None = None
                      ) -> list[SegmentMeta]:
        """Archive every segment due now, or until `stop` is set (checked between segments, as
        one may take seconds); the segments archived, in order."""
        done: list[SegmentMeta] = []
        while not (stop and stop.is_set()) and (
                segment := await self.next_segment(campaign_id)) is not None:
            written = await self.write(segment)
            if not await self.trim(campaign_id, segment, written):
                break  # another worker archived it meanwhile, or the log changed under us
            done.append(written)
            if self.history is not None:
                await self.history.after_archived(campaign_id, written)
        return done

    async def next_segment(self, campaign_id: str) -> Segment | None:
        """The next segment due: at least `segment_events` sealed events older than the hot
        tail (taking that many), or fewer whose oldest is `segment_seconds` old (taking them
        all); None while neither holds."""
        segments = await self.archived.segments(campaign_id)
        after = segments[-1].last_seq if segments else 0
        head = await self.log.chain_head(campaign_id)
        newest = await self.log.last_seq(campaign_id)
        due = min(head.seq, newest - self.settings.hot_tail) - after
        if due <= 0:
            return None
        if due < self.settings.segment_events and not await self._aged(campaign_id, after):
            return None
        events = await self._sealed(campaign_id, after, min(due, self.settings.segment_events))
        if not events:
            return None
        prev = segments[-1].last_hash if segments else GENESIS
        return Segment(self._meta(campaign_id, events, prev), events, held_items(events))

    async def write(self, segment: Segment) -> SegmentMeta:
        """The file, written, fsynced and read back (in a thread: the port blocks)."""
        return await asyncio.to_thread(self.files.write_segment, segment.meta, segment.events)

    async def trim(self, campaign_id: str, segment: Segment, written: SegmentMeta) -> bool:
        return await self.archived.trim_archived(campaign_id, written, segment.items)

    async def _aged(self, campaign_id: str, after: int) -> bool:
        oldest = await self.log.read_events(campaign_id, after, 1)
        if not oldest:
            return False
        at = json.loads(oldest[0].body).get("at")
        age_ms = self.clock.now_ms() - ms_of(at) if isinstance(at, str) else 0
        return age_ms >= self.settings.segment_seconds * 1000

    async def _sealed(self, campaign_id: str, after: int, count: int) -> list[ArchivedEvent]:
        """Up to `count` events after `after` with their seals, stopping at a gap or a seal
        not (yet) there: a segment is contiguous and sealed throughout."""
        events: list[ArchivedEvent] = []
        while len(events) < count:
            last = events[-1].seq if events else after
            batch = await self.log.read_events(campaign_id, last, min(READ_BATCH,
                                                                      count - len(events)))
            seals = await self.log.read_seals(campaign_id, [event.seq for event in batch])
            for stored in batch:
                if stored.seq != last + 1 or stored.seq not in seals:
                    return events
                events.append(ArchivedEvent(seq=stored.seq, hash=seals[stored.seq],
                                            body=stored.body))
                last = stored.seq
            if not batch:
                return events
        return events

    def _meta(self, campaign_id: str, events: list[ArchivedEvent], prev: str) -> SegmentMeta:
        first, last = events[0], events[-1]
        return SegmentMeta(campaign=campaign_id, name=segment_name(first.seq, last.seq),
                           first_seq=first.seq, last_seq=last.seq, prev=prev,
                           last_hash=last.hash, events=len(events),
                           archived_at=self.clock.now_ms())


def held_items(events: list[ArchivedEvent]) -> list[HeldItem]:
    """The events that hold an item; the text test skips parsing the rest."""
    held: list[HeldItem] = []
    for event in events:
        if not any(f'"{kind}"' in event.body for kind in ITEM_EVENTS):
            continue
        fields = json.loads(event.body)
        if fields.get("type") in ITEM_EVENTS and isinstance(fields.get("item"), str):
            held.append(HeldItem(event.seq, fields["item"]))
    return held


def ms_of(at: str) -> int:
    """An event's `at` (core.provenance.events.iso_ms) as epoch milliseconds."""
    return (datetime.fromisoformat(at) - EPOCH) // timedelta(milliseconds=1)
