"""Clocks and task times: what an expert's time on a task is, and what the next one will take."""

from __future__ import annotations

import time

from core.domain.cards import Estimate
from core.domain.kinds import DEFAULT_SECONDS, Kind

PILOT_ANSWERS = 20  # below this many timed answers, a card's estimate says it is still a guess


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class SetClock:
    """A clock a test or a simulation moves by hand; the world decides time, so we may fake it."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


def make_estimate(kind: Kind, median_seconds: float | None, answers: int,
                  per_task: float | None, per_hour: float | None,
                  currency: str | None) -> Estimate:
    """The campaign's median once it has a few answers, the kind's default before; `pilot`
    until enough answers make the figure trustworthy."""
    seconds = DEFAULT_SECONDS[kind]
    if median_seconds is not None and answers >= 5:
        seconds = max(1, round(median_seconds))
    pay = per_task
    if per_hour is not None:
        pay = round(per_hour * seconds / 3600, 2)
    return Estimate(seconds=seconds, pay=pay, currency=currency, pilot=answers < PILOT_ANSWERS)
