"""The dashboard's HTML, server-rendered; every value from outside goes through `escape`.
Everything shown is aggregated: tiles, charts and one row per expert or model, never per item."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from html import escape

from adapters.dashboard import charts
from adapters.dashboard.drafts import audit_section, drafting_status, models_section
from adapters.dashboard.figures import quantiles
from adapters.dashboard.panels import Panel, Shown
from core.domain.kinds import Kind
from core.reports.pay import PayLine
from core.reports.quality import Alpha, ExpertQuality

EXPERT_ROWS = 50  # the rest are summarised; the API and CLI give the full list
HOURS = 72  # throughput bars for the last three days with work
POINTS = 120  # points on the progress line
LEADERBOARD_KINDS = (Kind.pairwise, Kind.rank)


def page(shown: list[Shown], *, signed_in: bool, built_seconds: float,
         notice: tuple[str, str] | None = None, form_key: str = "", live: str = "") -> str:
    """`live`: the live asks panel (adapters/dashboard/asks.py), when the app has asks."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    logout = ('<form method="post" action="/logout"><button>Sign out</button></form>'
              if signed_in else "")
    panels = [s.panel for s in shown if s.panel is not None]
    building = sum(s.building for s in shown)
    reading = (f'<span class="badge warn">reading {building} log(s); refreshes itself</span>'
               if building else "")
    body = "".join(campaign(s.panel, form_key) if s.panel else pending(s)
                   for s in shown) or (
        '<p class="empty">No campaigns yet. Post one with <code>expertloop campaign post '
        'FILE</code> or <code>POST /api/campaigns</code>.</p>')
    return _document("expertloop · dashboard", f"""
<header class="bar"><strong>expertloop</strong><span class="what">coordinator dashboard</span>
{reading}<span class="stamp">{stamp} · page in {built_seconds:.2f} s</span>{logout}</header>
<main>{_notice(notice)}{overview(panels)}{live}{_index(shown)}{body}</main>""",
                     refresh=10 if building else None)


def _notice(notice: tuple[str, str] | None) -> str:
    """The outcome of the last action (sent to adjudication, or why not), once."""
    if notice is None:
        return ""
    tone, text = notice
    role = "alert" if tone == "error" else "status"
    return f'<p class="notice {escape(tone)}" role="{role}">{escape(text)}</p>'


def adjudicate_form(campaign_id: str, adjudicate: bool, form_key: str) -> str:
    """Send any item to an adjudicator (the API's POST /api/campaigns/{id}/adjudicate)."""
    ident = escape(campaign_id)
    note = ("" if adjudicate else '<p class="note">This campaign has <code>adjudicate: false'
            '</code>: an item sent waits until the campaign offers adjudicators work.</p>')
    return (f'<form class="adjudicate" method="post" action="/campaigns/{ident}/adjudicate">'
            f'<input type="hidden" name="key" value="{escape(form_key)}">'
            f'<label>Send an item to adjudication <input name="item" required '
            f'placeholder="item id" autocomplete="off"></label><button>Send</button></form>'
            f'{note}')


def overview(panels: list[Panel]) -> str:
    answers = sum(p.status.answers for p in panels)
    target = sum(p.target for p in panels)
    experts = len({e.expert for p in panels for e in p.quality.experts})
    listed = sum(e.listed_fast for p in panels for e in p.quality.experts)
    tiles = (_tile("campaigns", f"{len(panels):,}") + _tile("answers", f"{answers:,}") +
             _tile("target", f"{target:,}") + _tile("experts", f"{experts:,}") +
             _tile("experts to check", f"{listed:,}", "warn" if listed else ""))
    return (f'<section class="overview"><div class="tiles">{tiles}</div>'
            f'<figure><figcaption>Active time per task, by kind (p10–p90, middle half, median)'
            f'</figcaption>{charts.boxes(kind_boxes(panels))}</figure></section>')


def kind_boxes(panels: list[Panel]) -> list[charts.Box]:
    samples: dict[str, list[float]] = defaultdict(list)
    for p in panels:
        samples[p.campaign.spec.kind.value] += p.figures.sample
    rows = []
    for kind in sorted(samples):
        if samples[kind]:
            q = quantiles(samples[kind], (0.1, 0.25, 0.5, 0.75, 0.9))
            rows.append(charts.Box(kind, *q, count=sum(
                p.figures.answered for p in panels if p.campaign.spec.kind.value == kind)))
    return rows


def _index(shown: list[Shown]) -> str:
    if len(shown) < 2:
        return ""
    links = "".join(f'<a href="#c-{escape(s.status.id)}">{escape(s.status.title)}</a>'
                    for s in shown)
    return f'<nav class="index">{links}</nav>'


