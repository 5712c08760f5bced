"""How experts treat each model's drafts: per model and version, over the campaign and per UTC
day, the drafts made, shown and decided; accepted as is, edited (and by how much), overridden,
none acceptable, flagged; wins, losses and ties against each other model; the median time to
decide; and per expert, acceptances made faster than the draft could be read. That last one is
a signal for a coordinator to look at beside the fast answers, never a penalty.

Shown counts finished tasks (answered, skipped, flagged) that showed the draft: the record of a
task that expired unanswered does not say whether the expert ever saw it."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import BaseModel
from rapidfuzz.distance import Levenshtein

from core.domain.campaigns import Campaign
from core.domain.items import Draft
from core.domain.kinds import Kind
from core.provenance.ledger import BATCH, Ledger
from core.reports.audit import AutoAcceptAudit, auto_accept_audit
from core.reports.judgments import model_matches, model_name
from core.reports.records import TaskRecord, task_records

EDIT_EDGES = (0.1, 0.25, 0.5, 0.75, 1.0)  # upper edges of the edit-size histogram's buckets
COUNTS = ("made", "shown", "decided", "accepted", "edited", "overridden", "none_acceptable",
          "flagged")


class EditBucket(BaseModel):
    """Edits whose ratio is above `low` and at most `high`."""

    low: float
    high: float
    count: int


class EditSizes(BaseModel):
    """The distribution of `edit_ratio` over edits: quartiles (inclusive method, as numpy's
    default) and a histogram, since a mean hides whether edits are touch-ups or rewrites."""

    count: int = 0
    mean: float | None = None
    quartiles: list[float] = []  # first quartile, median, third quartile
    histogram: list[EditBucket] = []


class Treatment(BaseModel):
    made: int = 0
    shown: int = 0
    decided: int = 0
    accepted: int = 0
    edited: int = 0
    overridden: int = 0
    none_acceptable: int = 0
    flagged: int = 0
    acceptance_rate: float | None = None  # accepted / decided
    edit_ratio: EditSizes = EditSizes()
    median_decide_seconds: float | None = None


class DayTreatment(Treatment):
    day: str  # YYYY-MM-DD, UTC: the answer's day (a draft's own day for `made`)


class Versus(BaseModel):
    model: str
    wins: int = 0
    losses: int = 0
    ties: int = 0


class ModelTreatment(Treatment):
    name: str  # model@version, as the quality report's leaderboard names it
    model: str
    model_version: str
    versus: list[Versus] = []
    days: list[DayTreatment] = []


class RubberStamps(BaseModel):
    expert: str
    acceptances: int = 0
    unread: int = 0  # acceptances faster than the draft's characters / reading_chars_per_s


class ModelsReport(BaseModel):
    campaign: str
    kind: Kind
    reading_chars_per_s: float
    models: list[ModelTreatment] = []
    experts: list[RubberStamps] = []
    audit: AutoAcceptAudit | None = None  # auto-accept's threshold and its audit's overrides


class Edit(NamedTuple):
    """What a correct or verify answer did to the one draft it showed."""

    draft: Draft
    accepted: bool
    overridden: bool
    ratio: float | None  # for a text that differs from the draft


def edit_ratio(draft: str, final: str) -> float:
    """Levenshtein distance over the draft's length in characters, capped at 1."""
    if not draft:
        return 1.0 if final else 0.0
    return min(1.0, Levenshtein.distance(draft, final) / len(draft))


def edit_of(record: TaskRecord) -> Edit | None:
    """Accepted as is: a verify accept, or a correct whose text is the draft's. Edited: a
    correct, or an override with text, whose text differs. None for every other answer."""
    decision = record.decision
    kind = decision.get("type")
    if record.type != "answered" or kind not in ("correct", "verify") or record.item is None \
            or not record.order:
        return None
    draft = record.item.drafts[record.order[0]]
    overridden = kind == "verify" and decision.get("verdict") == "override"
    text = decision.get("text")
    if kind == "verify" and not overridden:
        return Edit(draft, True, False, None)
    if text is None or str(text) == draft.text:
        return Edit(draft, text is not None and not overridden, overridden, None)
    return Edit(draft, False, overridden, edit_ratio(draft.text, str(text)))


def unread_acceptance(record: TaskRecord, chars_per_s: float) -> bool | None:
    """For an acceptance, whether it came faster than the draft could be read; else None."""
    edit = edit_of(record)
    if edit is None or not edit.accepted:
        return None
    return record.active_seconds < len(edit.draft.text) / chars_per_s


@dataclass
class _Counts:
    counts: Counter[str] = field(default_factory=Counter)
    ratios: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def treatment(self) -> dict[str, Any]:
        decided = self.counts["decided"]
        return {**{name: self.counts[name] for name in COUNTS},
                "acceptance_rate": self.counts["accepted"] / decided if decided else None,
                "edit_ratio": edit_sizes(self.ratios),
                "median_decide_seconds": statistics.median(self.seconds)
                if self.seconds else None}


