"""What the dashboard draws for one campaign, aggregated in one pass over its log: answers per
time bucket, per hour, a histogram of active seconds, and each expert's paid tasks and time (the
same pass prices them, so pay needs no read of its own). Memory follows the number of buckets,
bins and experts, never the number of items or answers."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field

from core.provenance.ledger import Ledger
from core.reports.pay import PAID
from core.reports.records import task_records

HOUR_MS = 3_600_000
SECOND_BINS = tuple(round(10 ** (i / 8), 1) for i in range(0, 29))  # 1 s .. ~1 h, log-spaced
MINUTE_MS = 60_000


@dataclass
class Figures:
    """Counts by minute (answers over time), by active-seconds bin, and the kind's seconds."""

    answered: int = 0
    by_minute: Counter[int] = field(default_factory=Counter)  # minute since epoch -> answers
    by_bin: Counter[int] = field(default_factory=Counter)  # index into SECOND_BINS (upper edge)
    sample: list[float] = field(default_factory=list)  # a reservoir of active seconds
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    paid_tasks: Counter[str] = field(default_factory=Counter)  # expert -> paid tasks
    paid_seconds: dict[str, float] = field(default_factory=dict)  # expert -> active seconds

    def add(self, answered_at_ms: int, active_seconds: float) -> None:
        self.answered += 1
        self.by_minute[answered_at_ms // MINUTE_MS] += 1
        self.by_bin[bin_of(active_seconds)] += 1
        if len(self.sample) < SAMPLE:
            self.sample.append(active_seconds)
        else:  # reservoir sampling: every answer is in the sample with the same chance
            slot = self.rng.randrange(self.answered)
            if slot < SAMPLE:
                self.sample[slot] = active_seconds

    def span(self) -> tuple[int, int] | None:
        """First and last minute with an answer (ms since epoch)."""
        if not self.by_minute:
            return None
        return min(self.by_minute) * MINUTE_MS, (max(self.by_minute) + 1) * MINUTE_MS

    def cumulative(self, points: int) -> list[tuple[int, int]]:
        """(time ms, answers so far) at `points` evenly spaced moments across the span."""
        span = self.span()
        if span is None:
            return []
        start, end = span
        step = max(MINUTE_MS, math.ceil((end - start) / points / MINUTE_MS) * MINUTE_MS)
        per_step: Counter[int] = Counter()
        for minute, n in self.by_minute.items():
            per_step[(minute * MINUTE_MS - start) // step] += n
        total, found = 0, [(start, 0)]
        for index in range(max(per_step) + 1):
            total += per_step[index]
            found.append((min(end, start + (index + 1) * step), total))
        return found

    def hourly(self, hours: int) -> list[tuple[int, int]]:
        """(hour start ms, answers) for the last `hours` hours that had any work in them."""
        per_hour: Counter[int] = Counter()
        for minute, n in self.by_minute.items():
            per_hour[minute * MINUTE_MS // HOUR_MS] += n
        if not per_hour:
            return []
        last = max(per_hour)
        first = max(min(per_hour), last - hours + 1)
        return [(hour * HOUR_MS, per_hour[hour]) for hour in range(first, last + 1)]

    def seconds_histogram(self) -> list[tuple[float, float, int]]:
        """(low, high, answers) per log-spaced bin between the first and last bin used."""
        if not self.by_bin:
            return []
        low, high = min(self.by_bin), max(self.by_bin)
        return [(SECOND_BINS[i - 1] if i else 0.0, SECOND_BINS[i] if i < len(SECOND_BINS)
                 else math.inf, self.by_bin[i]) for i in range(low, high + 1)]


SAMPLE = 10_000  # quantiles come from a bounded uniform sample of the answers


def bin_of(seconds: float) -> int:
    for index, edge in enumerate(SECOND_BINS):
        if seconds <= edge:
            return index
    return len(SECOND_BINS)


def quantiles(values: list[float], shares: tuple[float, ...]) -> list[float]:
    ordered = sorted(values)
    if not ordered:
        return []
    return [ordered[min(len(ordered) - 1, int(share * len(ordered)))] for share in shares]


async def campaign_figures(ledger: Ledger, campaign_id: str) -> Figures:
    """One read of the log without items: answered tasks only (skips and flags are not work
    toward the target)."""
    figures = Figures()
    async for batch in task_records(ledger, campaign_id, with_items=False):
        for record in batch:
            if record.type in PAID:
                figures.paid_tasks[record.expert] += 1
                figures.paid_seconds[record.expert] = (
                    figures.paid_seconds.get(record.expert, 0.0) + record.active_seconds)
            if record.type != "answered":
                continue
            timing = record.payload.get("timing") or {}
            at = timing.get("answered_at")
            if isinstance(at, int):
                figures.add(at, record.active_seconds)
    return figures
