"""Clocks and task times: what an expert's time on a task is, and what the next one will take."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from core.cards import Estimate
from core.kinds import DEFAULT_SECONDS, Kind

PILOT_ANSWERS = 20  # below this many timed answers, a card's estimate says it is still a guess


_KEPT_AT: ContextVar[int | None] = ContextVar("kept_at", default=None)


@contextmanager
def acting_at(kept_at: int) -> Iterator[None]:
    """While a request that waited in an inbox is handled: the expert acted when it was kept,
    not when a worker got to it (a backlog must not cost them pay, or their lease)."""
    token = _KEPT_AT.set(kept_at)
    try:
        yield
    finally:
        _KEPT_AT.reset(token)


def kept_at() -> int | None:
    """When the request being handled was kept in an inbox, if it was: an adapter passes it on
    as `Answer.acted_at`, so the expert is judged by when they acted."""
    return _KEPT_AT.get()


def acted_at(now: int) -> int:
    """When the expert did what is being handled: `now`, or earlier if it waited in an inbox."""
    kept = _KEPT_AT.get()
    return now if kept is None else min(kept, now)


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
