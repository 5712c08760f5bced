"""What the dashboard draws for one campaign: answers per time bucket, per hour, a histogram of
active seconds, and each expert's paid tasks and time (core/reports/tallies.py's FigureTally,
which the campaign's tallies carry, so the figures need no read of their own). Memory follows
the number of buckets, bins and experts, never the number of items or answers."""

from __future__ import annotations

import math
from collections import Counter

from core.provenance.ledger import Ledger
from core.reports.records import task_records
from core.reports.tallies import MINUTE_MS, SAMPLE, SECOND_BINS, FigureTally, bin_of

__all__ = ["SAMPLE", "SECOND_BINS", "Figures", "bin_of", "campaign_figures", "figures_from",
           "quantiles"]
HOUR_MS = 3_600_000


class Figures(FigureTally):
    """Counts by minute (answers over time), by active-seconds bin, and the kind's seconds."""

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


def quantiles(values: list[float], shares: tuple[float, ...]) -> list[float]:
    ordered = sorted(values)
    if not ordered:
        return []
    return [ordered[min(len(ordered) - 1, int(share * len(ordered)))] for share in shares]


def figures_from(tally: FigureTally) -> Figures:
    figures = Figures()
    figures.merge(tally)
    return figures


async def campaign_figures(ledger: Ledger, campaign_id: str) -> Figures:
    """One read of the log without items (a campaign's tallies carry these already)."""
    figures = Figures()
    async for batch in task_records(ledger, campaign_id, with_items=False,
                                    also=("adjudicated",)):
        for record in batch:
            figures.add_record(record)
    return figures
