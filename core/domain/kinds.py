"""The seven task kinds (and `approve`, for live asks only), the decisions an expert can make
on each, and the checks on them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.domain.items import draft_label
from core.errors import InvalidAnswer


class Kind(StrEnum):
    pairwise = "pairwise"
    rank = "rank"
    rate = "rate"
    correct = "correct"
    verify = "verify"
    label = "label"
    write = "write"
    approve = "approve"  # live asks only (core/domain/asks.py): a campaign refuses it


# How many drafts an item of each kind must carry: (min, max).
DRAFTS_PER_KIND: dict[Kind, tuple[int, int]] = {
    Kind.pairwise: (2, 2),
    Kind.rank: (2, 26),
    Kind.rate: (1, 1),
    Kind.correct: (1, 1),
    Kind.verify: (1, 1),
    Kind.label: (0, 1),
    Kind.write: (0, 26),
    Kind.approve: (0, 0),
}

# A first guess at how long a task takes, used until the campaign has its own median.
DEFAULT_SECONDS: dict[Kind, int] = {
    Kind.pairwise: 60, Kind.rank: 120, Kind.rate: 45, Kind.correct: 240,
    Kind.verify: 90, Kind.label: 45, Kind.write: 300, Kind.approve: 60,
}


class Scale(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = 1
    max: int = 5

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise ValueError("scale max must be greater than min")
        return self


class _Decision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choose(_Decision):
    """Pairwise: the better draft as shown (A or B), or a tie."""

    type: Literal["pairwise"] = "pairwise"
    choice: Literal["A", "B", "tie"]


class Rank(_Decision):
    """Rank: every draft label, best first."""

    type: Literal["rank"] = "rank"
    order: list[str]


class Rate(_Decision):
    type: Literal["rate"] = "rate"
    score: int


class Correct(_Decision):
    """The full corrected text; the diff against the draft is derived, never typed."""

    type: Literal["correct"] = "correct"
    text: str


class Verify(_Decision):
    """Accept the draft, or override it with a replacement and the reason for it."""

    type: Literal["verify"] = "verify"
    verdict: Literal["accept", "override"]
    text: str | None = None
    reason: str | None = None


class Label(_Decision):
    type: Literal["label"] = "label"
    labels: list[str]


class Write(_Decision):
    type: Literal["write"] = "write"
    text: str


class Approve(_Decision):
    """A live ask's proposed call: approve it, reject it (with the reason in `comment`), or
    approve it with edited arguments (`args`, the whole new argument object)."""

    type: Literal["approve"] = "approve"
    verdict: Literal["approved", "rejected", "edited"]
    comment: str | None = None
    args: dict[str, Any] | None = None


class Skip(_Decision):
    type: Literal["skip"] = "skip"


class NoneAcceptable(_Decision):
    """None of the drafts is acceptable: an answer, and a signal worth exporting."""

    type: Literal["none_acceptable"] = "none_acceptable"
    note: str | None = None


class Flag(_Decision):
    type: Literal["flag"] = "flag"
    reason: Literal["harmful", "unsure", "broken"]
    note: str | None = None


Decision = Annotated[
    Choose | Rank | Rate | Correct | Verify | Label | Write | Approve | Skip | NoneAcceptable
    | Flag,
    Field(discriminator="type"),
]

ALWAYS_ALLOWED = ("skip", "none_acceptable", "flag")


class KindOptions(BaseModel):
    """What a check needs to know about the campaign: its kind and that kind's options."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    scale: Scale | None = None
    labels: tuple[str, ...] = ()
    multi: bool = False


def check_decision(options: KindOptions, n_drafts: int, decision: Decision) -> None:
    """Refuse a decision that does not fit the task as shown to the expert."""
    if decision.type in ALWAYS_ALLOWED:
        return
    if decision.type != options.kind.value:
        raise InvalidAnswer(f"this is a {options.kind} task; a {decision.type} answer does not fit")
    _CHECKS[options.kind](options, n_drafts, decision)


def _check_rank(options: KindOptions, n_drafts: int, decision: Decision) -> None:
    assert isinstance(decision, Rank)
    expected = [draft_label(i) for i in range(n_drafts)]
    if sorted(decision.order) != expected:
        raise InvalidAnswer(f"rank every draft exactly once: {', '.join(expected)}")


def _check_rate(options: KindOptions, n_drafts: int, decision: Decision) -> None:
    assert isinstance(decision, Rate)
    scale = options.scale or Scale()
    if not scale.min <= decision.score <= scale.max:
        raise InvalidAnswer(f"score must be between {scale.min} and {scale.max}")


def _check_text(options: KindOptions, n_drafts: int, decision: Decision) -> None:
    assert isinstance(decision, Correct | Write)
    if not decision.text.strip():
        raise InvalidAnswer("the text is empty")


def _check_verify(options: KindOptions, n_drafts: int, decision: Decision) -> None:
    assert isinstance(decision, Verify)
    if decision.verdict == "override":
        if not (decision.text or "").strip():
            raise InvalidAnswer("an override needs the replacement text")
        if not (decision.reason or "").strip():
            raise InvalidAnswer("an override needs a reason")


def _check_label(options: KindOptions, n_drafts: int, decision: Decision) -> None:
    assert isinstance(decision, Label)
    unknown = [label for label in decision.labels if label not in options.labels]
    if unknown:
        raise InvalidAnswer(f"not a label of this campaign: {', '.join(unknown)}")
    if not decision.labels:
        raise InvalidAnswer("choose at least one label")
    if not options.multi and len(decision.labels) != 1:
        raise InvalidAnswer("choose exactly one label")
    if len(set(decision.labels)) != len(decision.labels):
        raise InvalidAnswer("a label is chosen twice")


def _check_approve(options: KindOptions, n_drafts: int, decision: Decision) -> None:
    assert isinstance(decision, Approve)
    if decision.verdict == "rejected" and not (decision.comment or "").strip():
        raise InvalidAnswer("a rejection needs its reason")
    if decision.verdict == "edited" and decision.args is None:
        raise InvalidAnswer("an edit needs the edited arguments")


def _check_nothing(options: KindOptions, n_drafts: int, decision: Decision) -> None:
    """Pairwise choices are fully checked by their type."""


_CHECKS = {
    Kind.pairwise: _check_nothing,
    Kind.rank: _check_rank,
    Kind.rate: _check_rate,
    Kind.correct: _check_text,
    Kind.verify: _check_verify,
    Kind.label: _check_label,
    Kind.write: _check_text,
    Kind.approve: _check_approve,
}


def allowed_answers(kind: Kind) -> list[str]:
    return [kind.value, *ALWAYS_ALLOWED]
