"""How experts treat each model's drafts, as sums that add up across parts of the log: per model
and version, over the campaign and per UTC day, the drafts made, shown and decided; accepted,
edited (each edit's size), overridden, none acceptable, flagged; the time to decide; wins
against each other model; and per expert, acceptances made faster than the draft could be
read. core/reports/models.py turns a `ModelTally` into the report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from rapidfuzz.distance import Levenshtein

from core.domain.items import Draft
from core.reports.judgments import model_matches, model_name
from core.reports.records import TaskRecord

COUNTS = ("made", "shown", "decided", "accepted", "edited", "overridden", "none_acceptable",
          "flagged")
Made = tuple[str, str, str]  # (model, model_version, UTC day) of a draft made
K = TypeVar("K")
V = TypeVar("V")


def entry(found: dict[K, V], key: K, make: Callable[[], V]) -> V:
    """`found[key]`, made first if missing: setdefault would build a new default every call,
    and these run once per answer."""
    value = found.get(key)
    if value is None:
        value = found[key] = make()
    return value


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


def answer_day(record: TaskRecord) -> str:
    """The answer's UTC day: when the expert answered, else when it was recorded."""
    at = (record.payload.get("timing") or {}).get("answered_at")
    if isinstance(at, int):
        return datetime.fromtimestamp(at / 1000, UTC).strftime("%Y-%m-%d")
    return record.at[:10]


@dataclass
class Counts:
    """One model's treatment over some answers. Seconds are kept as a count per value (the
    median needs them all, and the same few values recur), ratios one per edit."""

    counts: Counter[str] = field(default_factory=Counter)
    ratios: list[float] = field(default_factory=list)
    seconds: Counter[float] = field(default_factory=Counter)

    def merge(self, other: Counts) -> None:
        self.counts.update(other.counts)
        self.ratios += other.ratios
        self.seconds.update(other.seconds)

    def dump(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "ratios": self.ratios,
                "seconds": [list(self.seconds), list(self.seconds.values())]}

    @classmethod
    def load(cls, data: dict[str, Any]) -> Counts:
        values, counts = data["seconds"]
        return cls(Counter(data["counts"]), list(data["ratios"]),
                   Counter(dict(zip(values, counts, strict=True))))


@dataclass
class ModelCounts:
    """One model (name, version) across the campaign, per day, and against the others."""

    model: str
    version: str
    total: Counts = field(default_factory=Counts)
    days: dict[str, Counts] = field(default_factory=dict)
    versus: dict[str, Counter[str]] = field(default_factory=dict)

    def both(self, day: str) -> tuple[Counts, Counts]:
        return self.total, entry(self.days, day, Counts)

    def merge(self, other: ModelCounts) -> None:
        self.total.merge(other.total)
        for day, counts in other.days.items():
            entry(self.days, day, Counts).merge(counts)
        for name, results in other.versus.items():
            entry(self.versus, name, Counter).update(results)

    def dump(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "total": self.total.dump(),
                "days": {day: c.dump() for day, c in self.days.items()},
                "versus": {name: dict(c) for name, c in self.versus.items()}}

    @classmethod
    def load(cls, data: dict[str, Any]) -> ModelCounts:
        return cls(data["model"], data["version"], Counts.load(data["total"]),
                   {day: Counts.load(c) for day, c in data["days"].items()},
                   {name: Counter(c) for name, c in data["versus"].items()})


class ModelTally:
    """Models by name (model@version), and experts' (acceptances, unread acceptances)."""

    def __init__(self, chars_per_s: float) -> None:
        self.chars_per_s = chars_per_s
        self.models: dict[str, ModelCounts] = {}
        self.experts: dict[str, Counter[str]] = {}

    def model(self, draft: Draft) -> ModelCounts:
        return self.named(model_name(draft), draft.model, draft.model_version)

    def named(self, name: str, model: str, version: str) -> ModelCounts:
        return entry(self.models, name, lambda: ModelCounts(model, version))

    def made(self, made: Counter[Made]) -> None:
        """Drafts made (given in `item_added`, drafted in `drafted`), by model and day."""
        for (model, version, day), n in made.items():
            name = model_name(Draft(text="", model=model, model_version=version))
            for counts in self.named(name, model, version).both(day):
                counts.counts["made"] += n

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
            for name in {model_name(record.item.drafts[index]) for index in record.order}:
                for counts in self.models[name].both(day):
                    counts.seconds[record.active_seconds] += 1
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
            stamps = entry(self.experts, record.expert, Counter)
            stamps["acceptances"] += 1
            stamps["unread"] += bool(record.active_seconds < len(edit.draft.text)
                                     / self.chars_per_s)

    def _matches(self, record: TaskRecord) -> None:
        for x, y, outcome in model_matches(record):
            x_result, y_result = {0: ("ties", "ties"), 1: ("wins", "losses"),
                                  2: ("losses", "wins")}[outcome]
            entry(self.models[x].versus, y, Counter)[x_result] += 1
            entry(self.models[y].versus, x, Counter)[y_result] += 1

    def merge(self, other: ModelTally) -> None:
        for name, counts in other.models.items():
            self.named(name, counts.model, counts.version).merge(counts)
        for expert, stamps in other.experts.items():
            entry(self.experts, expert, Counter).update(stamps)

    def dump(self) -> dict[str, Any]:
        return {"models": {name: m.dump() for name, m in self.models.items()},
                "experts": {expert: dict(c) for expert, c in self.experts.items()}}

    @classmethod
    def load(cls, data: dict[str, Any], chars_per_s: float) -> ModelTally:
        tally = cls(chars_per_s)
        tally.models = {name: ModelCounts.load(m) for name, m in data["models"].items()}
        tally.experts = {expert: Counter(c) for expert, c in data["experts"].items()}
        return tally
