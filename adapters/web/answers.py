"""From a submitted web chat form to a core Answer. Pure: no I/O, no service calls."""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import TypeAdapter, ValidationError

from adapters.web.asks import ARG
from core.domain.answers import Answer
from core.domain.hard_cases import RATIONALE_CHARS
from core.domain.kinds import Decision, Verify

DECISION = TypeAdapter(Decision)
FIELDS = {  # the form fields each decision type reads; anything else is ignored
    "pairwise": ("choice",), "rank": ("order",), "rate": ("score",), "correct": ("text",),
    "write": ("text",), "verify": ("verdict", "text", "reason"), "label": (), "skip": (),
    "none_acceptable": ("note",), "flag": ("reason", "note"), "approve": ("verdict",),
}


class InvalidForm(ValueError):
    """The form does not make a decision; the message says what to fix."""


def answer_from_form(expert_id: str, fields: Mapping[str, str], labels: list[str]) -> Answer:
    kind = fields.get("type", "")
    if kind not in FIELDS:
        raise InvalidForm("choose an answer")
    data: dict[str, object] = {"type": kind}
    data.update({name: fields[name] for name in FIELDS[kind] if fields.get(name)})
    if kind == "rank":
        data["order"] = [label for label in str(data.get("order", "")).split(",") if label]
    if kind == "label":
        data["labels"] = labels
    if kind == "verify" and data.get("verdict") == "accept":  # the editor's text is not an edit
        data = {"type": kind, "verdict": "accept"}
    if kind == "approve":
        data.update(_approve(fields, str(data.get("verdict", ""))))
    try:
        decision = DECISION.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidForm(f"{first['loc'][-1]}: {first['msg']}") from exc
    return Answer(expert=expert_id, lease=fields.get("lease", ""), decision=decision,
                  channel="web", event_id=fields.get("nonce") or None,
                  rationale=_rationale(fields, decision))


def _approve(fields: Mapping[str, str], verdict: str) -> dict[str, object]:
    """A live ask's call: a rejection carries its reason (required), an edit every argument,
    each field's JSON value (a value that is not JSON is the text typed)."""
    if verdict == "rejected":
        comment = " ".join(fields.get("comment", "").split())
        if not comment:
            raise InvalidForm("a rejection needs its reason")
        return {"comment": comment}
    if verdict == "edited":
        return {"args": {name[len(ARG):]: _json_or_text(value)
                         for name, value in fields.items() if name.startswith(ARG)}}
    return {}


def _json_or_text(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _rationale(fields: Mapping[str, str], decision: Decision) -> str | None:
    """The line of why under the buttons; an override's own reason stands in when it is
    empty, so an override never asks twice. Over-long lines are cut, not refused."""
    given = " ".join(fields.get("rationale", "").split())
    if not given and isinstance(decision, Verify) and decision.verdict == "override":
        given = " ".join((decision.reason or "").split())
    return given[:RATIONALE_CHARS] or None
