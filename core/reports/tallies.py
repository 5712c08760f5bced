"""The sums every report starts from (quality, pay, the models report, the dashboard's figures),
taken over a campaign's finished tasks and kept so that two of them add up: the tallies of the
tasks finishing in each archived segment are computed once and stored beside it, and a report
adds the tail's to them. What depends on order (each unit's answers, an expert's last answers)
is kept in log order, so adding segments' tallies in seq order equals one pass over the log;
seconds are summed as whole microseconds and counted per value, so no grouping changes a sum,
a median or a quantile."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.domain.kinds import Kind
from core.reports.judgments import gold_correct, model_matches, unit_values
from core.reports.records import TaskRecord
from core.reports.treatment import Made, ModelTally, entry, unread_acceptance

FORMAT = 2  # of a stored tally: a reader recomputes one stored in another format
PAID = ("answered", "flagged", "adjudicated")  # a flag is work done; a skip is not
FAST_WINDOW = 10  # an expert's last answers, for the fast-answer flag
SAMPLE = 10_000  # answer times kept for the dashboard's quantiles
SECOND_BINS = tuple(round(10 ** (i / 8), 1) for i in range(0, 29))  # 1 s .. ~1 h, log-spaced
MINUTE_MS = 60_000
MICRO = 1_000_000
Value = str | int
Match = tuple[str, str, int]  # (model x, model y, outcome): 1 x won, 2 y won, 0 tie
Rename = Callable[[str], str]


def micros(seconds: float) -> int:
    return round(seconds * MICRO)


def bin_of(seconds: float) -> int:
    for index, edge in enumerate(SECOND_BINS):
        if seconds <= edge:
            return index
    return len(SECOND_BINS)


def median_of(values: Counter[float]) -> float | None:
    """statistics.median of the values counted, without listing them."""
    total = sum(values.values())
    if not total:
        return None
    wanted = ((total - 1) // 2, total // 2)
    found: list[float] = []
    seen = 0
    for value in sorted(values):
        seen += values[value]
        while len(found) < 2 and seen > wanted[len(found)]:
            found.append(value)
    return found[0] if found[0] == found[1] else (found[0] + found[1]) / 2


def counted(values: Counter[Any]) -> list[list[Any]]:
    """A Counter as JSON: its values, then their counts (two arrays parse faster than pairs)."""
    return [list(values), list(values.values())]


def counter(data: list[list[Any]]) -> Counter[Any]:
    return Counter(dict(zip(data[0], data[1], strict=True)))


@dataclass
class ExpertTally:
    answers: int = 0
    skipped: int = 0
    flagged: int = 0
    seconds: Counter[float] = field(default_factory=Counter)  # answered tasks' active time
    last: list[float] = field(default_factory=list)  # the last FAST_WINDOW of them
    gold_answers: int = 0
    gold_correct: int = 0
    unread: int = 0

    def merge(self, other: ExpertTally) -> None:
        for name in ("answers", "skipped", "flagged", "gold_answers", "gold_correct", "unread"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds.update(other.seconds)
        self.last = (self.last + other.last)[-FAST_WINDOW:]

    def dump(self) -> dict[str, Any]:
        return {**{k: v for k, v in vars(self).items() if k != "seconds"},
                "seconds": counted(self.seconds)}

    @classmethod
    def load(cls, data: dict[str, Any]) -> ExpertTally:
        return cls(**{**data, "seconds": counter(data["seconds"])})


class QualityTally:
    """What the quality report needs of each answer; nothing of the drafts' texts."""

    def __init__(self, kind: Kind, chars_per_s: float) -> None:
        self.kind = kind
        self.chars_per_s = chars_per_s
        self.experts: dict[str, ExpertTally] = {}
        self.units: dict[str, dict[str, Value]] = {}  # unit -> expert -> value (their last)
        self.matches: Counter[Match] = Counter()
        self.counts: Counter[str] = Counter()

    def add(self, record: TaskRecord) -> None:
        expert = entry(self.experts, record.expert, ExpertTally)
        if record.type != "answered":
            setattr(expert, record.type, getattr(expert, record.type) + 1)
            self.counts[record.type] += 1
            return
        expert.answers += 1
        self.counts["answers"] += 1
        self.counts["none_acceptable"] += record.decision.get("type") == "none_acceptable"
        expert.seconds[record.active_seconds] += 1
        expert.last = (expert.last + [record.active_seconds])[-FAST_WINDOW:]
        expert.unread += bool(unread_acceptance(record, self.chars_per_s))
        for unit, value in unit_values(record, self.kind):
            self.units.setdefault(unit, {})[record.expert] = \
                value if isinstance(value, int) else str(value)
        correct = gold_correct(record, self.kind)
        if correct is not None:
            expert.gold_answers += 1
            expert.gold_correct += correct
        self.matches.update(model_matches(record))

    def merge(self, other: QualityTally) -> None:
        for name, expert in other.experts.items():
            entry(self.experts, name, ExpertTally).merge(expert)
        for unit, by in other.units.items():
            self.units.setdefault(unit, {}).update(by)  # a later answer replaces, as in order
        self.matches.update(other.matches)
        self.counts.update(other.counts)

    def dump(self) -> dict[str, Any]:
        return {"experts": {name: e.dump() for name, e in self.experts.items()},
                "units": self.units, "matches": [[*m, n] for m, n in self.matches.items()],
                "counts": dict(self.counts)}

    def load(self, data: dict[str, Any]) -> None:
        self.experts = {name: ExpertTally.load(e) for name, e in data["experts"].items()}
        self.units = data["units"]
        self.matches = Counter({(x, y, int(o)): int(n) for x, y, o, n in data["matches"]})
        self.counts = Counter(data["counts"])