def pending(shown: Shown) -> str:
    """A campaign whose first panel is still being read from the log (or failed to be)."""
    s = shown.status
    what = (f"Could not read this campaign's log: {shown.error}" if shown.error and
            not shown.building else f"Reading this campaign's log ({s.answers:,} answers)…")
    return f"""
<section class="campaign pending" id="c-{escape(s.id)}" data-kind="{s.kind.value}">
<header><h2>{escape(s.title)}</h2><code>{escape(s.id)}</code>
<span class="badge kind">{s.kind.value}</span><span class="badge state {s.state.value}">
{s.state.value}</span></header><div class="tiles">{_tile("answers", f"{s.answers:,}")}
{_tile("items done", f"{s.done:,} / {s.items:,}")}{_tile("in progress", f"{s.in_progress:,}")}
</div><p class="note">{escape(what)}</p></section>"""


def campaign(p: Panel, form_key: str = "") -> str:
    s, q, spec = p.status, p.quality, p.campaign.spec
    share = min(1.0, s.answers / p.target) if p.target else 0.0
    marks = [(name, v) for name, v in (("median", q.median_seconds),
                                       ("fast below", q.fast_below_seconds)) if v is not None]
    leaderboard_html = leaderboard(p) if spec.kind in LEADERBOARD_KINDS else ""
    return f"""
<section class="campaign" id="c-{escape(p.campaign.id)}" data-kind="{spec.kind.value}">
<header><h2>{escape(s.title)}</h2><code>{escape(p.campaign.id)}</code>
<span class="badge kind">{spec.kind.value}</span><span class="badge state {s.state.value}">
{s.state.value}</span></header>
<div class="meter" title="{s.answers:,} of {p.target:,} answers">
<span style="width:{share * 100:.1f}%"></span></div>
<div class="tiles">{_tiles(p, share)}</div>
<div class="charts">
<figure><figcaption>Answers against target ({s.items:,} items × overlap {spec.overlap_min})
</figcaption>{charts.progress(p.figures.cumulative(POINTS), p.target)}</figure>
<figure><figcaption>Answers per hour (UTC, last {HOURS} h with work)</figcaption>
{charts.hourly(p.figures.hourly(HOURS))}</figure>
<figure><figcaption>Active time per task ({spec.kind.value}); answers under
{_secs(q.fast_below_seconds)} count as fast</figcaption>
{charts.histogram(p.figures.seconds_histogram(), marks)}</figure>
</div>{drafting_status(s.drafting, p.campaign.id)}{leaderboard_html}{models_section(p.models)}
{audit_section(p.models.audit if p.models else None)}{experts(p)}
{adjudicate_form(p.campaign.id, spec.adjudicate, form_key)}
<p class="note">Figures from the provenance log up to event {p.seq:,}, read in
{p.build_seconds:.2f} s.</p></section>"""


def _tiles(p: Panel, share: float) -> str:
    s, q = p.status, p.quality
    correct, gold = p.gold
    gold_text = f"{correct / gold:.0%}" if gold else "–"
    tiles = [_tile("answered", f"{s.answers:,} / {p.target:,}", sub=f"{share:.0%}"),
             _tile("items done", f"{s.done:,} / {s.items:,}"),
             _tile("in progress", f"{s.in_progress:,}")]
    tiles += [_alpha_tile(a) for a in q.alpha]
    tiles += [_tile("gold accuracy", gold_text,
                    sub=f"{gold:,} gold answers" if gold else "no gold answers yet",
                    tone=_tone(correct / gold, 0.9, 0.75) if gold else ""),
              _tile("median time", _secs(q.median_seconds)),
              _tile("flagged", f"{s.flagged:,}", "warn" if s.flagged else ""),
              _tile("none acceptable", f"{s.none_acceptable:,}"),
              _tile("skipped", f"{s.skipped:,}"), _tile("tied majorities", f"{p.ties:,}")]
    if p.campaign.spec.adjudicate or s.awaiting_adjudication or s.adjudicated:
        tiles += [_tile("awaiting adjudication", f"{s.awaiting_adjudication:,}",
                        sub="waits for an adjudicator; not an error"),
                  _tile("adjudicated", f"{s.adjudicated:,}")]
    if p.pay.currency:
        tiles.append(_tile("pay so far", f"{p.pay.total:,.2f} {p.pay.currency}",
                           sub=f"top-ups {p.pay.top_up:,.2f}"))
    return "".join(tiles)


def _alpha_tile(alpha: Alpha) -> str:
    """Krippendorff's guide: at least 0.8 to rely on, 0.667 for tentative conclusions."""
    if alpha.value is None:
        return _tile(f"alpha ({alpha.distance})", "–", sub="too few overlapping answers")
    return _tile(f"alpha ({alpha.distance})", f"{alpha.value:.3f}", sub=f"{alpha.units:,} units",
                 tone=_tone(alpha.value, 0.8, 0.667))


