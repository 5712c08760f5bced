"""Server-drawn SVG charts: no script, no chart library, no network. Each takes aggregated
numbers (a few hundred points at most) and returns one `<svg>` element; text is escaped."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import NamedTuple

W, H = 560, 200  # the drawing's own units; CSS scales it to the column's width
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28
Scale = Callable[[float], float]


class Box(NamedTuple):
    """A distribution drawn as a box: p10-p90 whiskers, p25-p75 box, the median line."""

    label: str
    p10: float
    p25: float
    p50: float
    p75: float
    p90: float
    count: int


class Interval(NamedTuple):
    label: str
    value: float
    low: float | None
    high: float | None


def _svg(name: str, label: str, inner: str, height: int = H) -> str:
    return (f'<svg class="chart {name}" role="img" viewBox="0 0 {W} {height}" '
            f'preserveAspectRatio="xMinYMin meet"><title>{escape(label)}</title>{inner}</svg>')


def _empty(name: str, label: str) -> str:
    return _svg(name, label, f'<text class="empty" x="{W / 2}" y="{H / 2}" '
                             'text-anchor="middle">no answers yet</text>')


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(math.ceil(top / step - 1e-9) + 1)]


def number(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:g}"


def _y_axis(ticks: list[float], y: Scale, right: float = W - RIGHT) -> str:
    return "".join(f'<line class="grid" x1="{LEFT}" x2="{right}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
                   f'<text class="tick" x="{LEFT - 6}" y="{y(t) + 4:.1f}" text-anchor="end">'
                   f'{number(t)}</text>' for t in ticks)


def _when(ms: int, span_ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%H:%M" if span_ms <= 86_400_000 else "%d %b %H:%M")


def progress(points: Sequence[tuple[int, int]], target: int) -> str:
    """Answers so far against the target (items x overlap), over time."""
    label = f"Answers over time against the target of {target:,}"
    if len(points) < 2:
        return _empty("progress", label)
    start, end = points[0][0], points[-1][0]
    top = max(target, points[-1][1], 1)
    ticks = nice_ticks(top)
    x = _scale(start, max(end, start + 1), LEFT, W - RIGHT)
    y = _scale(0, ticks[-1], H - BOTTOM, TOP)
    line = " ".join(f"{x(t):.1f},{y(n):.1f}" for t, n in points)
    area = f"{x(start):.1f},{y(0):.1f} {line} {x(end):.1f},{y(0):.1f}"
    inner = (_y_axis(ticks, y) +
             f'<polygon class="area" points="{area}"/><polyline class="line" points="{line}"/>'
             f'<line class="target" x1="{LEFT}" x2="{W - RIGHT}" y1="{y(target):.1f}" '
             f'y2="{y(target):.1f}"/><text class="target-label" x="{W - RIGHT}" '
             f'y="{y(target) - 4:.1f}" text-anchor="end">target {target:,}</text>' +
             _time_labels(start, end, x))
    return _svg("progress", label, inner)


def _time_labels(start: int, end: int, x: Scale) -> str:
    span = end - start
    return "".join(f'<text class="tick" x="{x(t):.1f}" y="{H - 8}" text-anchor="{anchor}">'
                   f'{_when(t, span)}</text>'
                   for t, anchor in ((start, "start"), ((start + end) // 2, "middle"),
                                     (end, "end")))


def hourly(bars: Sequence[tuple[int, int]]) -> str:
    """Answers per hour, one bar per hour (the last few days at most)."""
    label = "Answers per hour"
    if not bars:
        return _empty("throughput", label)
    ticks = nice_ticks(max(n for _, n in bars))
    y = _scale(0, ticks[-1], H - BOTTOM, TOP)
    width = (W - LEFT - RIGHT) / len(bars)
    rects = "".join(
        f'<rect class="bar" x="{LEFT + i * width + 1:.1f}" y="{y(n):.1f}" '
        f'width="{max(width - 2, 1):.1f}" height="{y(0) - y(n):.1f}"><title>'
        f'{_when(hour, 0)}–{_when(hour + 3_600_000, 0)} UTC: {n:,} answers</title></rect>'
        for i, (hour, n) in enumerate(bars))
    first, last = bars[0][0], bars[-1][0] + 3_600_000
    x = _scale(first, last, LEFT, W - RIGHT)
    return _svg("throughput", label, _y_axis(ticks, y) + rects + _time_labels(first, last, x))


def histogram(bins: Sequence[tuple[float, float, int]], marks: Sequence[tuple[str, float]]
              ) -> str:
    """Answers by active seconds on log-spaced bins; `marks` are labelled vertical lines."""
    label = "Active time per task"
    if not bins:
        return _empty("seconds", label)
    ticks = nice_ticks(max(n for _, _, n in bins))
    y = _scale(0, ticks[-1], H - BOTTOM, TOP)
    low = math.log10(max(bins[0][0], 0.5))
    high = math.log10(bins[-1][1] if math.isfinite(bins[-1][1]) else bins[-1][0] * 1.33)
    x = _scale(low, high, LEFT, W - RIGHT)

    def at(seconds: float) -> float:
        return float(x(math.log10(min(max(seconds, 10 ** low), 10 ** high))))

    rects = "".join(
        f'<rect class="bar" x="{at(a) + 0.5:.1f}" y="{y(n):.1f}" '
        f'width="{max(at(b) - at(a) - 1, 1):.1f}" height="{y(0) - y(n):.1f}"><title>'
        f'{duration(a)}–{duration(b)}: {n:,} answers</title></rect>' for a, b, n in bins)
    lines = "".join(
        f'<line class="mark {escape(name)}" x1="{at(s):.1f}" x2="{at(s):.1f}" y1="{TOP}" '
        f'y2="{H - BOTTOM}"/><text class="mark-label" x="{at(s) + 3:.1f}" y="{TOP + 10 + 12 * i}">'
        f'{escape(name)} {duration(s)}</text>' for i, (name, s) in enumerate(marks))
    axis = "".join(f'<text class="tick" x="{at(s):.1f}" y="{H - 8}" text-anchor="middle">'
                   f'{duration(s)}</text>' for s in (1, 10, 60, 600, 3600)
                   if 10 ** low <= s <= 10 ** high)
    return _svg("seconds", label, _y_axis(ticks, y) + rects + lines + axis)


def boxes(rows: Sequence[Box]) -> str:
    """One horizontal box per row on a shared log axis of seconds."""
    label = "Active time per task, by kind"
    if not rows:
        return _empty("kinds", label)
    height = TOP + BOTTOM + 30 * len(rows)
    low = math.log10(max(min(r.p10 for r in rows), 0.5))
    high = math.log10(max(max(r.p90 for r in rows), 10 ** low * 10))
    x = _scale(low, high, LEFT + 60, W - RIGHT)

    def at(seconds: float) -> float:
        return float(x(math.log10(max(seconds, 10 ** low))))

    parts = []
    for i, r in enumerate(rows):
        mid = TOP + 30 * i + 15
        parts.append(
            f'<g class="box"><title>{escape(r.label)}: median {duration(r.p50)}, middle half '
            f'{duration(r.p25)}–{duration(r.p75)}, {r.count:,} answers</title>'
            f'<text class="tick" x="{LEFT + 52}" y="{mid + 4}" text-anchor="end">'
            f'{escape(r.label)}</text>'
            f'<line class="whisker" x1="{at(r.p10):.1f}" x2="{at(r.p90):.1f}" y1="{mid}" '
            f'y2="{mid}"/><rect class="iqr" x="{at(r.p25):.1f}" y="{mid - 9}" '
            f'width="{max(at(r.p75) - at(r.p25), 1):.1f}" height="18"/>'
            f'<line class="median" x1="{at(r.p50):.1f}" x2="{at(r.p50):.1f}" y1="{mid - 9}" '
            f'y2="{mid + 9}"/></g>')
    axis = "".join(f'<text class="tick" x="{at(s):.1f}" y="{height - 8}" text-anchor="middle">'
                   f'{duration(s)}</text>' for s in (1, 10, 60, 600, 3600)
                   if 10 ** low <= s <= 10 ** high)
    return _svg("kinds", label, "".join(parts) + axis, height)


def intervals(rows: Sequence[Interval]) -> str:
    """A forest plot: each model's score as a dot with its confidence interval as a line."""
    label = "Model scores with bootstrap confidence intervals"
    if not rows:
        return _empty("intervals", label)
    height = TOP + BOTTOM + 26 * len(rows)
    values = [v for r in rows for v in (r.value, r.low, r.high) if v is not None]
    low, high = min(values), max(values)
    pad = (high - low) * 0.05 or 0.5
    x = _scale(low - pad, high + pad, LEFT + 110, W - RIGHT)
    parts = []
    for i, r in enumerate(rows):
        mid = TOP + 26 * i + 13
        whisker = (f'<line class="ci" x1="{x(r.low):.1f}" x2="{x(r.high):.1f}" y1="{mid}" '
                   f'y2="{mid}"/>' if r.low is not None and r.high is not None else "")
        parts.append(f'<g class="model"><text class="tick" x="{LEFT + 102}" y="{mid + 4}" '
                     f'text-anchor="end">{escape(_short(r.label))}</text>{whisker}'
                     f'<circle class="point" cx="{x(r.value):.1f}" cy="{mid}" r="4"/></g>')
    axis = "".join(f'<text class="tick" x="{x(v):.1f}" y="{height - 8}" text-anchor="middle">'
                   f'{v:.2f}</text>' for v in (low, (low + high) / 2, high))
    return _svg("intervals", label, "".join(parts) + axis, height)


