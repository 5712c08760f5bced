"""A live ask as Block Kit: who asks, by when and for what pay above the question; for an
`approve` ask the proposed call, Approve / Reject / Edit, and the two modals (a reason; the
arguments, one input each); and the card as it stands once no answer is needed."""

from __future__ import annotations

import json
from typing import Any

from adapters.slack.kit import (
    TEXT_LIMIT,
    Block,
    button,
    context,
    escape,
    input_block,
    modal,
    sections,
)
from core.domain.answers import Outcome
from core.domain.asks import outcome_words, time_left, value_text
from core.domain.cards import AskInfo, Card

ARG = "arg:"  # an edit modal's block per argument: `arg:<name>`
WHOLE = "json_"  # or, when the arguments do not fit one input each, the object in parts
MOST_ARG_INPUTS = 90  # a modal holds 100 blocks; the rest are the heading lines
BLOCK_ID_ROOM = 255 - len(ARG)  # Slack's limit on a block_id
ASK_MODALS = {"el_open_reject": "el_reject", "el_open_edit": "el_edit"}


def header_line(info: AskInfo, now_ms: int | None) -> str:
    pay = f" · pays {info.pay:.2f} {info.currency or ''}".rstrip() if info.pay else ""
    urgent = " · *urgent*" if info.urgent else ""
    return f"*Asked by {escape(info.asker)}* · {time_left(info.deadline_at, now_ms)}{pay}{urgent}"


def ask_header(card: Card, now_ms: int | None) -> list[Block]:
    """Above the question, in place of a task's estimate line."""
    assert card.ask is not None
    return [context(header_line(card.ask, now_ms)[:TEXT_LIMIT], "ask_header")]


def proposal_blocks(card: Card) -> list[Block]:
    """The call an approve ask would make, one argument a line."""
    if card.ask is None or card.ask.function is None:
        return []
    lines = [f"• {name}: {value_text(value)}" for name, value in (card.ask.args or {}).items()]
    text = "\n".join([card.ask.function, *lines]) + ("" if lines else "\n(no arguments)")
    return [{"type": "divider"}, *sections("Proposed call", text)]


def approve_controls(card: Card) -> list[Block]:
    """Approve answers at once; Reject and Edit open a modal (a fresh trigger is needed, so
    they never wait in the inbox: adapters/slack/inbox.py)."""
    return [button("Approve", "el_approve:approved", f"{card.lease}|approved", "primary"),
            button("Reject…", "el_open_reject", card.lease, "danger"),
            button("Edit…", "el_open_edit", card.lease)]


def ask_modal(card: Card, opener: str, metadata: str) -> Block:
    """Reject or Edit, the modal its button opens."""
    return reject_modal(card, metadata) if opener == "el_open_reject" else \
        edit_modal(card, metadata)


def reject_modal(card: Card, metadata: str) -> Block:
    element = {"type": "plain_text_input", "action_id": "reason", "multiline": True,
               "max_length": TEXT_LIMIT, "min_length": 1}
    return modal("el_reject", "Reject the call", "Reject", metadata, [
        *_call_line(card), input_block("reason", "Why reject it? (required)", element)])


def edit_modal(card: Card, metadata: str) -> Block:
    """One input per argument holding its JSON value, so a number stays a number; a value that
    is not valid JSON is taken as a string. Arguments that cannot have an input each (too many,
    a name past a block_id, a value past an input) come as the whole object instead."""
    args = (card.ask.args if card.ask else None) or {}
    fits = len(args) <= MOST_ARG_INPUTS and all(
        len(name) <= BLOCK_ID_ROOM and len(json.dumps(value, ensure_ascii=False)) <= TEXT_LIMIT
        for name, value in args.items())
    inputs = [_arg_input(name, value) for name, value in args.items()] if fits \
        else _whole_inputs(args)
    return modal("el_edit", "Edit the call", "Save edit", metadata,
                 [*_call_line(card), *inputs])


def _call_line(card: Card) -> list[Block]:
    function = card.ask.function if card.ask else None
    return [context(f"Proposed call: *{escape(function)}*"[:TEXT_LIMIT])] if function else []


def _arg_input(name: str, value: Any) -> Block:
    element = {"type": "plain_text_input", "action_id": "value", "max_length": TEXT_LIMIT,
               "initial_value": json.dumps(value, ensure_ascii=False)}
    return input_block(f"{ARG}{name}", name[:2000], element)


def _whole_inputs(args: dict[str, Any]) -> list[Block]:
    text = json.dumps(args, ensure_ascii=False, indent=1)
    pieces = [text[i:i + TEXT_LIMIT] for i in range(0, len(text), TEXT_LIMIT)]
    return [input_block(f"{WHOLE}{n}", "Arguments (one JSON object)" if len(pieces) == 1 else
                        f"Arguments, part {n + 1} of {len(pieces)}",
                        {"type": "plain_text_input", "action_id": "value", "multiline": True,
                         "max_length": TEXT_LIMIT, "initial_value": piece})
            for n, piece in enumerate(pieces)]


def ask_outcome_text(outcome: Outcome, words: str) -> str:
    """What became of an answer to an ask."""
    if outcome.status == "refused":
        return f"Not saved: {outcome.reason or 'try again'}"
    return f":white_check_mark: {outcome_words(outcome, words)}"
def notice_card(shown: list[Block], text: str) -> list[Block]:
    """A card nobody needs to answer any more: as it was sent, without its controls, and why."""
    kept = [b for b in shown if b.get("type") not in ("actions", "input")][:49]
    return [*kept, context(f":no_entry_sign: {escape(text)}"[:TEXT_LIMIT], "ask_notice")]
