"""From Slack interaction payloads to core Answers. Pure: no I/O, no service calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from adapters.slack.messenger import CHANNEL
from core.domain.answers import Answer
from core.domain.kinds import Decision

DECISION = TypeAdapter(Decision)
Payload = Mapping[str, Any]


class InvalidPayload(ValueError):
    """The interaction does not make a decision; the message says what to fix."""


def _labels(choice: str, body: Payload) -> dict[str, object]:
    if choice != "labels":
        return {"type": "label", "labels": [choice]}
    picked = body.get("state", {}).get("values", {}).get("answer", {}).get("el_labels_pick", {})
    chosen = picked.get("selected_options") or [picked.get("selected_option") or {}]
    return {"type": "label", "labels": [o["value"] for o in chosen if o.get("value")]}


BUTTONS: dict[str, Callable[[str, Payload], dict[str, object]]] = {
    "el_choose": lambda choice, body: {"type": "pairwise", "choice": choice},
    "el_rate": lambda choice, body: {"type": "rate", "score": choice},
    "el_verify": lambda choice, body: {"type": "verify", "verdict": choice},
    "el_label": _labels, "el_labels": _labels,
    "el_skip": lambda choice, body: {"type": "skip"},
    "el_none": lambda choice, body: {"type": "none_acceptable"},
    "el_flag": lambda choice, body: {"type": "flag", "reason": choice},
}


def answer_from_block_action(expert_id: str, body: Payload,
                             acted_at: int | None = None) -> Answer:
    """A button, menu or overflow press; its value is `<lease>|<choice>`. Its action_id is the
    action's name, with `:<choice>` after it on a card sent since ids became unique per
    element (`el_choose:A`); older cards in channels still carry the bare name."""
    action = body["actions"][0]
    value = action.get("value") or (action.get("selected_option") or {}).get("value", "")
    lease, _, choice = str(value).partition("|")
    build = BUTTONS.get(str(action.get("action_id", "")).partition(":")[0])
    if build is None or not choice:
        raise InvalidPayload("this button does not answer a task")
    event = f"{body.get('container', {}).get('message_ts')}/{action.get('action_ts')}"
    return _answer(expert_id, lease, build(choice, body), event, acted_at)


def _texts(values: Payload) -> str:
    parts = sorted((int(block[5:]), field["text"].get("value") or "")
                   for block, field in values.items() if block.startswith("text_"))
    return "".join(text for _, text in parts)


def _rank(values: Payload) -> dict[str, object]:
    places = sorted((int(block[6:]), (field["draft"].get("selected_option") or {}).get("value"))
                    for block, field in values.items() if block.startswith("place_"))
    order = [label for _, label in places if label]
    if len(set(order)) != len(order) or len(order) != len(places):
        raise InvalidPayload("place every draft exactly once")
    return {"type": "rank", "order": order}


VIEWS: dict[str, Callable[[Payload], dict[str, object]]] = {
    "el_rank": _rank,
    "el_correct": lambda values: {"type": "correct", "text": _texts(values)},
    "el_write": lambda values: {"type": "write", "text": _texts(values)},
    "el_override": lambda values: {"type": "verify", "verdict": "override",
                                   "text": _texts(values),
                                   "reason": values.get("reason", {}).get("reason", {})
                                   .get("value") or ""},
}


def answer_from_view_submission(expert_id: str, body: Payload) -> Answer:
    """A submitted modal; its private_metadata is `<lease>|<channel>|<message ts>`. Never kept
    in the inbox (its errors go back in the response): the expert acted now."""
    view = body["view"]
    build = VIEWS.get(view.get("callback_id", ""))
    if build is None:
        raise InvalidPayload("this form does not answer a task")
    lease = str(view.get("private_metadata", "")).split("|")[0]
    data = build(view["state"]["values"])
    return _answer(expert_id, lease, data, f"view/{view.get('id')}", None)


def _answer(expert_id: str, lease: str, data: dict[str, object], event_id: str,
            acted_at: int | None) -> Answer:
    try:
        decision = DECISION.validate_python(data)
        return Answer(expert=expert_id, lease=lease, decision=decision, channel=CHANNEL,
                      event_id=event_id, acted_at=acted_at)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidPayload(f"{first['loc'][-1]}: {first['msg']}") from exc
