"""HTML for the web chat, server-rendered; every value from outside goes through `escape`."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from adapters.web import asks
from core.domain.answers import Outcome
from core.domain.asks import is_ask_token
from core.domain.cards import Card
from core.domain.experts import Expert, ExpertStats
from core.domain.hard_cases import RATIONALE_CHARS
from core.domain.items import Turn
from core.domain.media import CardImage

RECORDED = {
    "pairwise": "your choice", "rank": "your ranking", "rate": "your rating",
    "correct": "your correction", "verify": "your verdict", "label": "your labels",
    "write": "your answer", "skip": "a skip", "none_acceptable": "none acceptable",
    "flag": "your flag",
}


def page(expert: Expert, token: str, csrf: str, current: str) -> str:
    name = escape(expert.name)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>expertloop · {name}</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/chat/static/chat.css"></head>
<body data-token="{escape(token)}" data-csrf="{escape(csrf)}">
<header class="bar"><strong>expertloop</strong><span class="who">{name}</span>
<button type="button" id="stats-button" aria-controls="stats">My stats</button>
<button type="button" id="pause-button">{"Resume" if expert.paused else "Pause"}</button></header>
<aside id="stats" hidden></aside>
<main id="chat"><div id="log" aria-live="polite"></div><div id="current">{current}</div></main>
<script src="/chat/static/chat.js"></script></body></html>"""


def card(card: Card, token: str, csrf: str, image_urls: Sequence[str] = (),
         now_ms: int | None = None) -> str:
    """`image_urls`: the signed link of each of the card's images, in its order; `now_ms`: when
    it is shown, for a live ask's time left."""
    drafts = "".join(
        f'<section class="draft" data-label="{d.label}"><h3>{d.label}</h3>'
        f'<div class="text">{escape(d.text)}</div></section>' for d in card.drafts)
    title = ("Final call: " if card.adjudication else "") + card.title
    controls = CONTROLS[card.kind.value](card) + rationale_field(card)
    others = "" if card.ask is not None else _others(card, token, csrf)  # an ask wants a call
    return f"""<article class="card" id="card" data-lease="{escape(card.lease)}"
 data-kind="{card.kind.value}" data-campaign="{escape(card.campaign)}">
<header><h2>{escape(title)}</h2>{_under_title(card, now_ms)}</header>
{images(card.images, image_urls)}{_instructions(card)}
{prompt(card.prompt)}<div class="drafts">{drafts}</div>{prior_answers(card)}{asks.proposal(card)}
{_form(card, token, csrf, controls)}
{others}</article>"""


def _under_title(card: Card, now_ms: int | None) -> str:
    """A live ask says who asks, by when and for what pay; a task, what it takes."""
    if card.ask is not None:
        return asks.header(card.ask, now_ms)
    estimate = f"~{max(1, round(card.estimate.seconds / 60))} min"
    if card.estimate.pay is not None:
        estimate += f" · {card.estimate.pay:.2f} {escape(card.estimate.currency or '')}"
    if card.estimate.pilot:
        estimate += " (estimate)"
    return f'<span class="estimate">{estimate}</span>'


def _instructions(card: Card) -> str:
    if card.ask is not None and not card.instructions.strip():
        return ""
    return (f'<details class="instructions"><summary>Instructions</summary>'
            f"<div>{escape(card.instructions)}</div></details>")


def images(shown: Sequence[CardImage], urls: Sequence[str]) -> str:
    """The item's images at the top of the card, each with its alt text under it; a tap opens
    the full size (the same signed link). Width and height are given so the card does not jump
    as they load."""
    figures = "".join(
        f'<figure><a href="{escape(url)}" target="_blank" rel="noopener">'
        f'<img src="{escape(url)}" alt="{escape(image.alt)}" width="{image.width}"'
        f' height="{image.height}"></a><figcaption>{escape(image.alt)}</figcaption></figure>'
        for image, url in zip(shown, urls, strict=True))
    return f'<div class="images">{figures}</div>' if figures else ""


def rationale_field(card: Card) -> str:
    """One line of why under the buttons; the server refuses a missing required one anyway."""
    if card.rationale == "none":
        return ""
    need = card.rationale == "required"
    hint = "Why? One line (required)" if need else "Why? One line (optional)"
    # An override's own reason stands in for it, so the browser must not demand both.
    check = " required" if need and card.kind.value != "verify" else ""
    return (f'<label class="rationale">{"Your reason" if need else "Reason"}'
            f'<input name="rationale" maxlength="{RATIONALE_CHARS}" autocomplete="off"'
            f' placeholder="{hint}"{check}></label>')


def prior_answers(card: Card) -> str:
    """An adjudication shows the earlier answers unblinded: who said what, and why."""
    if not card.adjudication:
        return ""
    rows = "".join(
        f'<li><strong class="who">{escape(p.expert)}</strong>: '
        f'<span class="said">{escape(p.decision)}</span>'
        + (f' <q class="why">{escape(p.rationale)}</q>' if p.rationale else "") + "</li>"
        for p in card.prior) or "<li>No earlier answers.</li>"
    return (f'<section class="prior" aria-label="earlier answers"><h3>Final call. The earlier '
            f'answers (yours needs one line on why):</h3><ul>{rows}</ul></section>')