def daily_shares(name: str, label: str,
                 series: Sequence[tuple[str, Sequence[tuple[str, float]]]]) -> str:
    """One line per series over UTC days, on a 0-1 axis (a share, or an edit's size): each
    point a dot with its day and value on hover, the series named in a legend on the right."""
    days = sorted({day for _, points in series for day, _ in points})
    if not days:
        return _empty(name, label)
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    right = W - RIGHT - 110
    y = _scale(0, 1, H - BOTTOM, TOP)
    x = _scale(0, max(len(days) - 1, 1), LEFT + 8, right - 8)
    at = {day: x(i) if len(days) > 1 else (LEFT + right) / 2 for i, day in enumerate(days)}
    parts = []
    for i, (title, points) in enumerate(series):
        line = " ".join(f"{at[day]:.1f},{y(value):.1f}" for day, value in points)
        dots = "".join(f'<circle class="point" cx="{at[day]:.1f}" cy="{y(value):.1f}" r="3">'
                       f'<title>{escape(title)} {day}: {value:.2f}</title></circle>'
                       for day, value in points)
        parts.append(f'<g class="series s{i % 6}"><polyline class="line" points="{line}"/>'
                     f'{dots}<text class="legend" x="{right + 6}" y="{TOP + 12 + 14 * i}">'
                     f'{escape(_short(title))}</text></g>')
    labels = "".join(f'<text class="tick" x="{at[day]:.1f}" y="{H - 8}" text-anchor="middle">'
                     f'{day[5:]}</text>' for day in (days[0], days[-1]))
    return _svg(name, label, _y_axis(ticks, y, right) + "".join(parts) + labels)


def _short(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "∞"
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s".replace(".0s", "s")
    if seconds < 3600:
        return f"{seconds / 60:.0f}m" if seconds >= 600 else f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _scale(d0: float, d1: float, r0: float, r1: float) -> Scale:
    span = (d1 - d0) or 1.0
    return lambda v: r0 + (v - d0) / span * (r1 - r0)
