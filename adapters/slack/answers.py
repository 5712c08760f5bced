"""From Slack interaction payloads to core Answers. Pure: no I/O, no service calls."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from adapters.slack.asks import ARG, WHOLE
from adapters.slack.blocks import HELD
from adapters.slack.messenger import CHANNEL
from core.domain.answers import Answer
from core.domain.hard_cases import RATIONALE_CHARS
from core.domain.kinds import Decision
from core.service.service import REFUSALS

DECISION = TypeAdapter(Decision)
Payload = Mapping[str, Any]


class InvalidPayload(ValueError):
    """The interaction does not make a decision; the message says what to fix."""

    block = ""  # the modal's input to show it under, when it is about one


class MissingReason(InvalidPayload):
    block = "rationale"


class InvalidInput(InvalidPayload):
    """A modal's input that cannot be taken as it is: shown under that input."""

    def __init__(self, block: str, message: str) -> None:
        super().__init__(message)
        self.block = block


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
    "el_approve": lambda choice, body: _approved(choice),
}


def _approved(choice: str) -> dict[str, object]:
    """A live ask's one-press answer; a rejection or an edit comes by its modal."""
    if choice != "approved":
        raise InvalidPayload("this button does not answer a task")
    return {"type": "approve", "verdict": "approved"}


def answer_from_block_action(expert_id: str, body: Payload,
                             acted_at: int | None = None) -> Answer:
    """A button, menu or overflow press; its value is `<lease>|<choice>`. Its action_id is the
    action's name, with `:<choice>` after it on a card sent since ids became unique per
    element (`el_choose:A`); older cards in channels still carry the bare name."""
    action = body["actions"][0]
    value = action.get("value") or (action.get("selected_option") or {}).get("value", "")
    lease, _, choice = str(value).partition("|")
    name = str(action.get("action_id", "")).removeprefix(HELD).partition(":")[0]
    build = BUTTONS.get(name)
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
    "el_reject": lambda values: _rejected(values),
    "el_edit": lambda values: {"type": "approve", "verdict": "edited",
                               "args": edited_args(values)},
}


def _rejected(values: Payload) -> dict[str, object]:
    reason = " ".join(str(values.get("reason", {}).get("reason", {}).get("value") or "")
                      .split())
    if not reason:
        raise InvalidInput("reason", "a rejection needs its reason")
    return {"type": "approve", "verdict": "rejected", "comment": reason}


def edited_args(values: Payload) -> dict[str, object]:
    """The edit modal's arguments: each input's JSON value (a value that is not JSON is taken
    as the string typed), or the whole object when it came in parts (asks.edit_modal)."""
    parts = sorted((int(block[len(WHOLE):]), field["value"].get("value") or "")
                   for block, field in values.items() if block.startswith(WHOLE))
    if parts:
        return _whole("".join(text for _, text in parts), f"{WHOLE}0")
    return {block[len(ARG):]: _json_or_text(field["value"].get("value") or "")
            for block, field in values.items() if block.startswith(ARG)}


def _json_or_text(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _whole(text: str, block: str) -> dict[str, object]:
    try:
        found = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(block, f"not valid JSON: {exc}") from exc
    if not isinstance(found, dict):
        raise InvalidInput(block, "the arguments must be one JSON object")
    return found


def answer_from_view_submission(expert_id: str, body: Payload) -> Answer:
    """A submitted modal; its private_metadata is `<lease>|<channel>|<message ts>` (the
    reason's modal adds `|<the held decision as JSON>`). Never kept in the inbox (its errors
    go back in the response): the expert acted now."""
    view = body["view"]
    metadata = str(view.get("private_metadata", ""))
    values = view["state"]["values"]
    if view.get("callback_id") == "el_why":
        data = _held_decision(metadata)
    else:
        build = VIEWS.get(view.get("callback_id", ""))
        if build is None:
            raise InvalidPayload("this form does not answer a task")
        data = build(values)
    rationale = rationale_from(values)
    if rationale is None and _asks_reason(view):
        raise MissingReason(REFUSALS["reason_needed"])
    return _answer(expert_id, metadata.split("|")[0], data, f"view/{view.get('id')}", None,
                   rationale or _override_reason(data))


def rationale_from(values: Payload) -> str | None:
    """The modal's line of why, on one line."""
    given = (values.get("rationale", {}).get("rationale", {}).get("value")) or ""
    return " ".join(str(given).split())[:RATIONALE_CHARS] or None


def held_metadata(body: Payload, origin: str) -> str:
    """What the reason's modal holds: the lease and the card (`origin`: `<channel>|<ts>`),
    and the decision the press made, to record once the reason comes."""
    given = answer_from_block_action("", body)
    return f"{given.lease}|{origin}|{json.dumps(given.decision.model_dump(mode='json'))}"


def _held_decision(metadata: str) -> dict[str, object]:
    try:
        held = json.loads(metadata.split("|", 3)[3])
    except (IndexError, ValueError) as exc:
        raise InvalidPayload("this form does not answer a task") from exc
    if not isinstance(held, dict):
        raise InvalidPayload("this form does not answer a task")
    return held


def _asks_reason(view: Payload) -> bool:
    return any(b.get("block_id") == "rationale" and not b.get("optional")
               for b in view.get("blocks", []))


def _override_reason(data: dict[str, object]) -> str | None:
    """An override's own reason is its line of why: it is never asked twice."""
    reason = " ".join(str(data.get("reason") or "").split()) if data.get("verdict") == \
        "override" else ""
    return reason[:RATIONALE_CHARS] or None


def _answer(expert_id: str, lease: str, data: dict[str, object], event_id: str,
            acted_at: int | None, rationale: str | None = None) -> Answer:
    try:
        decision = DECISION.validate_python(data)
        return Answer(expert=expert_id, lease=lease, decision=decision, channel=CHANNEL,
                      event_id=event_id, acted_at=acted_at, rationale=rationale)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidPayload(f"{first['loc'][-1]}: {first['msg']}") from exc
