"""The `History` port on DuckDB: reports read a campaign's archived segments as columns, straight
over their Parquet files (in-process, no extension loaded or downloaded: json and parquet are
built in), plus the Redis tail (the events after the last archived seq, through the `Log`
role). Finished tasks come back as the plain reader's `TaskRecord`s (core/reports/records.py),
built from Arrow batches: the joins are SQL, and Python decodes one payload per finished task
and one item per item, never the other events.

The tallies of the tasks finishing in the archived segments (core/reports/tallies.py: the sums
behind quality, pay, the models report and the dashboard) are computed once, as each segment is
archived (`after_archived`) or when first asked for, and kept beside the newest segment as
`<segment>.panel.json` (the one before keeps its own, in case); a report reads that one file and
adds the tail's. Erased experts show as their pseudonyms: records through
core/privacy/pseudonyms.py as the ledger shows events, kept tallies renamed when read.

A pairwise campaign's trail and preference lines are written by DuckDB itself (lines.py).
Reports trust the segment files as the manifest lists them; `provenance verify` is what checks
each file against its SHA-256 and the chain."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from adapters.history.files import PanelFiles
from adapters.history.lines import line_reader, lined, writes
from adapters.history.scan import Scan, tail_table
from core.domain.campaigns import Campaign
from core.domain.items import Item
from core.ports import Archived, Campaigns, Log
from core.privacy.pseudonyms import Erasures, digest, pseudonymise
from core.provenance.segments import SegmentError, SegmentMeta
from core.reports.exports import ALSO as EXPORTED
from core.reports.history import TALLIED
from core.reports.lines import Lined, LinePlan
from core.reports.records import LEASELESS, EventRef, OpenLease, TaskRecord, record_of
from core.reports.tallies import Tallies

logger = logging.getLogger(__name__)
TAIL_BATCH = 10_000
ITEMS_KEPT = 16_384  # decoded items: a campaign's answers to one item come close together
CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoload_known_extensions": False, "autoinstall_known_extensions": False}


class Snapshot(NamedTuple):
    """A campaign's history at one moment: its segments, then the tail after the last."""

    segments: list[SegmentMeta]
    files: list[str]
    tail: pa.Table
    erasures: Erasures
    late: dict[int, str]

    @property
    def archived_upto(self) -> int:
        return self.segments[-1].last_seq if self.segments else 0


