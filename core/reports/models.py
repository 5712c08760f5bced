"""How experts treat each model's drafts: per model and version, over the campaign and per UTC
day, the drafts made, shown and decided; accepted as is, edited (and by how much), overridden,
none acceptable, flagged; wins, losses and ties against each other model; the median time to
decide; and per expert, acceptances made faster than the draft could be read. That last one is
a signal for a coordinator to look at beside the fast answers, never a penalty. The sums are
core/reports/treatment.py's; this module shapes the report from them.

Shown counts finished tasks (answered, skipped, flagged) that showed the draft: the record of a
task that expired unanswered does not say whether the expert ever saw it."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from core.domain.campaigns import Campaign
from core.domain.kinds import Kind
from core.provenance.ledger import Ledger
from core.reports.audit import AutoAcceptAudit, auto_accept_audit
from core.reports.history import history_of
from core.reports.tallies import median_of
from core.reports.treatment import (  # noqa: F401  (edit_of and the rest were defined here)
    COUNTS,
    Counts,
    Edit,
    ModelCounts,
    ModelTally,
    answer_day,
    edit_of,
    edit_ratio,
    unread_acceptance,
)

if TYPE_CHECKING:
    from core.ports import History

EDIT_EDGES = (0.1, 0.25, 0.5, 0.75, 1.0)  # upper edges of the edit-size histogram's buckets


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


def counts_report(counts: Counts) -> dict[str, Any]:
    """A Treatment's fields from one model's counts over some answers."""
    decided = counts.counts["decided"]
    return {**{name: counts.counts[name] for name in COUNTS},
            "acceptance_rate": counts.counts["accepted"] / decided if decided else None,
            "edit_ratio": edit_sizes(counts.ratios),
            "median_decide_seconds": median_of(counts.seconds)}


def model_report(name: str, model: ModelCounts) -> ModelTreatment:
    return ModelTreatment(
        name=name, model=model.model, model_version=model.version,
        **counts_report(model.total),
        versus=[Versus(model=other, wins=c["wins"], losses=c["losses"], ties=c["ties"])
                for other, c in sorted(model.versus.items())],
        days=[DayTreatment(day=day, **counts_report(counts))
              for day, counts in sorted(model.days.items())])


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


async def campaign_models(ledger: Ledger, campaign: Campaign, *,
                          history: History | None = None) -> ModelsReport:
    """The drafts made and each finished task with its item as shown, from the campaign's
    tallies (`history`; the plain reader of the ledger when None)."""
    tallies = await history_of(ledger, history).tallies(campaign)
    return models_from(tallies.models_with_made(), campaign,
                       await auto_accept_audit(ledger, campaign))


def models_from(tally: ModelTally, campaign: Campaign,
                audit: AutoAcceptAudit | None) -> ModelsReport:
    return ModelsReport(
        campaign=campaign.id, kind=campaign.spec.kind,
        reading_chars_per_s=campaign.spec.reading_chars_per_s,
        models=[model_report(name, tally.models[name]) for name in sorted(tally.models)],
        experts=sorted((RubberStamps(expert=expert, acceptances=c["acceptances"],
                                     unread=c["unread"])
                        for expert, c in tally.experts.items()),
                       key=lambda e: (-e.unread, e.expert)),
        audit=audit)
