"""Qualification before a campaign: every expert answers the same gold items first, and only
those whose share of right answers reaches `pass_share` get the campaign's real tasks. The
share compares as integer counts, like an item's settle rule, so 4 of 5 passes at 0.8."""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import BaseModel

from core.domain.hard_cases import SHARE_SCALE

QualificationState = Literal["in_progress", "passed", "failed"]
FAILED_MESSAGE = ("Thank you for taking the qualification for this campaign. Your answers did "
                  "not match enough of the known ones this time, so its tasks will not come to "
                  "you. Your time on it is paid, and a coordinator can open it to you again.")


class QualificationResult(BaseModel):
    """Where one expert stands in one campaign's qualification."""

    expert: str
    state: QualificationState
    right: int = 0  # answers that matched the gold
    answers: int = 0  # qualification items answered (a skip counts, as not right)
    share: float | None = None  # right / answers, once decided


class QualificationCounts(BaseModel):
    """How many experts passed, failed or are still taking a campaign's qualification."""

    passed: int = 0
    failed: int = 0
    in_progress: int = 0


class QualificationAnswer(NamedTuple):
    """An expert's last finished lease on a qualification item: the item and its event's seq,
    and the seq of the event that answered (or skipped) it."""

    item: str
    item_seq: int
    answer_seq: int


def passes(right: int, answers: int, pass_share: float) -> bool:
    """right / answers >= pass_share, compared as integer counts (millionths), never floats."""
    return answers > 0 and right * SHARE_SCALE >= round(pass_share * SHARE_SCALE) * answers


def decided(right: int, answers: int, pass_share: float, expert: str) -> QualificationResult:
    state: QualificationState = "passed" if passes(right, answers, pass_share) else "failed"
    return QualificationResult(expert=expert, state=state, right=right, answers=answers,
                               share=round(right / answers, 4) if answers else 0.0)


def counts(results: list[QualificationResult]) -> QualificationCounts:
    tally = QualificationCounts()
    for result in results:
        setattr(tally, result.state, getattr(tally, result.state) + 1)
    return tally
