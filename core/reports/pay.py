"""Fair pay from measured time: per task or per hour, and a top-up whenever an expert's effective
hourly pay falls below the campaign's floor, so a slow, careful expert is never underpaid."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pydantic import BaseModel

from core.domain.campaigns import Campaign
from core.provenance.ledger import Ledger
from core.reports.history import history_of
from core.reports.tallies import PAID, FigureTally

if TYPE_CHECKING:
    from core.ports import History

__all__ = ["PAID", "PayLine", "PayReport", "campaign_pay", "pay_csv", "pay_from", "price"]
CSV_FIELDS = ("campaign", "expert", "currency", "basis", "rate", "tasks", "active_seconds",
              "hours", "base", "effective_hourly", "min_hourly", "top_up", "total", "rate_note")
RATE_MIN_SECONDS = 60  # pay over less measured time than this is not an hourly rate
SHORT_TIME_NOTE = "under a minute measured: no hourly rate"


class PayLine(BaseModel):
    """One expert's pay for one campaign. `active_seconds` is the recorded active time, each
    task already capped at the campaign's time limit."""

    campaign: str
    expert: str
    currency: str
    basis: str  # per_task | per_hour | none
    rate: float
    tasks: int = 0
    active_seconds: float = 0.0
    hours: float = 0.0
    base: float = 0.0
    effective_hourly: float | None = None
    rate_note: str | None = None  # why there is no effective_hourly though there is pay
    min_hourly: float | None = None
    top_up: float = 0.0
    total: float = 0.0


class PayReport(BaseModel):
    campaign: str
    currency: str
    basis: str
    lines: list[PayLine]
    base: float
    top_up: float
    total: float


async def campaign_pay(ledger: Ledger, campaign: Campaign, *,
                       history: History | None = None) -> PayReport:
    """Price each expert's work (answers, flags, an adjudicator's final calls) from the
    campaign's tallies (`history`; the plain reader of the ledger when None)."""
    tallies = await history_of(ledger, history).tallies(campaign)
    return pay_from(tallies.figures, campaign)


def pay_from(tally: FigureTally, campaign: Campaign) -> PayReport:
    seconds = tally.paid_seconds
    lines = [price(campaign, expert, tally.paid_tasks[expert], seconds[expert])
             for expert in sorted(tally.paid_tasks)]
    pay = campaign.spec.pay
    return PayReport(campaign=campaign.id, currency=pay.currency if pay else "",
                     basis=lines[0].basis if lines else _basis(campaign), lines=lines,
                     base=_cents(sum(line.base for line in lines)),
                     top_up=_cents(sum(line.top_up for line in lines)),
                     total=_cents(sum(line.total for line in lines)))


def price(campaign: Campaign, expert: str, tasks: int, active_seconds: float) -> PayLine:
    pay = campaign.spec.pay
    hours = active_seconds / 3600
    line = PayLine(campaign=campaign.id, expert=expert, currency=pay.currency if pay else "",
                   basis=_basis(campaign), rate=0.0, tasks=tasks,
                   active_seconds=round(active_seconds, 3), hours=round(hours, 4))
    if pay is None:
        return line
    line.rate = pay.per_task if pay.per_task is not None else float(pay.per_hour or 0.0)
    base = line.rate * tasks if pay.per_task is not None else line.rate * hours
    line.base = _cents(base)
    line.effective_hourly, line.rate_note = _hourly(base, active_seconds)
    line.min_hourly = pay.min_hourly
    if pay.min_hourly is not None and hours > 0 and base < pay.min_hourly * hours:
        line.top_up = _cents(pay.min_hourly * hours - base)
    line.total = _cents(line.base + line.top_up)
    return line


def _hourly(base: float, active_seconds: float) -> tuple[float | None, str | None]:
    """Two keyboard answers timed at 0 s earned 337,500 an hour: a figure, not a rate. Below
    a minute of measured time there is no rate to show, only the reason."""
    if active_seconds < RATE_MIN_SECONDS:
        return None, SHORT_TIME_NOTE
    return _cents(base / (active_seconds / 3600)), None


def pay_csv(report: PayReport) -> Iterator[str]:
    """The payout ledger, one CSV line at a time (header first)."""
    yield _csv_line(CSV_FIELDS)
    for line in report.lines:
        values = line.model_dump()
        yield _csv_line(tuple("" if values[f] is None else values[f] for f in CSV_FIELDS))


def _csv_line(values: tuple[object, ...]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def _basis(campaign: Campaign) -> str:
    pay = campaign.spec.pay
    if pay is None:
        return "none"
    return "per_task" if pay.per_task is not None else "per_hour"


def _cents(amount: float) -> float:
    return round(amount + 1e-9, 2)