@dataclass
class _Model:
    draft: Draft
    total: _Counts = field(default_factory=_Counts)
    days: defaultdict[str, _Counts] = field(default_factory=lambda: defaultdict(_Counts))
    versus: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def both(self, day: str) -> tuple[_Counts, _Counts]:
        return self.total, self.days[day]

    def report(self) -> ModelTreatment:
        return ModelTreatment(
            name=model_name(self.draft), model=self.draft.model,
            model_version=self.draft.model_version, **self.total.treatment(),
            versus=[Versus(model=other, wins=c["wins"], losses=c["losses"], ties=c["ties"])
                    for other, c in sorted(self.versus.items())],
            days=[DayTreatment(day=day, **counts.treatment())
                  for day, counts in sorted(self.days.items())])


class _Tally:
    def __init__(self, chars_per_s: float) -> None:
        self.chars_per_s = chars_per_s
        self.models: dict[str, _Model] = {}
        self.experts: dict[str, RubberStamps] = {}

    def model(self, draft: Draft) -> _Model:
        return self.models.setdefault(model_name(draft), _Model(draft))

    def made(self, draft: Draft, day: str) -> None:
        for counts in self.model(draft).both(day):
            counts.counts["made"] += 1

    def add(self, record: TaskRecord) -> None:
        if record.item is None:
            return
        day = answer_day(record)
        shown = [self.model(record.item.drafts[index]) for index in record.order]
        decided = record.type == "answered" and record.decision.get("type") != "write"
        for model in shown:
            for counts in model.both(day):
                counts.counts["shown"] += 1
                counts.counts["decided"] += decided
                counts.counts["flagged"] += record.type == "flagged"
                counts.counts["none_acceptable"] += (
                    decided and record.decision.get("type") == "none_acceptable")
        if decided:  # a task's time counts once per model, even if it showed two of its drafts
            for name in {model_name(model.draft) for model in shown}:
                for counts in self.models[name].both(day):
                    counts.seconds.append(record.active_seconds)
        self._edit(record, day)
        self._matches(record)

    def _edit(self, record: TaskRecord, day: str) -> None:
        edit = edit_of(record)
        if edit is None:
            return
        for counts in self.model(edit.draft).both(day):
            counts.counts["accepted"] += edit.accepted
            counts.counts["overridden"] += edit.overridden
            if edit.ratio is not None:
                counts.counts["edited"] += 1
                counts.ratios.append(edit.ratio)
        if edit.accepted:
            stamps = self.experts.setdefault(record.expert, RubberStamps(expert=record.expert))
            stamps.acceptances += 1
            stamps.unread += bool(unread_acceptance(record, self.chars_per_s))

    def _matches(self, record: TaskRecord) -> None:
        for x, y, outcome in model_matches(record):
            x_result, y_result = {0: ("ties", "ties"), 1: ("wins", "losses"),
                                  2: ("losses", "wins")}[outcome]
            self.models[x].versus[y][x_result] += 1
            self.models[y].versus[x][y_result] += 1


def answer_day(record: TaskRecord) -> str:
    """The answer's UTC day: when the expert answered, else when it was recorded."""
    at = (record.payload.get("timing") or {}).get("answered_at")
    if isinstance(at, int):
        return datetime.fromtimestamp(at / 1000, UTC).strftime("%Y-%m-%d")
    return record.at[:10]


def edit_sizes(ratios: list[float]) -> EditSizes:
    if not ratios:
        return EditSizes()
    ordered = sorted(ratios)
    quartiles = statistics.quantiles(ordered, n=4, method="inclusive") \
        if len(ordered) > 1 else ordered * 3
    lows = (0.0, *EDIT_EDGES[:-1])
    histogram = [EditBucket(low=low, high=high,
                            count=sum(1 for r in ordered if low < r <= high))
                 for low, high in zip(lows, EDIT_EDGES, strict=True)]
    return EditSizes(count=len(ordered), mean=statistics.fmean(ordered),
                     quartiles=[float(q) for q in quartiles], histogram=histogram)


async def campaign_models(ledger: Ledger, campaign: Campaign) -> ModelsReport:
    """Two reads of the log: the drafts made (given in `item_added`, drafted in `drafted`),
    then each finished task with its item as shown."""
    tally = _Tally(campaign.spec.reading_chars_per_s)
    await _drafts_made(ledger, campaign.id, tally)
    async for batch in task_records(ledger, campaign.id):
        for record in batch:
            tally.add(record)
    return ModelsReport(
        campaign=campaign.id, kind=campaign.spec.kind,
        reading_chars_per_s=campaign.spec.reading_chars_per_s,
        models=[tally.models[name].report() for name in sorted(tally.models)],
        experts=sorted(tally.experts.values(), key=lambda e: (-e.unread, e.expert)),
        audit=await auto_accept_audit(ledger, campaign))


async def _drafts_made(ledger: Ledger, campaign_id: str, tally: _Tally) -> None:
    after = 0
    while events := await ledger.events(campaign_id, after, BATCH):
        after = int(str(events[-1]["seq"]))
        for event in events:
            payload: Any = event.get("payload") or {}
            day = str(event.get("at", ""))[:10]
            if event["type"] == "drafted":
                tally.made(Draft.model_validate(payload["draft"]), day)
            elif event["type"] == "item_added":
                for draft in payload["item"].get("drafts", []):
                    tally.made(Draft.model_validate(draft), day)