class DuckHistory:
    """Built from the roles it reads and the archive's location (a directory or an fsspec
    URL, as EXPERTLOOP_ARCHIVE); DuckDB opens on first use."""

    def __init__(self, log: Log, archived: Archived, campaigns: Campaigns,
                 location: str) -> None:
        self.log, self.archived, self.campaigns = log, archived, campaigns
        self.files = PanelFiles(location)
        self._db: duckdb.DuckDBPyConnection | None = None
        self._kept: tuple[str, Snapshot] | None = None  # has_images's, for the read after it

    async def task_records(self, campaign_id: str, *, with_items: bool = True,
                           also: tuple[str, ...] = ()) -> AsyncIterator[list[TaskRecord]]:
        snapshot = await self._snapshot(campaign_id)
        scan = await asyncio.to_thread(self._scan, snapshot, also)
        try:
            async for batch in self._records(scan, snapshot, 0, None, with_items):
                yield batch
        finally:
            scan.close()

    async def tallies(self, campaign: Campaign) -> Tallies:
        """The tallies kept with the last archived segment (computed now if missing), plus
        the tail's."""
        snapshot = await self._snapshot(campaign.id)
        total = await self._archived(campaign, snapshot)
        scan = await asyncio.to_thread(self._scan, snapshot, TALLIED, snapshot.archived_upto)
        try:
            total.merge(await self._range(campaign, scan, snapshot, snapshot.archived_upto,
                                          None))
        finally:
            scan.close()
        return _pseudonymised(total, snapshot.erasures)

    async def has_images(self, campaign_id: str) -> bool:
        """The tail read here is kept for the next read (an export asks this, then reads the
        lines): that read adds only what came after it."""
        snapshot = await self._snapshot(campaign_id)
        scan = await asyncio.to_thread(self._scan, snapshot, ())
        try:
            found = await asyncio.to_thread(scan.has_images)
        finally:
            scan.close()
        self._kept = (campaign_id, snapshot)
        return found

    async def after_archived(self, campaign_id: str, segment: SegmentMeta) -> None:
        """Keep the tallies up to this segment, and up to any before it that has none yet
        (a crash, or an archiver without a history, left them out)."""
        campaign = await self.campaigns.load_campaign(campaign_id)
        if campaign is None:
            return
        try:
            await self._archived(campaign, await self._snapshot(campaign_id, tail=False))
        except (duckdb.Error, OSError, SegmentError) as exc:  # a cache: never stop archiving
            logger.warning("campaign %s: tallies up to %s not kept (the next report computes "
                        "them): %s", campaign_id, segment.name, exc)

    def writes_lines(self, campaign: Campaign, plan: LinePlan) -> bool:
        return writes(campaign, plan)

    async def lines(self, campaign: Campaign, plan: LinePlan) -> AsyncIterator[list[Lined]]:
        snapshot = await self._snapshot(campaign.id)
        scan = await asyncio.to_thread(self._scan, snapshot, EXPORTED)
        try:
            if plan.format == "trail" and plan.fast_below is None and plan.fast_share:
                median = await asyncio.to_thread(scan.median_answer)
                plan = plan._replace(fast_below=None if median is None
                                     else median * plan.fast_share)
            reader = await asyncio.to_thread(line_reader, scan, plan, campaign,
                                             snapshot.erasures, snapshot.late)
            while (batch := await asyncio.to_thread(_next_lines, reader)) is not None:
                yield batch
        finally:
            scan.close()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._db is None:
            self._db = duckdb.connect(config=CONFIG)
            for filesystem in self.files.filesystems():
                self._db.register_filesystem(filesystem)
        return self._db

    def _scan(self, snapshot: Snapshot, also: tuple[str, ...], after: int = 0) -> Scan:
        return Scan(self._connection(), snapshot.files, snapshot.tail, also, after)

    async def _snapshot(self, campaign_id: str, *, tail: bool = True) -> Snapshot:
        """The manifest first, then the tail after it: a segment archived in between is read
        from Redis all the same (the Log serves archived seqs from the files)."""
        kept, self._kept = self._kept, None
        segments = await self.archived.segments(campaign_id)
        table = _reusable(kept, campaign_id, segments) if tail else None
        after = segments[-1].last_seq if segments else 0
        if table is not None and table.num_rows:
            after = table.column("seq")[-1].as_py()
        read = await self._tail(campaign_id, after) if tail else tail_table([], [], [])
        return Snapshot(segments, [self.files.segment_path(s) for s in segments],
                        read if table is None else pa.concat_tables([table, read]),
                        await self.log.erasures(),
                        await self.log.late_rationales(campaign_id) if tail else {})

    async def _tail(self, campaign_id: str, after: int) -> pa.Table:
        """The log's events after `after`, with their seals."""
        seqs: list[int] = []
        hashes: list[str | None] = []
        bodies: list[str] = []
        while events := await self.log.read_events(campaign_id, after, TAIL_BATCH):
            seals = await self.log.read_seals(campaign_id, [event.seq for event in events])
            for event in events:
                seqs.append(event.seq)
                hashes.append(seals.get(event.seq))
                bodies.append(event.body)
            after = events[-1].seq
        return tail_table(seqs, hashes, bodies)

    async def _records(self, scan: Scan, snapshot: Snapshot, after: int, upto: int | None,
                       with_items: bool) -> AsyncIterator[list[TaskRecord]]:
        reader = await asyncio.to_thread(scan.records, after, upto, with_items)
        build = Records(snapshot.erasures, snapshot.late)
        while (batch := await asyncio.to_thread(_next, reader, build)) is not None:
            if batch:
                yield batch

    async def _range(self, campaign: Campaign, scan: Scan, snapshot: Snapshot, after: int,
                     upto: int | None) -> Tallies:
        """The tallies of the tasks finishing (and the drafts made) in (after, upto]."""
        tallies = Tallies(campaign.spec.kind, campaign.spec.reading_chars_per_s)
        tallies.made = await asyncio.to_thread(scan.made, after, upto)
        async for batch in self._records(scan, snapshot, after, upto, True):
            for record in batch:
                tallies.add(record)
        return tallies

    async def _archived(self, campaign: Campaign, snapshot: Snapshot) -> Tallies:
        """The tallies of every task finishing in an archived segment, kept beside the last
        one (`<segment>.panel.json`), so a report reads one file. Missing, they are computed on
        from the last segment that has them and kept with the newest; older files but the one
        before go (each holds all before it: keeping them all would grow as segments squared)."""
        segments = snapshot.segments
        start, total = len(segments), None
        while start > 0 and (total := await self._kept_tallies(campaign, segments[start - 1])
                             ) is None:
            start -= 1
        total = total or Tallies(campaign.spec.kind, campaign.spec.reading_chars_per_s)
        if start == len(segments):
            return total
        after = segments[start - 1].last_seq if start else 0
        scan = await asyncio.to_thread(self._scan, snapshot, TALLIED, after)
        try:
            total.merge(await self._range(campaign, scan, snapshot, after, segments[-1].last_seq))
        finally:
            scan.close()
        await asyncio.to_thread(self.files.write_panel, segments[-1], total.to_json())
        for older in segments[:-2]:
            await asyncio.to_thread(self.files.remove_panel, older)
        return total

    async def _kept_tallies(self, campaign: Campaign, segment: SegmentMeta) -> Tallies | None:
        text = await asyncio.to_thread(self.files.read_panel, segment)
        if text is None:
            return None
        try:
            return Tallies.load(text, campaign.spec.kind, campaign.spec.reading_chars_per_s)
        except (ValueError, KeyError, TypeError):
            return None  # kept by another version, or for another spec: computed again