def prompt(value: str | list[Turn]) -> str:
    """A plain prompt as one block; a conversation as chat bubbles, each labelled by its role,
    so the expert reads who said what before judging the reply to the last turn."""
    if isinstance(value, str):
        return f'<div class="prompt">{escape(value)}</div>'
    bubbles = "".join(
        f'<div class="turn {turn.role}"><span class="role">{turn.role.capitalize()}</span>'
        f'<div class="text">{escape(turn.content)}</div></div>' for turn in value)
    return f'<div class="prompt conversation" role="log" aria-label="conversation">{bubbles}</div>'


def _form(card: Card, token: str, csrf: str, inner: str, css: str = "answer") -> str:
    return (f'<form class="{css}" method="post" action="/chat/{escape(token)}/answer">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            f'<input type="hidden" name="lease" value="{escape(card.lease)}">{inner}</form>')


def _pairwise(card: Card) -> str:
    return ('<input type="hidden" name="type" value="pairwise"><div class="choices">'
            '<button name="choice" value="A" data-key="1">A is better <kbd>1</kbd></button>'
            '<button name="choice" value="B" data-key="2">B is better <kbd>2</kbd></button>'
            '<button name="choice" value="tie" data-key="t">Tie <kbd>t</kbd></button></div>')


def _rank(card: Card) -> str:
    picks = "".join(f'<button type="button" class="pick" data-pick="{d.label}">{d.label}</button>'
                    for d in card.drafts)
    return ('<input type="hidden" name="type" value="rank"><input type="hidden" name="order">'
            f'<p>Tap the drafts from best to worst: <span class="picks">{picks}</span></p>'
            '<p>Order: <output class="order">—</output> '
            '<button type="button" class="undo">Undo</button></p>'
            '<button class="confirm" disabled>Confirm ranking</button>')


def _rate(card: Card) -> str:
    scale = card.scale
    low, high = (scale.min, scale.max) if scale else (1, 5)
    keys = "".join(f'<button name="score" value="{n}" data-key="{n}">{n}</button>'
                   for n in range(low, high + 1))
    return f'<input type="hidden" name="type" value="rate"><div class="choices">{keys}</div>'


def _editor(card: Card, kind: str, button: str) -> str:
    draft = escape(card.drafts[0].text) if card.drafts else ""
    return (f'<input type="hidden" name="type" value="{kind}">'
            f'<textarea name="text" rows="8" data-draft="{draft}">{draft}</textarea>'
            '<pre class="diff" aria-label="your changes"></pre>'
            f'<button class="submit">{button}</button>')


def _verify(card: Card) -> str:
    draft = escape(card.drafts[0].text) if card.drafts else ""
    return ('<input type="hidden" name="type" value="verify"><div class="choices">'
            '<button name="verdict" value="accept" data-key="a">Accept <kbd>a</kbd></button>'
            '<button type="button" class="override" data-key="o">Override <kbd>o</kbd></button>'
            '</div><fieldset class="override-fields" hidden>'
            f'<textarea name="text" rows="8" data-draft="{draft}">{draft}</textarea>'
            '<pre class="diff" aria-label="your changes"></pre>'
            '<input name="reason" placeholder="Why override? (required)">'
            '<button name="verdict" value="override">Save override</button></fieldset>')


def _label(card: Card) -> str:
    kind = "checkbox" if card.multi else "radio"
    boxes = "".join(f'<label><input type="{kind}" name="labels" value="{escape(label)}"> '
                    f'{escape(label)}</label>' for label in card.labels)
    return (f'<input type="hidden" name="type" value="label"><div class="labels">{boxes}</div>'
            '<button class="submit">Save labels</button>')


def _correct(card: Card) -> str:
    return _editor(card, "correct", "Save correction")


def _write(card: Card) -> str:
    return _editor(card, "write", "Save answer")


CONTROLS = {"pairwise": _pairwise, "rank": _rank, "rate": _rate, "correct": _correct,
            "verify": _verify, "label": _label, "write": _write,
            "approve": asks.approve_controls}


def _others(card: Card, token: str, csrf: str) -> str:
    inner = ('<button name="type" value="skip" data-key="s">Skip <kbd>s</kbd></button>'
             '<button name="type" value="none_acceptable">None acceptable</button>'
             '<details class="flag"><summary>Flag</summary>'
             '<select name="reason"><option value="unsure">Unsure</option>'
             '<option value="harmful">Harmful</option><option value="broken">Broken</option>'
             '</select><input name="note" placeholder="Note (optional)">'
             '<button name="type" value="flag">Flag it</button></details>')
    return _form(card, token, csrf, inner, css="answer others")


def outcome(result: Outcome, said: str = "") -> str:
    """`said`: a live ask's decision in words (core.domain.asks.decision_words), which the
    outcome does not hold."""
    if is_ask_token(result.lease):
        return asks.outcome(result, said)
    if result.status == "refused":
        return f'<p class="bubble refused">Not saved: {escape(result.reason or "")}</p>'
    what = RECORDED.get(result.decision or "", "your answer")
    again = " (already saved)" if result.replayed else ""
    seconds = f" in {result.active_seconds:.0f} s" if result.active_seconds is not None else ""
    return f'<p class="bubble recorded">Saved {what}{seconds}{again}.</p>'


def notice(text: str) -> str:
    return f'<p class="notice">{escape(text)}</p>'


def stats(figures: ExpertStats) -> str:
    rows = "".join(f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>"
                   for label, value in figures.lines())
    return f"<dl>{rows}</dl>"


def invalid_link() -> str:
    return ("<!doctype html><html lang=en><meta charset=utf-8><title>expertloop</title>"
            "<p>This link is not valid: it was revoked or mistyped. "
            "Ask your coordinator for a new one.</p></html>")
