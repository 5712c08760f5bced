"""The dashboard's "Live asks" panel: the latest asks agents posted, newest first, with their
status, kind, question, who decided and how long ago they were asked. Read straight from Redis
on each page view (a bounded list, never the log), so it is as fresh as the page."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Protocol

from core.domain.asks import AskView

SHOWN = 20  # the API and `expertloop asks list` give the rest
QUESTION_CHARS = 120
SETTLED_WELL = {"approved", "edited", "answered"}
SETTLED_BADLY = {"rejected", "disagreed", "expired"}


class RecentAsks(Protocol):
    """What the panel reads: AskService.list."""

    async def list(self, limit: int = 100, status: str | None = None) -> list[AskView]: ...


def live_asks(views: list[AskView], now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    if not views:
        return ('<section class="asks" id="live-asks"><h3>Live asks</h3><p class="empty">No asks '
                'yet. Agents post them with <code>POST /api/asks</code> (docs/asks.md).</p>'
                '</section>')
    rows = "".join(_row(view, now) for view in views[:SHOWN])
    pending = sum(view.status == "pending" for view in views)
    return f"""<section class="asks" id="live-asks"><h3>Live asks</h3>
<p class="note">The {min(len(views), SHOWN)} latest, {pending} pending;
<code>expertloop asks list</code> lists them all.</p><table><thead><tr><th>status</th>
<th>kind</th><th>question</th><th>by</th><th>age</th><th>id</th></tr></thead>
<tbody>{rows}</tbody></table></section>"""


def _row(view: AskView, now: datetime) -> str:
    question = view.question if len(view.question) <= QUESTION_CHARS else \
        view.question[:QUESTION_CHARS - 1] + "…"
    waiting = (f' <small class="note">{escape(view.waiting)}</small>'
               if view.status == "pending" and view.waiting else "")
    return (f'<tr class="ask {escape(view.status)}"><td>{_badge(view.status)}{waiting}</td>'
            f'<td>{escape(view.kind)}</td><td>{escape(question)}</td>'
            f'<td>{escape(", ".join(view.by)) or "–"}</td>'
            f'<td class="num">{_age(view.created_at, now)}</td>'
            f'<td><code>{escape(view.id)}</code></td></tr>')


def _badge(status: str) -> str:
    tone = "active" if status in SETTLED_WELL else "warn" if status in SETTLED_BADLY else ""
    return f'<span class="badge {tone}">{escape(status)}</span>'


def _age(created_at: str, now: datetime) -> str:
    try:
        seconds = (now - datetime.fromisoformat(created_at)).total_seconds()
    except (ValueError, TypeError):
        return "–"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{max(int(seconds), 0)} s"