@dataclass
class FigureTally:
    """The dashboard's figures and the pay report's sums: answers per minute and per bin of
    active time, every answer's time (counted per value), and each expert's paid tasks and
    time."""

    answered: int = 0
    by_minute: Counter[int] = field(default_factory=Counter)  # minute since epoch -> answers
    by_bin: Counter[int] = field(default_factory=Counter)  # index into SECOND_BINS
    seconds: Counter[float] = field(default_factory=Counter)  # active time -> answers
    paid_tasks: Counter[str] = field(default_factory=Counter)  # expert -> paid tasks
    paid_us: Counter[str] = field(default_factory=Counter)  # expert -> their active time, in µs

    @property
    def sample(self) -> list[float]:
        """Up to SAMPLE answer times, evenly spaced in rank: their quantiles are the answers'."""
        total = sum(self.seconds.values())
        wanted = [i * total // SAMPLE for i in range(SAMPLE)] if total > SAMPLE \
            else list(range(total))
        found: list[float] = []
        seen = 0
        for value in sorted(self.seconds):
            seen += self.seconds[value]
            while len(found) < len(wanted) and wanted[len(found)] < seen:
                found.append(value)
        return found

    @property
    def paid_seconds(self) -> dict[str, float]:
        return {expert: us / MICRO for expert, us in self.paid_us.items()}

    def add(self, answered_at_ms: int, active_seconds: float) -> None:
        self.answered += 1
        self.by_minute[answered_at_ms // MINUTE_MS] += 1
        self.by_bin[bin_of(active_seconds)] += 1
        self.seconds[active_seconds] += 1

    def add_record(self, record: TaskRecord) -> None:
        if record.type in PAID:
            self.paid_tasks[record.expert] += 1
            self.paid_us[record.expert] += micros(record.active_seconds)
        if record.type != "answered":
            return
        at = (record.payload.get("timing") or {}).get("answered_at")
        if isinstance(at, int):
            self.add(at, record.active_seconds)

    def merge(self, other: FigureTally) -> None:
        self.answered += other.answered
        for name in ("by_minute", "by_bin", "seconds", "paid_tasks", "paid_us"):
            getattr(self, name).update(getattr(other, name))

    def dump(self) -> dict[str, Any]:
        return {"answered": self.answered, "by_minute": counted(self.by_minute),
                "by_bin": counted(self.by_bin), "seconds": counted(self.seconds),
                "paid_tasks": dict(self.paid_tasks), "paid_us": dict(self.paid_us)}

    @classmethod
    def load(cls, data: dict[str, Any]) -> FigureTally:
        return cls(int(data["answered"]), counter(data["by_minute"]), counter(data["by_bin"]),
                   counter(data["seconds"]), Counter(data["paid_tasks"]),
                   Counter(data["paid_us"]))


class Tallies:
    """Every report's sums for one campaign, over the tasks finishing in some part of its log
    (read with `also=("adjudicated",)`: an adjudicator's call is paid, and nothing else)."""

    def __init__(self, kind: Kind, chars_per_s: float) -> None:
        self.kind, self.chars_per_s = kind, chars_per_s
        self.quality = QualityTally(kind, chars_per_s)
        self.figures = FigureTally()
        self.models = ModelTally(chars_per_s)
        self.made: Counter[Made] = Counter()

    def add(self, record: TaskRecord) -> None:
        self.figures.add_record(record)
        if record.type == "adjudicated":
            return
        self.quality.add(record)
        self.models.add(record)

    def models_with_made(self) -> ModelTally:
        """The models tally with the drafts made counted in (first, as the report reads)."""
        tally = ModelTally(self.chars_per_s)
        tally.made(self.made)
        tally.merge(self.models)
        return tally

    def merge(self, other: Tallies) -> None:
        self.quality.merge(other.quality)
        self.figures.merge(other.figures)
        self.models.merge(other.models)
        self.made.update(other.made)

    def renamed(self, rename: Rename) -> Tallies:
        """The same sums with each expert's name passed through `rename` (a pseudonym for an
        expert erased after the sums were stored)."""
        data = self.dump()
        quality, figures = data["quality"], data["figures"]
        quality["experts"] = _keys(quality["experts"], rename, ExpertTally.load, _merged)
        quality["units"] = {unit: {rename(e): v for e, v in by.items()}
                            for unit, by in quality["units"].items()}
        for name in ("paid_tasks", "paid_us"):
            figures[name] = _keys(figures[name], rename, int, int.__add__)
        data["models"]["experts"] = _keys(data["models"]["experts"], rename, Counter,
                                          Counter.__add__)
        return Tallies.load(json.dumps(data, default=_plain), self.kind, self.chars_per_s)

    def dump(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": self.kind.value, "chars_per_s": self.chars_per_s,
                "quality": self.quality.dump(), "figures": self.figures.dump(),
                "models": self.models.dump(), "made": [[*m, n] for m, n in self.made.items()]}

    def to_json(self) -> str:
        return json.dumps(self.dump(), ensure_ascii=False, separators=(",", ":"),
                          default=_plain)

    @classmethod
    def load(cls, text: str, kind: Kind, chars_per_s: float) -> Tallies:
        """Stored tallies, or ValueError if they were kept for another format or campaign."""
        data = json.loads(text)
        if (data.get("format"), data.get("kind"), data.get("chars_per_s")) != (
                FORMAT, kind.value, chars_per_s):
            raise ValueError("tallies kept in another format or for another campaign spec")
        tallies = cls(kind, chars_per_s)
        tallies.quality.load(data["quality"])
        tallies.figures = FigureTally.load(data["figures"])
        tallies.models = ModelTally.load(data["models"], chars_per_s)
        tallies.made = Counter({(m, v, d): int(n) for m, v, d, n in data["made"]})
        return tallies


def _keys(by_name: dict[str, Any], rename: Rename, load: Callable[[Any], Any],
          add: Callable[[Any, Any], Any]) -> dict[str, Any]:
    """A dict keyed by expert, renamed; two names that become one are added up."""
    found: dict[str, Any] = {}
    for name, value in by_name.items():
        value = load(value)
        new = rename(name)
        found[new] = add(found[new], value) if new in found else value
    return found


def _merged(one: ExpertTally, other: ExpertTally) -> ExpertTally:
    one.merge(other)
    return one


def _plain(value: Any) -> Any:
    if isinstance(value, ExpertTally):
        return value.dump()
    raise TypeError(f"not JSON: {type(value).__name__}")
