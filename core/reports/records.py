"""Task records: a campaign's log read in order as one record per finished task (answered,
skipped, flagged), each with its item fetched on demand. Reports and exports read only this,
and never hold the whole campaign: items come through a small cache, leases only while open
(and the latest expired ones, which an answer kept in time may still name)."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from core.domain.items import Item
from core.ports import Log
from core.provenance.ledger import Ledger

BATCH = 2000
ITEM_CACHE = 4096  # items answered close together in the log (overlap) are fetched once
FINISHED = ("answered", "skipped", "flagged")
DECIDED = ("answered", "adjudicated", "auto_accepted")  # a decision on an item, by anyone
LEASELESS = ("auto_accepted",)  # decided without an expert: no lease, the item named by id
ITEM_EVENTS = ("item_added", "item_ready")
EXPIRED_KEPT = 50_000  # a late answer follows its lease's expiry closely (an inbox's backlog)


class EventRef(NamedTuple):
    """Where a fact sits in the provenance log: its seq and chain hash (None until sealed)."""

    seq: int
    hash: str | None


class TaskRecord(NamedTuple):
    """One finished task. `payload` is the event's payload as recorded: the decision as shown,
    the shown `order`, `gold`, `channel`, `timing`, and `diff` for edits."""

    type: str
    expert: str
    lease: str
    item_id: str
    at: str
    payload: dict[str, Any]
    event: EventRef
    prev: str | None
    assigned: EventRef | None
    item_ref: EventRef | None
    item: Item | None
    late_rationale: str | None = None  # a line of why the expert sent after answering

    @property
    def decision(self) -> dict[str, Any]:
        found: dict[str, Any] = self.payload.get("decision") or {}
        return found

    @property
    def order(self) -> list[int]:
        return list(self.payload.get("order") or [])

    @property
    def decided_by(self) -> str:
        """Who made this decision: an expert, an adjudicator's final call, or the model alone.
        Exports say so on every row, so a model's output never passes as a human judgment."""
        return {"adjudicated": "adjudicator", "auto_accepted": "model"}.get(self.type, "expert")

    @property
    def rationale(self) -> str | None:
        found = self.payload.get("rationale")
        return self.late_rationale if found is None else str(found)

    @property
    def active_seconds(self) -> float:
        return float((self.payload.get("timing") or {}).get("active_seconds") or 0.0)


class OpenLease(NamedTuple):
    """What a finished task's lease led to: its `assigned` event and the seq of its item."""

    assigned: EventRef | None  # None for a decision made without a lease (the model's)
    item_seq: int


class _Leases:
    """The leases an answer may still name: open ones, and the latest expired ones."""

    def __init__(self, finished: tuple[str, ...] = FINISHED,
                 by_id: dict[str, int] | None = None) -> None:
        self.open: dict[str, OpenLease] = {}
        self.expired: OrderedDict[str, OpenLease] = OrderedDict()
        self.finished = finished
        self.by_id = by_id  # item id -> its item event's seq, for decisions without a lease

    def expire(self, lease: str) -> None:
        ended = self.open.pop(lease, None)
        if ended is not None:
            self.expired[lease] = ended
            if len(self.expired) > EXPIRED_KEPT:
                self.expired.popitem(last=False)

    def finish(self, lease: str) -> OpenLease | None:
        return self.open.pop(lease, None) or self.expired.pop(lease, None)


class _Items:
    """A bounded cache of items by the seq of the event that holds them as shown (`item_added`,
    or `item_ready` for an item the models drafted for)."""

    def __init__(self, log: Log, campaign_id: str) -> None:
        self.log = log
        self.campaign_id = campaign_id
        self.cache: OrderedDict[int, tuple[Item, EventRef]] = OrderedDict()

    async def fetch(self, seqs: set[int]) -> dict[int, tuple[Item, EventRef]]:
        missing = sorted(seq for seq in seqs if seq not in self.cache)
        if missing:
            events = await self.log.read_events_at(self.campaign_id, missing)
            seals = await self.log.read_seals(self.campaign_id, missing)
            for event in events:
                item = Item.model_validate(json.loads(event.body)["payload"]["item"])
                self.cache[event.seq] = (item, EventRef(event.seq, seals.get(event.seq)))
        found = {}
        for seq in seqs:
            if seq in self.cache:
                self.cache.move_to_end(seq)
                found[seq] = self.cache[seq]
        while len(self.cache) > max(ITEM_CACHE, len(seqs)):
            self.cache.popitem(last=False)
        return found


