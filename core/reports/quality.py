"""How far the experts' answers can be trusted: Krippendorff's alpha, each expert's agreement with
the others and with gold, answers too fast to be read, the majority per item, and a leaderboard
of the models behind the drafts. The statistics are evalica's; this module only feeds it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from core.domain.campaigns import Campaign
from core.domain.kinds import Kind
from core.provenance.ledger import Ledger
from core.reports.history import history_of
from core.reports.tallies import (
    FAST_WINDOW,
    ExpertTally,
    Match,
    QualityTally,
    Value,
    median_of,
)

if TYPE_CHECKING:
    from core.ports import History, Turns

FAST_SHARE = 0.4  # an answer under 40% of the median time for its kind is flagged as fast
FAST_LISTED = 3  # 3 fast answers among an expert's last FAST_WINDOW lists them
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
    ties: int = 0  # units whose majority is a tie (listed in `consensus`)


async def campaign_quality(ledger: Ledger, campaign: Campaign, *, resamples: int = 200,
                           seed: int = 0, history: History | None = None) -> Quality:
    """Report on the campaign's tallies (`history`; the plain reader of the ledger when None).
    `resamples` bootstrap the leaderboard's confidence intervals (percentile method; 0 leaves
    them out)."""
    tallies = await history_of(ledger, history).tallies(campaign)
    return quality_from(tallies.quality, campaign, resamples=resamples, seed=seed)


def quality_from(tally: QualityTally, campaign: Campaign, *, resamples: int = 200,
                 seed: int = 0, consensus: bool = True) -> Quality:
    """The report from its sums. Without `consensus` the per-unit list is left out (the
    dashboard shows only how many units tie: `Quality.ties`)."""
    median = median_seconds(tally)
    counts = tally.counts
    report = Quality(campaign=campaign.id, kind=tally.kind, answers=counts["answers"],
                     skipped=counts["skipped"], flagged=counts["flagged"],
                     none_acceptable=counts["none_acceptable"], median_seconds=median,
                     fast_below_seconds=median * FAST_SHARE if median is not None else None,
                     bootstrap_resamples=resamples if tally.matches else 0)
    report.alpha = [krippendorff(tally.units, d) for d in DISTANCES.get(tally.kind, ())]
    report.experts, report.ties = _experts(tally, report.fast_below_seconds)
    if consensus:
        report.consensus = [majority(unit, votes) for unit, votes in tally.units.items()]
    report.leaderboard = leaderboard(tally.matches, resamples, seed)
    return report


def median_seconds(tally: QualityTally) -> float | None:
    """The median active time of every answer."""
    every: Counter[float] = Counter()
    for expert in tally.experts.values():
        every.update(expert.seconds)
    return median_of(every)


def fast_below(tally: QualityTally) -> float | None:
    """Answers faster than this are flagged as fast: a share of the median."""
    median = median_seconds(tally)
    return median * FAST_SHARE if median is not None else None


async def keep_agreement(ledger: Ledger, turns: Turns, campaign: Campaign, *,
                         history: History | None = None) -> bool:
    """Store each expert's agreement with their peers in this campaign, for their own stats,
    when the log has grown since it was last kept. A full read of the log: the worker runs it
    now and then, never on an expert's request."""
    seq = await ledger.log.last_seq(campaign.id)
    if seq == await turns.agreement_seq(campaign.id):
        return False
    report = await campaign_quality(ledger, campaign, resamples=0, history=history)
    await turns.save_agreement(campaign.id, seq, {e.expert: (e.agreed, e.agreement_units)
                                                  for e in report.experts})
    return True


def krippendorff(units: dict[str, dict[str, Value]], distance: str) -> Alpha:
    """Alpha over units with two or more answers (the others carry no pairable values). Alpha
    reads each unit's values alone, never who gave them, so evalica gets one row per answer
    slot rather than per expert: a few rows instead of one per expert, the same alpha."""
    pairable = [list(by.values()) for by in units.values() if len(by) >= 2]
    if not pairable:
        return Alpha(distance=distance, value=None, units=0)
    evalica = _evalica()
    width = max(len(values) for values in pairable)
    slots = [[values[i] if i < len(values) else None for values in pairable]
             for i in range(width)]
    # rows: answer slots, columns: units; one object block, not a block per unit
    frame = import_module("pandas").DataFrame(import_module("numpy").array(slots, dtype=object),
                                              dtype=object, copy=False)
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


def _experts(tally: QualityTally, fast_below: float | None
             ) -> tuple[list[ExpertQuality], int]:
    """Each expert's report, with their agreement with the others; and the units whose
    majority is a tie (one pass over the units)."""
    agree: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    ties = 0
    for by_expert in tally.units.values():
        if len(by_expert) < 2:
            continue  # nobody else answered
        values = list(by_expert.values())
        if values.count(values[0]) == len(values):  # all agree: each agrees with the others
            seen.update(by_expert.keys())
            agree.update(by_expert.keys())
            continue
        votes = Counter(values)
        most = max(votes.values())
        ties += sum(n == most for n in votes.values()) > 1
        for name, value in by_expert.items():
            top = _others_top(votes, value)
            if top is None:
                continue  # the others are split: no consensus
            seen[name] += 1
            agree[name] += top == value
    experts = sorted((_expert(name, expert, fast_below, agree[name], seen[name])
                      for name, expert in tally.experts.items()), key=lambda e: e.expert)
    return experts, ties


