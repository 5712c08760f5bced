"""A live ask as Telegram shows it: who asks, by when and for what pay above the question, an
`approve` ask's proposed call, what the expert decided in words, and the arguments an Edit
reply must carry (one JSON object). Pure: no I/O."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from html import escape
from typing import Any

from core.domain.answers import Outcome
from core.domain.cards import AskInfo, Card
from core.domain.kinds import Approve, Decision

OTHER_WORDS = {"pairwise:A": "A is better", "pairwise:B": "B is better", "pairwise:tie": "a tie",
               "verify:accept": "accepted", "verify:override": "overridden",
               "write:": "your answer"}


class BadArguments(ValueError):
    """An Edit reply that is not one JSON object; the message says why, in JSON's words."""


def within(deadline_ms: int, now_ms: int | None) -> str:
    """The deadline as the expert reads it: how long they have, rounded up (the clock time in
    UTC when the time of sending is not known)."""
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


def header_html(info: AskInfo, now_ms: int | None) -> str:
    pay = f" · pays {info.pay:.2f} {escape(info.currency or '')}".rstrip() if info.pay else ""
    urgent = " · <b>urgent</b>" if info.urgent else ""
    return (f"<i>Asked by {escape(info.asker)} · {within(info.deadline_at, now_ms)}{pay}</i>"
            f"{urgent}")


def value_text(value: Any) -> str:
    """An argument as the expert reads it: a string as itself, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def proposal_text(card: Card) -> str:
    """The call an approve ask would make, one argument a line (plain text, to be quoted)."""
    if card.ask is None or card.ask.function is None:
        return ""
    lines = [f"{name}: {value_text(value)}" for name, value in (card.ask.args or {}).items()]
    return "\n".join(lines) or "(no arguments)"


def args_json(card: Card | None) -> str:
    """The proposal's arguments as the JSON an Edit reply starts from."""
    args = (card.ask.args if card is not None and card.ask is not None else None) or {}
    return json.dumps(args, ensure_ascii=False, indent=1)


def args_from_reply(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError as exc:
        raise BadArguments(f"that is not valid JSON ({exc})") from exc
    if not isinstance(found, dict):
        raise BadArguments("the arguments must be one JSON object, {...}")
    return found


def said(decision: Decision, before: dict[str, Any] | None = None) -> str:
    """What the expert decided, in words: 'Approved', 'Rejected: <reason>', 'Edited: amount
    100' (the arguments that changed, when the proposal is known)."""
    if not isinstance(decision, Approve):
        value = getattr(decision, "choice", None) or getattr(decision, "verdict", None) or ""
        return OTHER_WORDS.get(f"{decision.type}:{value}", "your answer")
    if decision.verdict == "approved":
        return "Approved"
    if decision.verdict == "rejected":
        return f"Rejected: {decision.comment or ''}".strip()
    args = decision.args or {}
    changed = [f"{k} {value_text(v)}" for k, v in args.items()
               if before is None or before.get(k) != v]
    dropped = [f"{k} removed" for k in (before or {}) if k not in args]
    return "Edited: " + (", ".join(changed + dropped) or "no change")


def outcome_line(outcome: Outcome, words: str) -> str:
    """What became of an answer to an ask, as HTML: what was recorded and what the service
    adds (a quorum still waiting, a withdrawal meanwhile)."""
    words = words or "Recorded"
    line = f"✅ {escape(words)}"
    if outcome.reason:
        line += "" if words.endswith((".", "!", "?")) else "."
        line += f" {escape(outcome.reason[0].upper() + outcome.reason[1:])}"
    return line + (" (already saved)" if outcome.replayed else "")
