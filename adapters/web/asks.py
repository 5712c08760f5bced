"""A live ask in the web chat: who asks, by when and for what pay above the question, an
`approve` ask's proposed call and its three answers (Approve; Reject with its reason; Edit, one
field per argument), and what the expert decided in words. Every outside value is escaped."""

from __future__ import annotations

import json
from html import escape

from core.domain.answers import Outcome
from core.domain.asks import outcome_words, time_left, value_text
from core.domain.cards import AskInfo, Card

ARG = "arg:"  # an Edit field per argument: `arg:<name>`, its value as JSON
def header(info: AskInfo, now_ms: int | None) -> str:
    pay = (f'<span class="pay">pays {info.pay:.2f} {escape(info.currency or "")}</span>'
           if info.pay else "")
    urgent = '<strong class="urgent">urgent</strong>' if info.urgent else ""
    return (f'<p class="ask-header"><span class="asker">Asked by {escape(info.asker)}</span> '
            f'<span class="deadline">{time_left(info.deadline_at, now_ms)}</span> {pay} {urgent}'
            "</p>")


def proposal(card: Card) -> str:
    """The call an approve ask would make: the function, then a row per argument."""
    if card.ask is None or card.ask.function is None:
        return ""
    rows = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value_text(value))}</td></tr>"
                   for name, value in (card.ask.args or {}).items())
    return (f'<section class="proposal" aria-label="proposed call"><h3>Proposed call: '
            f'<code>{escape(card.ask.function)}</code></h3>'
            f'<table>{rows or "<tr><td>(no arguments)</td></tr>"}</table></section>')


def approve_controls(card: Card) -> str:
    """Approve at one press; Reject opens its reason field, Edit a field per argument (the
    value as JSON, so a number stays a number; anything not JSON is taken as text)."""
    fields = "".join(
        f'<label>{escape(name)}<input name="{escape(ARG + name)}" autocomplete="off"'
        f' value="{escape(json.dumps(value, ensure_ascii=False))}"></label>'
        for name, value in ((card.ask.args if card.ask else None) or {}).items())
    return ('<input type="hidden" name="type" value="approve"><div class="choices">'
            '<button name="verdict" value="approved" data-key="y">Approve <kbd>y</kbd></button>'
            '</div><details class="reject"><summary>Reject…</summary>'
            '<input name="comment" placeholder="Why reject it? (required)" autocomplete="off">'
            '<button name="verdict" value="rejected">Reject</button></details>'
            f'<details class="edit"><summary>Edit…</summary><div class="args">{fields}</div>'
            '<button name="verdict" value="edited">Save edit</button></details>')


def outcome(result: Outcome, words: str) -> str:
    """What became of an answer to an ask, as a chat bubble."""
    if result.status == "refused":
        return f'<p class="bubble refused">Not saved: {escape(result.reason or "")}</p>'
    return f'<p class="bubble recorded">{escape(outcome_words(result, words))}</p>'
