"""How far the experts' answers can be trusted: Krippendorff's alpha, each expert's agreement with
the others and with gold, answers too fast to be read, the majority per item, and a leaderboard
of the models behind the drafts. The statistics are evalica's; this module only feeds it."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable
from importlib import import_module
from typing import Any

from pydantic import BaseModel

from core.domain.campaigns import Campaign
from core.domain.kinds import Kind
from core.ports import Turns
from core.provenance.ledger import Ledger
from core.reports.judgments import gold_correct, model_matches, unit_values
from core.reports.models import unread_acceptance
from core.reports.records import TaskRecord, task_records

FAST_SHARE = 0.4  # an answer under 40% of the median time for its kind is flagged as fast
FAST_WINDOW, FAST_LISTED = 10, 3  # 3 fast answers among an expert's last 10 lists them
DISTANCES: dict[Kind, tuple[str, ...]] = {
    Kind.pairwise: ("nominal",), Kind.label: ("nominal",), Kind.verify: ("nominal",),
    Kind.rate: ("nominal", "ordinal", "interval"), Kind.rank: ("ordinal",),
}
PRIOR_DRAWS = 1.0  # weight of the virtual draw per pair of models: small beside real data


def preload() -> None:
    """Import the statistics now, off the event loop: `asyncio.to_thread(preload)` at a
    process's start, so the first report does not stall every request for seconds."""
    _evalica()
    import_module("pandas")


def _evalica() -> Any:
    """evalica (and the scipy and pandas under it) on first use: they take seconds to import,
    and every `expertloop` command and process imports this module."""
    return import_module("evalica")


def _winners(outcomes: list[int]) -> list[Any]:
    winner = _evalica().Winner
    return [{0: winner.Draw, 1: winner.X, 2: winner.Y}[outcome] for outcome in outcomes]
Value = str | int


class Alpha(BaseModel):
    distance: str
    value: float | None  # None when too few units have two or more answers
    units: int
    observed: float | None = None
    expected: float | None = None


class ExpertQuality(BaseModel):
    expert: str
    answers: int = 0
    skipped: int = 0
    flagged: int = 0
    median_seconds: float | None = None
    agreement: float | None = None  # share of units where they match the others' majority
    agreement_units: int = 0
    agreed: int = 0
    gold_answers: int = 0
    gold_correct: int = 0
    gold_accuracy: float | None = None
    fast_answers: int = 0
    fast_in_last_10: int = 0
    listed_fast: bool = False  # shown to the coordinator to look at; nothing automatic follows
    unread_acceptances: int = 0  # drafts accepted faster than they could be read: likewise


class Consensus(BaseModel):
    """The majority answer for one unit (an item; for rank, an item's draft and its position)."""

    unit: str
    value: Value | None
    votes: dict[str, int]
    answers: int
    tie: bool
    tied: list[Value] = []


class ModelScore(BaseModel):
    model: str
    rank: int
    score: float
    low: float | None = None
    high: float | None = None
    matches: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0


class Quality(BaseModel):
    campaign: str
    kind: Kind
    answers: int = 0
    skipped: int = 0
    flagged: int = 0
    none_acceptable: int = 0
    median_seconds: float | None = None
    fast_below_seconds: float | None = None
    alpha: list[Alpha] = []
    experts: list[ExpertQuality] = []
    consensus: list[Consensus] = []
    leaderboard: list[ModelScore] = []
    bootstrap_resamples: int = 0