async def task_records(ledger: Ledger, campaign_id: str, *, with_items: bool = True,
                       batch: int = BATCH, also: tuple[str, ...] = ()
                       ) -> AsyncIterator[list[TaskRecord]]:
    """Finished tasks in log order, a batch at a time. The open leases map an answer to its
    `assigned` event and item; a lease leaves the map when it ends, so memory follows the
    number of tasks in flight, not the size of the campaign. `also`: more decisions to yield,
    `adjudicated` (an adjudicator's final call) and `auto_accepted` (the model's, which has no
    lease: its item is found by id, so this keeps one seq per item id while reading). A line
    of why sent after an answer joins its record (they are few, read once up front)."""
    items = _Items(ledger.log, campaign_id)
    late = await ledger.log.late_rationales(campaign_id)
    open_leases = _Leases(finished=FINISHED + tuple(t for t in also if t not in LEASELESS),
                          by_id={} if set(also) & set(LEASELESS) else None)
    after = 0
    while True:
        events = await ledger.events(campaign_id, after, batch)
        if not events:
            return
        after = int(str(events[-1]["seq"]))
        finished = _walk(events, open_leases)
        if not finished:
            continue
        wanted = {lease.item_seq for _, lease in finished if lease is not None}
        found = await items.fetch(wanted) if with_items else {}
        yield [record_of(event, lease, found, late) for event, lease in finished]


def _walk(events: list[dict[str, Any]], leases: _Leases
          ) -> list[tuple[dict[str, Any], OpenLease | None]]:
    finished: list[tuple[dict[str, Any], OpenLease | None]] = []
    for event in events:
        kind, lease = event["type"], event.get("lease")
        if kind == "assigned" and lease:
            leases.open[lease] = OpenLease(EventRef(event["seq"], event.get("hash")),
                                       int(event["payload"]["item_seq"]))
        elif kind in leases.finished and lease:
            finished.append((event, leases.finish(lease)))
        elif leases.by_id is not None and kind in ITEM_EVENTS and event.get("item"):
            leases.by_id.setdefault(str(event["item"]), int(str(event["seq"])))
        elif leases.by_id is not None and kind in LEASELESS:
            seq = leases.by_id.get(str(event.get("item")))
            finished.append((event, None if seq is None else OpenLease(None, seq)))
        elif kind == "lease_expired" and lease:
            leases.expire(lease)
        elif kind == "undeliverable" and lease:  # never shown, so never answered
            leases.open.pop(lease, None)
    return finished


def record_of(event: dict[str, Any], lease: OpenLease | None,
            items: dict[int, tuple[Item, EventRef]], late: dict[int, str]) -> TaskRecord:
    item, item_ref = items.get(lease.item_seq, (None, None)) if lease else (None, None)
    payload, expert = event.get("payload") or {}, event.get("expert") or event.get("actor_id")
    if event["type"] in LEASELESS:  # the model decided on one draft, shown to nobody
        payload = {**payload, "order": [int(payload.get("draft") or 0)], "model": expert}
        expert = ""  # never an expert's name on a model's decision
    return TaskRecord(
        type=event["type"], expert=expert or "",
        lease=event.get("lease") or "", item_id=event.get("item") or "", at=event.get("at", ""),
        payload=payload, event=EventRef(event["seq"], event.get("hash")),
        prev=event.get("prev"), assigned=lease.assigned if lease else None,
        item_ref=item_ref, item=item, late_rationale=late.get(event["seq"]))
