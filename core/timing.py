"""Clocks and task times: what an expert's time on a task is, and what the next one will take."""

from __future__ import annotations

import statistics
import time

from core.cards import Estimate
from core.kinds import DEFAULT_SECONDS, Kind

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


def active_seconds(answered_at: int, started_at: int, limit_s: int) -> float:
    """From the moment the expert could start (opened, else delivered, else assigned) to the
    answer, capped at the time limit so an abandoned tab does not count as work."""
    return round(min(max(answered_at - started_at, 0) / 1000, limit_s), 3)


def estimate_seconds(kind: Kind, durations: list[float]) -> tuple[int, bool]:
    """The median of recent answers once there are a few; the kind's default before."""
    if len(durations) < 5:
        return DEFAULT_SECONDS[kind], True
    return max(1, round(statistics.median(durations))), len(durations) < PILOT_ANSWERS


def make_estimate(kind: Kind, durations: list[float], per_task: float | None,
                  per_hour: float | None, currency: str | None) -> Estimate:
    seconds, pilot = estimate_seconds(kind, durations)
    pay = per_task if per_task is not None else None
    if per_hour is not None:
        pay = round(per_hour * seconds / 3600, 2)
    return Estimate(seconds=seconds, pay=pay, currency=currency, pilot=pilot)