class Records:
    """Arrow batches of finishing events into TaskRecords, through the plain reader's own
    `record_of`; items decoded once each and kept while answers to them keep coming."""

    def __init__(self, erasures: Erasures, late: dict[int, str]) -> None:
        self.erasures, self.late = erasures, late
        self.items: OrderedDict[int, tuple[Item, EventRef]] = OrderedDict()

    def build(self, batch: pa.RecordBatch) -> list[TaskRecord]:
        columns = {name: batch.column(name).to_pylist() for name in batch.schema.names
                   if name != "item_json"}
        item_json = batch.column("item_json") if "item_json" in batch.schema.names else None
        events, leases = [], []
        found: dict[int, tuple[Item, EventRef]] = {}
        for row in range(batch.num_rows):
            events.append(_event(columns, row))
            lease = _lease(columns, row)
            leases.append(lease)
            if lease is not None and lease.item_seq is not None and item_json is not None:
                self._item(found, lease.item_seq, columns["item_hash"][row], item_json, row)
        events = pseudonymise(events, self.erasures)
        return [record_of(event, lease, found, self.late)
                for event, lease in zip(events, leases, strict=True)]

    def _item(self, found: dict[int, tuple[Item, EventRef]], seq: int, hash_: str | None,
              item_json: pa.Array, row: int) -> None:
        if seq in found:
            return
        kept = self.items.get(seq)
        if kept is None:
            text = item_json[row].as_py()
            if text is None:
                return  # no item event at that seq: the record has no item, as in the plain one
            kept = (Item.model_validate_json(text), EventRef(seq, hash_))
            self.items[seq] = kept
            while len(self.items) > ITEMS_KEPT:
                self.items.popitem(last=False)
        else:
            self.items.move_to_end(seq)
        found[seq] = kept


def _event(columns: dict[str, list[Any]], row: int) -> dict[str, Any]:
    """The finishing event as the ledger shows it (core.provenance.ledger.Ledger.events)."""
    event: dict[str, Any] = {"seq": columns["seq"][row], "hash": columns["hash"][row],
                             "prev": columns["prev"][row], "type": columns["type"][row]}
    for name in ("expert", "actor_id", "lease", "item", "at"):
        if (value := columns[name][row]) is not None:
            event[name] = value
    payload = columns["payload"][row]
    if payload is not None:
        event["payload"] = json.loads(payload)
    return event


def _lease(columns: dict[str, list[Any]], row: int) -> OpenLease | None:
    item_seq = columns["item_seq"][row]
    if columns["type"][row] in LEASELESS:
        return None if item_seq is None else OpenLease(None, item_seq)
    if columns["a_seq"][row] is None:
        return None
    return OpenLease(EventRef(columns["a_seq"][row], columns["a_hash"][row]), item_seq)


def _next(reader: pa.RecordBatchReader, build: Records) -> list[TaskRecord] | None:
    try:
        batch = reader.read_next_batch()
    except StopIteration:
        return None
    return build.build(batch)


def _next_lines(reader: pa.RecordBatchReader) -> list[Lined] | None:
    try:
        return lined(reader.read_next_batch())
    except StopIteration:
        return None


def _reusable(kept: tuple[str, Snapshot] | None, campaign_id: str,
              segments: list[SegmentMeta]) -> pa.Table | None:
    """The kept tail, if it is still the start of this campaign's tail: no segment archived
    since (a trim and its manifest entry are one step) and every event in it sealed (events
    never change once appended; a seal is added once)."""
    if kept is None or kept[0] != campaign_id or kept[1].segments != segments:
        return None
    table = kept[1].tail
    return table if table.column("hash").null_count == 0 else None


def _pseudonymised(tallies: Tallies, erasures: Erasures) -> Tallies:
    """Tallies kept before an expert was erased name them: shown under the pseudonym."""
    if not erasures.experts:
        return tallies
    rename: Callable[[str], str] = lambda name: erasures.experts.get(digest(name), name)  # noqa: E731
    return tallies.renamed(rename)