def _others_top(votes: Counter[Value], own: Value) -> Value | None:
    """The others' single most given value, leaving out one `own`; None if they are split."""
    best: Value | None = None
    most, split = 0, False
    for value, n in votes.items():
        n -= value == own
        if n > most:
            best, most, split = value, n, False
        elif n == most and n > 0:
            split = True
    return None if split else best


def _expert(name: str, tallied: ExpertTally, fast_below: float | None, agreed: int,
            units: int) -> ExpertQuality:
    expert = ExpertQuality(
        expert=name, answers=tallied.answers, skipped=tallied.skipped, flagged=tallied.flagged,
        median_seconds=median_of(tallied.seconds), agreement=agreed / units if units else None,
        agreed=agreed, agreement_units=units, gold_answers=tallied.gold_answers,
        gold_correct=tallied.gold_correct, unread_acceptances=tallied.unread)
    if expert.gold_answers:
        expert.gold_accuracy = expert.gold_correct / expert.gold_answers
    if fast_below is not None:
        expert.fast_answers = sum(n for s, n in tallied.seconds.items() if s < fast_below)
        expert.fast_in_last_10 = sum(s < fast_below for s in tallied.last[-FAST_WINDOW:])
        expert.listed_fast = expert.fast_in_last_10 >= FAST_LISTED
    return expert


def leaderboard(matches: Iterable[Match] | Counter[Match], resamples: int, seed: int
                ) -> list[ModelScore]:
    """Bradley-Terry scores of the models behind the drafts (experts judged blind), with
    percentile bootstrap intervals: BCa would refit once per comparison (a jackknife). A fit
    reads the matches as counts per (x, y, outcome), and a resample draws those counts
    (multinomial), which is resampling the matches with replacement without listing them."""
    counts = matches if isinstance(matches, Counter) else Counter(matches)
    rows = sorted(counts.items())
    models = sorted({m for (x, y, _), _ in rows for m in (x, y)})
    if len(models) < 2:
        return []
    fit = _with_prior(models)
    xs, ys = [x for (x, _, _), _ in rows], [y for (_, y, _), _ in rows]
    winners = _winners([outcome for (_, _, outcome), _ in rows])
    weights = [float(n) for _, n in rows]
    scores = fit(xs, ys, winners, weights).scores
    low = high = None
    if resamples > 0 and sum(weights) >= 2:  # a bootstrap needs two matches to resample
        low, high = _bootstrap(fit, (xs, ys, winners), weights, resamples, seed)
    board = [_model_score(str(model), float(score), counts, low, high)
             for model, score in scores.items()]
    board.sort(key=lambda s: -s.score)
    return [s.model_copy(update={"rank": i + 1}) for i, s in enumerate(board)]


def _bootstrap(fit: Any, rows: tuple[list[str], list[str], list[Any]], weights: list[float],
               resamples: int, seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """2.5th and 97.5th percentiles of each model's score over the resamples."""
    numpy = import_module("numpy")
    total = int(sum(weights))
    draws = numpy.random.default_rng(seed).multinomial(
        total, numpy.asarray(weights) / total, size=resamples)
    found: dict[str, list[float]] = {}
    for drawn in draws:
        for model, score in fit(*rows, [float(n) for n in drawn]).scores.items():
            found.setdefault(str(model), []).append(float(score))
    low = {m: float(numpy.percentile(s, 2.5)) for m, s in found.items() if len(s) == resamples}
    high = {m: float(numpy.percentile(s, 97.5)) for m, s in found.items()
            if len(s) == resamples}
    return low, high


def _with_prior(models: list[str]) -> Any:
    """Bradley-Terry with one virtual draw between every two models, in every fit and every
    resample. Without it a model that never lost has no finite score, and evalica then gives
    every model the same one: the clearly best model would be shown tied with the worst."""
    pairs = [(x, y) for i, x in enumerate(models) for y in models[i + 1:]]
    prior_x, prior_y = [x for x, _ in pairs], [y for _, y in pairs]
    evalica = _evalica()
    draws = [evalica.Winner.Draw] * len(pairs)

    def fit(xs: Any, ys: Any, winners: Any, weights: list[float]) -> Any:
        return evalica.bradley_terry([*xs, *prior_x], [*ys, *prior_y], [*winners, *draws],
                                     weights=weights + [PRIOR_DRAWS] * len(pairs))
    return fit


def _model_score(model: str, score: float, matches: Counter[Match],
                 low: dict[str, float] | None, high: dict[str, float] | None) -> ModelScore:
    wins = sum(n for (x, y, o), n in matches.items()
               if (x == model and o == 1) or (y == model and o == 2))
    ties = sum(n for (x, y, o), n in matches.items() if o == 0 and model in (x, y))
    played = sum(n for (x, y, _), n in matches.items() if model in (x, y))
    return ModelScore(model=model, rank=0, score=score, matches=played, wins=wins, ties=ties,
                      losses=played - wins - ties,
                      low=_finite(low, model), high=_finite(high, model))


def _finite(found: dict[str, float] | None, model: str) -> float | None:
    if found is None:
        return None
    value = found.get(model, float("nan"))
    return value if value == value else None