def leaderboard(p: Panel) -> str:
    board = p.quality.leaderboard
    if not board:
        return ('<section class="leaderboard"><h3>Model leaderboard</h3><p class="empty">'
                'Not enough comparisons between different models yet.</p></section>')
    rows = "".join(
        f'<tr class="model"><td>{m.rank}</td><td>{escape(m.model)}</td>'
        f'<td class="num">{m.score:.3f}</td><td class="num">{_interval(m.low, m.high)}</td>'
        f'<td class="num">{m.matches:,}</td><td class="num">{m.wins:,} / {m.ties:,} / '
        f'{m.losses:,}</td></tr>' for m in board)
    chart = charts.intervals([charts.Interval(m.model, m.score, m.low, m.high) for m in board])
    return f"""<section class="leaderboard"><h3>Model leaderboard</h3>
<p class="note">Bradley-Terry scores of the models behind the drafts, with
{p.quality.bootstrap_resamples} bootstrap resamples (95% percentile intervals). Experts judged
the drafts blind; this view unblinds them.</p><div class="split"><table><thead><tr><th>#</th>
<th>model</th><th>score</th><th>interval</th><th>matches</th><th>won / tied / lost</th></tr>
</thead><tbody>{rows}</tbody></table><figure>{chart}</figure></div></section>"""


def experts(p: Panel) -> str:
    people = sorted(p.quality.experts, key=lambda e: (not e.listed_fast, -e.answers, e.expert))
    if not people:
        return ""
    rows = "".join(_expert_row(e, p) for e in people[:EXPERT_ROWS])
    notes = sorted({line.rate_note for e in people[:EXPERT_ROWS]
                    if (line := p.pay_by_expert.get(e.expert)) and line.rate_note})
    unrated = "".join(f" Effective hourly —: {escape(note)}; the pay itself is exact."
                      for note in notes)
    more = len(people) - EXPERT_ROWS
    rest = (f'<p class="note">{more:,} more experts; <code>expertloop campaign quality '
            f'{escape(p.campaign.id)}</code> lists them all.</p>' if more > 0 else "")
    currency = escape(p.pay.currency or "")
    return f"""<section class="experts"><h3>Experts</h3><table><thead><tr><th>expert</th>
<th>tasks</th><th>median time</th><th>effective hourly {currency}</th><th>agreement</th>
<th>gold</th><th>fast answers</th></tr></thead><tbody>{rows}</tbody></table>{rest}
<p class="note">Agreement: share of items where the expert matches the other experts'
majority. Fast: under 40% of the campaign's median time; an expert with 3 of their last 10
answers fast is marked to look at, nothing happens automatically.{unrated}</p></section>"""


def _expert_row(e: ExpertQuality, p: Panel) -> str:
    line = p.pay_by_expert.get(e.expert)
    topped = ' <span class="badge">topped up</span>' if line and line.top_up > 0 else ""
    gold = f"{e.gold_accuracy:.0%} of {e.gold_answers}" if e.gold_accuracy is not None else "–"
    flag = (f'<span class="badge warn">check: {e.fast_in_last_10} of last 10</span>'
            if e.listed_fast else f"{e.fast_answers:,}")
    if e.unread_acceptances:
        flag += (f' <span class="badge unread" title="drafts accepted faster than they could be '
                 f'read">{e.unread_acceptances:,} accepted unread</span>')
    return (f'<tr class="expert{" listed" if e.listed_fast else ""}">'
            f'<td>{escape(e.expert)}</td><td class="num">{e.answers:,}</td>'
            f'<td class="num">{_secs(e.median_seconds)}</td>'
            f'<td class="num">{_hourly(line)}{topped}</td>'
            f'<td class="num">{_share(e.agreement)}</td><td class="num">{gold}</td>'
            f'<td class="num">{flag}</td></tr>')


def _hourly(line: PayLine | None) -> str:
    """A rate over seconds is no rate: a dash with the reason on hover, not a wild figure."""
    if line is not None and line.rate_note:
        return f'<span class="unrated" title="{escape(line.rate_note)}">—</span>'
    hourly = line.effective_hourly if line else None
    return "–" if hourly is None else f"{hourly:,.2f}"


def login(message: str = "") -> str:
    note = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    return _document("expertloop · sign in", f"""
<main class="login"><form method="post" action="/login"><h1>expertloop</h1>
<p>The coordinator dashboard needs the API token (<code>EXPERTLOOP_API_TOKEN</code>).</p>{note}
<label>API token <input type="password" name="token" autocomplete="current-password"
autofocus required></label><button>Sign in</button></form></main>""")


def _document(title: str, body: str, refresh: int | None = None) -> str:
    again = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{again}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/static/dashboard.css"></head>
<body>{body}</body></html>"""


def _tile(name: str, value: str, tone: str = "", sub: str = "") -> str:
    small = f"<small>{escape(sub)}</small>" if sub else ""
    return (f'<div class="tile {tone}" data-name="{escape(name)}"><span>{escape(name)}</span>'
            f'<b>{escape(value)}</b>{small}</div>')


def _tone(value: float, good: float, fair: float) -> str:
    return "good" if value >= good else "fair" if value >= fair else "poor"


def _interval(low: float | None, high: float | None) -> str:
    return "–" if low is None or high is None else f"{low:.3f} – {high:.3f}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _secs(value: float | None) -> str:
    return "–" if value is None else charts.duration(value)
