"""The plain reader of a campaign's history (the `History` port): the ledger's events in log
order, decoded one by one in Python. It is the reference the DuckDB reader
(adapters/history/duckdb.py) is checked against, and what reports use when none is wired."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from core.domain.campaigns import Campaign
from core.domain.items import Draft
from core.provenance.ledger import BATCH, Ledger
from core.provenance.segments import SegmentMeta
from core.reports.lines import Lined, LinePlan
from core.reports.records import ITEM_EVENTS, TaskRecord, task_records
from core.reports.tallies import Tallies
from core.reports.treatment import Made

if TYPE_CHECKING:
    from core.ports import History

SCAN_BATCH = 2000
TALLIED = ("adjudicated",)  # the decisions beside the experts' answers that tallies count


class PlainHistory:
    """Every read goes through the ledger (so erased experts show as their pseudonyms)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def task_records(self, campaign_id: str, *, with_items: bool = True,
                     also: tuple[str, ...] = ()) -> AsyncIterator[list[TaskRecord]]:
        return task_records(self.ledger, campaign_id, with_items=with_items, also=also)

    async def tallies(self, campaign: Campaign) -> Tallies:
        tallies = Tallies(campaign.spec.kind, campaign.spec.reading_chars_per_s)
        tallies.made = await drafts_made(self.ledger, campaign.id)
        async for batch in task_records(self.ledger, campaign.id, also=TALLIED):
            for record in batch:
                tallies.add(record)
        return tallies

    async def has_images(self, campaign_id: str) -> bool:
        """One read of the log, cut short at the first image: an image campaign's first item
        says so at once."""
        after = 0
        while events := await self.ledger.log.read_events(campaign_id, after, SCAN_BATCH):
            after = events[-1].seq
            for event in events:
                if '"sha256"' not in event.body:  # cheap: most events name no image
                    continue
                body = json.loads(event.body)
                if body.get("type") in ITEM_EVENTS and body["payload"]["item"].get("images"):
                    return True
        return False

    async def after_archived(self, campaign_id: str, segment: SegmentMeta) -> None:
        """Nothing is kept between reads here."""

    def writes_lines(self, campaign: Campaign, plan: LinePlan) -> bool:
        """Never: the reference builds every line from its records (core/reports/exports.py)."""
        return False

    async def lines(self, campaign: Campaign, plan: LinePlan) -> AsyncIterator[list[Lined]]:
        return
        yield


def history_of(ledger: Ledger, history: History | None) -> History:
    """The history a report reads: the one wired in, else the plain reader of `ledger`."""
    return PlainHistory(ledger) if history is None else history


async def drafts_made(ledger: Ledger, campaign_id: str) -> Counter[Made]:
    """Drafts given in `item_added` and drafted in `drafted`, by model, version and day."""
    made: Counter[Made] = Counter()
    after = 0
    while events := await ledger.events(campaign_id, after, BATCH):
        after = int(str(events[-1]["seq"]))
        for event in events:
            payload: Any = event.get("payload") or {}
            day = str(event.get("at", ""))[:10]
            if event["type"] == "drafted":
                made[_made(payload["draft"], day)] += 1
            elif event["type"] == "item_added":
                for draft in payload["item"].get("drafts", []):
                    made[_made(draft, day)] += 1
    return made


def _made(draft: dict[str, Any], day: str) -> Made:
    found = Draft.model_validate(draft)
    return found.model, found.model_version, day
