"""The dashboard's models section: how experts treat each model's drafts (accepted as is,
edited and by how much, overridden), with acceptance and edit size per model over UTC days,
auto-accept's threshold beside its audit's override rate, and the drafting status of a
campaign whose models draft (an endpoint's error while paused)."""

from __future__ import annotations

from html import escape

from adapters.dashboard import charts
from core.domain.drafting import DraftingStatus
from core.reports.audit import AutoAcceptAudit
from core.reports.models import ModelsReport, ModelTreatment


def drafting_status(status: DraftingStatus | None, campaign_id: str) -> str:
    """Pending, drafted and failed items; when paused, the endpoint's own words and what to run
    once it is fixed (the key itself never reaches an error text)."""
    if status is None:
        return ""
    paused = (f'<p class="error drafting-paused" role="alert">Drafting paused: '
              f'{escape(status.paused)}. Fix the endpoint, then run <code>expertloop campaign '
              f'redraft {escape(campaign_id)}</code>.</p>' if status.paused else "")
    return (f'<section class="drafting"><h3>Drafting</h3><div class="tiles">'
            f'{_tile("drafts pending", status.pending)}{_tile("items drafted", status.drafted)}'
            f'{_tile("set aside", status.failed, "warn" if status.failed else "")}</div>'
            f'{paused}</section>')


def models_section(report: ModelsReport | None) -> str:
    if report is None or not report.models:
        return ""
    rows = "".join(_row(m) for m in report.models)
    accepted = [(m.name, [(d.day, d.acceptance_rate) for d in m.days
                          if d.acceptance_rate is not None]) for m in report.models]
    edits = [(m.name, [(d.day, d.edit_ratio.quartiles[1]) for d in m.days
                       if d.edit_ratio.quartiles]) for m in report.models]
    return f"""<section class="models"><h3>How experts treat each model's drafts</h3>
<table><thead><tr><th>model</th><th>made</th><th>shown</th><th>decided</th><th>accepted as is
</th><th>edited</th><th>overridden</th><th>none acceptable</th><th>flagged</th>
<th>edit size q1 / median / q3</th><th>median time</th><th>won / tied / lost</th></tr></thead>
<tbody>{rows}</tbody></table><div class="charts">
<figure><figcaption>Accepted as is, share of decisions per day (UTC)</figcaption>
{charts.daily_shares("acceptance", "Accepted as is per model and day", accepted)}</figure>
<figure><figcaption>Edit size per day (median edit ratio: edit distance ÷ draft length)
</figcaption>{charts.daily_shares("edits", "Median edit size per model and day", edits)}
</figure></div>{_stamps(report)}</section>"""


def _row(m: ModelTreatment) -> str:
    sizes = " / ".join(f"{q:.2f}" for q in m.edit_ratio.quartiles) or "–"
    wins = sum(v.wins for v in m.versus)
    ties = sum(v.ties for v in m.versus)
    losses = sum(v.losses for v in m.versus)
    record = f"{wins:,} / {ties:,} / {losses:,}" if m.versus else "–"
    share = "" if m.acceptance_rate is None else f" ({m.acceptance_rate:.0%})"
    seconds = "–" if m.median_decide_seconds is None else charts.duration(
        m.median_decide_seconds)
    return (f'<tr class="model-drafts"><td>{escape(m.name)}</td><td class="num">{m.made:,}</td>'
            f'<td class="num">{m.shown:,}</td><td class="num">{m.decided:,}</td>'
            f'<td class="num">{m.accepted:,}{share}</td><td class="num">{m.edited:,}</td>'
            f'<td class="num">{m.overridden:,}</td><td class="num">{m.none_acceptable:,}</td>'
            f'<td class="num">{m.flagged:,}</td><td class="num">{sizes}</td>'
            f'<td class="num">{seconds}</td><td class="num">{record}</td></tr>')


def _stamps(report: ModelsReport) -> str:
    listed = [e for e in report.experts if e.unread]
    if not listed:
        return ""
    names = ", ".join(f"{escape(e.expert)} ({e.unread} of {e.acceptances})" for e in listed)
    return (f'<p class="note rubber-stamps">Accepted faster than the draft could be read (at '
            f'{report.reading_chars_per_s:g} characters a second): {names}. Something to look '
            f'at, nothing happens automatically.</p>')


def _tile(name: str, value: int, tone: str = "") -> str:
    return (f'<div class="tile {tone}" data-name="{escape(name)}"><span>{escape(name)}</span>'
            f'<b>{value:,}</b></div>')


def audit_section(audit: AutoAcceptAudit | None) -> str:
    """What auto-accept lets through, measured: of the confident items the audit still sent to
    experts, the share an expert overrode."""
    if audit is None:
        return ""
    rate = "–" if audit.override_rate is None else f"{audit.override_rate:.1%}"
    tone = "" if audit.override_rate is None else "warn" if audit.override_rate > 0 else ""
    return (f'<section class="audit"><h3>Auto-accept</h3><div class="tiles">'
            f'{_text_tile("threshold", f"≥ {audit.confidence_at_least:g}")}'
            f'{_tile("accepted by the model", audit.auto_accepted)}'
            f'{_text_tile("audit sample", f"{audit.audit_rate:.0%}")}'
            f'{_tile("audited items judged", audit.judged)}'
            f'{_tile("overridden in audit", audit.overridden)}'
            f'{_text_tile("audit override rate", rate, tone)}</div>'
            f'<p class="note">Confident drafts are accepted without an expert, except a '
            f'deterministic audit sample that experts still judge; the override rate there is '
            f'what auto-accept lets through unseen.</p></section>')


def _text_tile(name: str, value: str, tone: str = "") -> str:
    return (f'<div class="tile {tone}" data-name="{escape(name)}"><span>{escape(name)}</span>'
            f'<b>{escape(value)}</b></div>')