class _Tally:
    """What the report needs from each record; nothing of the drafts' texts is kept."""

    def __init__(self, kind: Kind, chars_per_s: float) -> None:
        self.kind = kind
        self.chars_per_s = chars_per_s
        self.units: dict[str, dict[str, Value]] = defaultdict(dict)  # unit -> expert -> value
        self.times: dict[str, list[float]] = defaultdict(list)  # expert -> seconds, log order
        self.experts: dict[str, ExpertQuality] = {}
        self.matches: list[tuple[str, str, int]] = []
        self.counts: Counter[str] = Counter()

    def add(self, record: TaskRecord) -> None:
        expert = self.experts.setdefault(record.expert, ExpertQuality(expert=record.expert))
        if record.type != "answered":
            setattr(expert, record.type, getattr(expert, record.type) + 1)
            self.counts[record.type] += 1
            return
        expert.answers += 1
        self.counts["answers"] += 1
        self.counts["none_acceptable"] += record.decision.get("type") == "none_acceptable"
        self.times[record.expert].append(record.active_seconds)
        expert.unread_acceptances += bool(unread_acceptance(record, self.chars_per_s))
        for unit, value in unit_values(record, self.kind):
            self.units[unit][record.expert] = _value(value)
        correct = gold_correct(record, self.kind)
        if correct is not None:
            expert.gold_answers += 1
            expert.gold_correct += correct
        self.matches += model_matches(record)


async def campaign_quality(ledger: Ledger, campaign: Campaign, *, resamples: int = 200,
                           seed: int = 0) -> Quality:
    """Read the campaign's log once and report on it. `resamples` bootstrap the leaderboard's
    confidence intervals (percentile method; 0 leaves them out)."""
    kind = campaign.spec.kind
    tally = _Tally(kind, campaign.spec.reading_chars_per_s)
    async for batch in task_records(ledger, campaign.id):
        for record in batch:
            tally.add(record)
    every = [s for times in tally.times.values() for s in times]
    median = statistics.median(every) if every else None
    report = Quality(campaign=campaign.id, kind=kind, answers=tally.counts["answers"],
                     skipped=tally.counts["skipped"], flagged=tally.counts["flagged"],
                     none_acceptable=tally.counts["none_acceptable"], median_seconds=median,
                     fast_below_seconds=median * FAST_SHARE if median is not None else None,
                     bootstrap_resamples=resamples if tally.matches else 0)
    report.alpha = [krippendorff(tally.units, d) for d in DISTANCES.get(kind, ())]
    report.experts = _experts(tally, report.fast_below_seconds)
    report.consensus = [majority(unit, votes) for unit, votes in tally.units.items()]
    report.leaderboard = leaderboard(tally.matches, resamples, seed)
    return report


async def keep_agreement(ledger: Ledger, turns: Turns, campaign: Campaign) -> bool:
    """Store each expert's agreement with their peers in this campaign, for their own stats,
    when the log has grown since it was last kept. A full read of the log: the worker runs it
    now and then, never on an expert's request."""
    seq = await ledger.log.last_seq(campaign.id)
    if seq == await turns.agreement_seq(campaign.id):
        return False
    report = await campaign_quality(ledger, campaign, resamples=0)
    await turns.save_agreement(campaign.id, seq, {e.expert: (e.agreed, e.agreement_units)
                                                  for e in report.experts})
    return True


def _value(value: Hashable) -> Value:
    return value if isinstance(value, int) else str(value)


def krippendorff(units: dict[str, dict[str, Value]], distance: str) -> Alpha:
    """Alpha over units with two or more answers (the others carry no pairable values)."""
    pairable = {unit: by for unit, by in units.items() if len(by) >= 2}
    if not pairable:
        return Alpha(distance=distance, value=None, units=0)
    evalica = _evalica()
    frame = import_module("pandas").DataFrame(pairable)  # rows: experts, columns: units
    try:
        result = evalica.alpha(frame, distance=distance)
    except (evalica.InsufficientRatingsError, ValueError):
        return Alpha(distance=distance, value=None, units=len(pairable))
    return Alpha(distance=distance, value=float(result.alpha), units=len(pairable),
                 observed=float(result.observed), expected=float(result.expected))


def majority(unit: str, by_expert: dict[str, Value]) -> Consensus:
    votes = Counter(by_expert.values())
    top = max(votes.values())
    tied = sorted((value for value, n in votes.items() if n == top), key=str)
    return Consensus(unit=unit, value=tied[0] if len(tied) == 1 else None,
                     votes={str(v): n for v, n in votes.items()}, answers=len(by_expert),
                     tie=len(tied) > 1, tied=tied if len(tied) > 1 else [])


