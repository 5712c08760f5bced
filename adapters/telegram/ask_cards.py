"""A live ask as Telegram shows it: who asks, by when and for what pay above the question, an
`approve` ask's proposed call, what the expert decided in words, and the arguments an Edit
reply must carry (one JSON object). Pure: no I/O."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from core.domain.answers import Outcome
from core.domain.asks import outcome_words, time_left, value_text
from core.domain.cards import AskInfo, Card


class BadArguments(ValueError):
    """An Edit reply that is not one JSON object; the message says why, in JSON's words."""


def header_html(info: AskInfo, now_ms: int | None) -> str:
    pay = f" · pays {info.pay:.2f} {escape(info.currency or '')}".rstrip() if info.pay else ""
    urgent = " · <b>urgent</b>" if info.urgent else ""
    return (f"<i>Asked by {escape(info.asker)} · {time_left(info.deadline_at, now_ms)}{pay}</i>"
            f"{urgent}")


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


def outcome_line(outcome: Outcome, words: str) -> str:
    """What became of an answer to an ask, as HTML."""
    return f"✅ {escape(outcome_words(outcome, words))}"
