"""A live ask in the web chat: who asks, by when and for what pay above the question, an
`approve` ask's proposed call and its three answers (Approve; Reject with its reason; Edit, one
field per argument), and what the expert decided in words. Every outside value is escaped."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from html import escape
from typing import Any

from core.domain.answers import Outcome
from core.domain.cards import AskInfo, Card
from core.domain.kinds import Approve, Decision

ARG = "arg:"  # an Edit field per argument: `arg:<name>`, its value as JSON
OTHER_WORDS = {"pairwise:A": "A is better", "pairwise:B": "B is better", "pairwise:tie": "A tie",
               "verify:accept": "Accepted", "verify:override": "Overridden",
               "write:": "Answered"}


def within(deadline_ms: int, now_ms: int | None) -> str:
    """The deadline as the expert reads it: how long they have, rounded up (the clock time in
    UTC when the time of showing is not known)."""
    if now_ms is None:
        stamp = datetime.fromtimestamp(deadline_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"answer by {stamp}"
    left = deadline_ms - now_ms
    if left <= 0:
        return "the deadline has passed"
    minutes = math.ceil(left / 60_000)
    if minutes < 90:
        return f"answer within {minutes} min"
    hours = math.ceil(left / 3_600_000)
    return f"answer within {hours} h" if hours < 48 else \
        f"answer within {math.ceil(hours / 24)} days"


def header(info: AskInfo, now_ms: int | None) -> str:
    pay = (f'<span class="pay">pays {info.pay:.2f} {escape(info.currency or "")}</span>'
           if info.pay else "")
    urgent = '<strong class="urgent">urgent</strong>' if info.urgent else ""
    return (f'<p class="ask-header"><span class="asker">Asked by {escape(info.asker)}</span> '
            f'<span class="deadline">{within(info.deadline_at, now_ms)}</span> {pay} {urgent}'
            "</p>")


def value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


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


def said(decision: Decision, before: dict[str, Any] | None = None) -> str:
    """What the expert decided, in words: 'Approved', 'Rejected: <reason>', 'Edited: amount
    100' (the arguments that changed, when the proposal is known)."""
    if not isinstance(decision, Approve):
        value = getattr(decision, "choice", None) or getattr(decision, "verdict", None) or ""
        return OTHER_WORDS.get(f"{decision.type}:{value}", "Answered")
    if decision.verdict == "approved":
        return "Approved"
    if decision.verdict == "rejected":
        return f"Rejected: {decision.comment or ''}".strip()
    args = decision.args or {}
    changed = [f"{k} {value_text(v)}" for k, v in args.items()
               if before is None or before.get(k) != v]
    dropped = [f"{k} removed" for k in (before or {}) if k not in args]
    return "Edited: " + (", ".join(changed + dropped) or "no change")


def outcome(result: Outcome, words: str) -> str:
    """What became of an answer to an ask: what was recorded, and what the service adds (a
    quorum still waiting, a withdrawal meanwhile)."""
    if result.status == "refused":
        return f'<p class="bubble refused">Not saved: {escape(result.reason or "")}</p>'
    words = words or "Recorded"
    stop = "" if words.endswith((".", "!", "?")) else "."
    extra = f" {escape(result.reason[0].upper() + result.reason[1:])}" if result.reason else ""
    again = " (already saved)" if result.replayed else ""
    return f'<p class="bubble recorded">{escape(words)}{stop}{extra}{again}</p>'