def _experts(tally: _Tally, fast_below: float | None) -> list[ExpertQuality]:
    agree: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for by_expert in tally.units.values():
        for name, value in by_expert.items():
            others = Counter(v for e, v in by_expert.items() if e != name)
            top = others.most_common(2)
            if not top or (len(top) == 2 and top[0][1] == top[1][1]):
                continue  # nobody else answered, or the others are split: no consensus
            seen[name] += 1
            agree[name] += top[0][0] == value
    for expert in tally.experts.values():
        _fill_expert(expert, tally.times.get(expert.expert, []), fast_below,
                     agree[expert.expert], seen[expert.expert])
    return sorted(tally.experts.values(), key=lambda e: e.expert)


def _fill_expert(expert: ExpertQuality, times: list[float], fast_below: float | None,
                 agreed: int, units: int) -> None:
    expert.median_seconds = statistics.median(times) if times else None
    expert.agreement = agreed / units if units else None
    expert.agreed = agreed
    expert.agreement_units = units
    if expert.gold_answers:
        expert.gold_accuracy = expert.gold_correct / expert.gold_answers
    if fast_below is not None:
        fast = [seconds < fast_below for seconds in times]
        expert.fast_answers = sum(fast)
        expert.fast_in_last_10 = sum(fast[-FAST_WINDOW:])
        expert.listed_fast = expert.fast_in_last_10 >= FAST_LISTED


def leaderboard(matches: list[tuple[str, str, int]], resamples: int, seed: int
                ) -> list[ModelScore]:
    """Bradley-Terry scores of the models behind the drafts (experts judged blind), with
    percentile bootstrap intervals: BCa would refit once per comparison (a jackknife)."""
    models = sorted({m for x, y, _ in matches for m in (x, y)})
    if len(models) < 2:
        return []
    xs, ys = [x for x, _, _ in matches], [y for _, y, _ in matches]
    winners = _winners([outcome for _, _, outcome in matches])
    fit = _with_prior(models)
    scores = fit(xs=xs, ys=ys, winners=winners).scores
    low = high = None
    if resamples > 0 and len(matches) >= 2:  # a bootstrap needs two matches to resample
        boot = _evalica().bootstrap(fit, xs, ys, winners, n_resamples=resamples,
                                    bootstrap_method="percentile", random_state=seed)
        low, high = boot.low, boot.high
    board = [_model_score(str(model), float(score), matches, low, high)
             for model, score in scores.items()]
    board.sort(key=lambda s: -s.score)
    return [s.model_copy(update={"rank": i + 1}) for i, s in enumerate(board)]


def _with_prior(models: list[str]) -> Any:
    """Bradley-Terry with one virtual draw between every two models, in every fit and every
    resample. Without it a model that never lost has no finite score, and evalica then gives
    every model the same one: the clearly best model would be shown tied with the worst."""
    pairs = [(x, y) for i, x in enumerate(models) for y in models[i + 1:]]
    prior_x, prior_y = [x for x, _ in pairs], [y for _, y in pairs]
    evalica = _evalica()
    draws = [evalica.Winner.Draw] * len(pairs)

    def fit(xs: Any, ys: Any, winners: Any, weights: Any = None, **options: Any) -> Any:
        weights = [1.0] * len(xs) if weights is None else list(weights)
        return evalica.bradley_terry([*xs, *prior_x], [*ys, *prior_y], [*winners, *draws],
                                     weights=weights + [PRIOR_DRAWS] * len(pairs), **options)
    return fit


def _model_score(model: str, score: float, matches: list[tuple[str, str, int]],
                 low: Any, high: Any) -> ModelScore:
    wins = sum(1 for x, y, o in matches if (x == model and o == 1) or (y == model and o == 2))
    ties = sum(1 for x, y, o in matches if o == 0 and model in (x, y))
    played = sum(1 for x, y, _ in matches if model in (x, y))
    return ModelScore(model=model, rank=0, score=score, matches=played, wins=wins, ties=ties,
                      losses=played - wins - ties,
                      low=_finite(low, model), high=_finite(high, model))


def _finite(series: Any, model: str) -> float | None:
    if series is None:
        return None
    value = float(series.get(model, float("nan")))
    return value if value == value else None  # NaN when every resample agreed exactly
