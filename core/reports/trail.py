"""The rows of a task export that has one row per task: the `trail` (everything about a task:
drafts as shown, the decision, edits, timing, event hashes) and the spreadsheet `csv`."""

from __future__ import annotations

from typing import Any

from core.domain.campaigns import Campaign
from core.domain.items import Item, draft_label, prompt_text
from core.reports.judgments import gold_correct, model_name, ranking, winner_loser
from core.reports.records import LEASELESS, TaskRecord
from core.reports.treatment import edit_of

Row = dict[str, Any]


def trail_row(campaign: Campaign, record: TaskRecord, fast_below: float | None,
              checkpoint: int | None = None, *, shown: Row | None = None) -> Row:
    """Everything about one task: drafts as shown, the decision, edits, timing, event hashes,
    and the size of the latest signed checkpoint (`checkpoint`) if it covers the answer.
    `shown`: the item's part of the row (`item_shown`) when the caller has it already."""
    payload = record.payload
    shown = item_shown(record) if shown is None else shown
    row: Row = {
        "campaign": campaign.id, "kind": campaign.spec.kind.value, "item": record.item_id,
        "prompt": shown["prompt"], "expert": record.expert,
        "images": shown["images"],
        "lease": record.lease, "event": record.type, "channel": payload.get("channel"),
        "drafts": shown["drafts"], "order": record.order, "decision": record.decision,
        "resolved": resolved(record), "gold": bool(payload.get("gold")),
        "gold_correct": gold_correct(record, campaign.spec.kind),
        "timing": payload.get("timing") or {}, "late": bool(payload.get("late")),
        "flags": flags(record, fast_below),
        "events": {"answer": {"seq": record.event.seq, "hash": record.event.hash,
                              "prev": record.prev},
                   "assigned": record.assigned._asdict() if record.assigned else None,
                   "item": record.item_ref._asdict() if record.item_ref else None},
        "draft_models": shown["draft_models"], "edit_ratio": text_edit_ratio(record),
        "decided_in_s": decided_in_s(record), "decided_by": record.decided_by,
        "rationale": record.rationale,
        "checkpoint": checkpoint if checkpoint and record.event.seq <= checkpoint else None,
    }
    if record.type in LEASELESS:
        row["model"] = payload.get("model")
        row["confidence"], row["threshold"] = payload.get("confidence"), payload.get("threshold")
    if "diff" in payload:
        row["diff"] = payload["diff"]
        row["edit_distance"] = edit_distance(_edited_draft(record), _text(record))
    return row


def item_shown(record: TaskRecord) -> Row:
    """The trail row's values that depend only on the item and the order it was shown in."""
    item = record.item
    shown = []
    if item is not None:
        shown = [{"label": draft_label(pos), "index": index, **item.drafts[index].model_dump()}
                 for pos, index in enumerate(record.order)]
    return {"prompt": trail_prompt(item),
            "images": [image.sha256 for image in item.images] if item else [],  # exact bytes
            "drafts": shown, "draft_models": draft_models(record)}


def shown_key(record: TaskRecord) -> tuple[int, tuple[int, ...]] | None:
    """What `item_shown` depends on: the item's event and the order."""
    return None if record.item_ref is None else (record.item_ref.seq, tuple(record.order))


def trail_prompt(item: Item | None) -> str | list[dict[str, str]] | None:
    """A conversation stays a list of {role, content}: the trail keeps the prompt as given."""
    if item is None:
        return None
    if isinstance(item.prompt, str):
        return item.prompt
    return [turn.model_dump() for turn in item.prompt]


def draft_models(record: TaskRecord) -> list[str]:
    """The drafts' models (model@version) in the order the expert saw them."""
    item = record.item
    return [model_name(item.drafts[i]) for i in record.order] if item else []


def text_edit_ratio(record: TaskRecord) -> float | None:
    """For an answer that gave a text for the draft (a correct, or an override with text), the
    size of the edit (0 when left unchanged); null for every other answer."""
    edit = edit_of(record)
    if edit is None or record.decision.get("text") is None:
        return None
    return edit.ratio or 0.0


def decided_in_s(record: TaskRecord) -> float | None:
    """Active seconds to a decision; null for a skip or a flag, which decide nothing, and for
    the model's own decision, which no one timed."""
    return record.active_seconds if record.type in ("answered", "adjudicated") else None


def resolved(record: TaskRecord) -> dict[str, Any]:
    """The decision in the file's draft indices."""
    decision, kind = record.decision, record.decision.get("type")
    if kind == "pairwise":
        pair = winner_loser(record)
        return {"tie": True} if pair is None else {"winner": pair[0], "loser": pair[1]}
    if kind == "rank":
        return {"ranking": ranking(record)}
    if kind in ("rate", "correct", "verify") and record.order:
        return {"draft": record.order[0], **({"score": decision["score"]}
                                             if kind == "rate" else {})}
    return {}


def flags(record: TaskRecord, fast_below: float | None) -> dict[str, Any]:
    decision = record.decision
    return {"fast": record.type == "answered" and fast_below is not None
            and record.active_seconds < fast_below,
            "flagged": decision.get("reason") if record.type == "flagged" else None,
            "none_acceptable": decision.get("type") == "none_acceptable",
            "skipped": record.type == "skipped"}


def csv_row(campaign: Campaign, record: TaskRecord, fast_below: float | None) -> Row:
    timing, item = record.payload.get("timing") or {}, record.item
    models = [item.drafts[i].model for i in record.order] if item else []
    correct = gold_correct(record, campaign.spec.kind)
    return {"campaign": campaign.id, "item": record.item_id, "expert": record.expert,
            "lease": record.lease, "event": record.type,
            "decision": record.decision.get("type", ""), "value": csv_value(record),
            "text": _text(record) or "", "shown": ",".join(map(str, record.order)),
            "models": ",".join(models), "gold": int(bool(record.payload.get("gold"))),
            "gold_correct": "" if correct is None else int(correct),
            "fast": int(bool(flags(record, fast_below)["fast"])),
            "active_seconds": record.active_seconds,
            **{f: timing.get(f) or "" for f in ("assigned_at", "delivered_at", "opened_at",
                                                "answered_at")},
            "channel": record.payload.get("channel") or "", "seq": record.event.seq,
            "hash": record.event.hash or "", "late": int(bool(record.payload.get("late"))),
            "draft_models": ",".join(draft_models(record)),
            "edit_ratio": _blank(text_edit_ratio(record)),
            "decided_in_s": _blank(decided_in_s(record)),
            "prompt": prompt_text(item.prompt) if item else "",
            "decided_by": record.decided_by, "rationale": record.rationale or ""}


def _blank(value: float | None) -> float | str:
    return "" if value is None else value


def csv_value(record: TaskRecord) -> str:
    """The decision in one spreadsheet cell, in file draft indices."""
    decision = record.decision
    kind = decision.get("type")
    if kind == "pairwise":
        pair = winner_loser(record)
        return "tie" if pair is None else str(pair[0])
    if kind == "rank":
        return ">".join(map(str, ranking(record) or []))
    if kind == "rate":
        return str(decision.get("score"))
    if kind == "label":
        return "|".join(decision.get("labels", []))
    return str(decision.get("verdict") or decision.get("reason") or
               ("none_acceptable" if kind == "none_acceptable" else ""))


def _text(record: TaskRecord) -> str | None:
    text = record.decision.get("text")
    return None if text is None else str(text)


def _edited_draft(record: TaskRecord) -> str:
    if record.item is None or not record.order:
        return ""
    return record.item.drafts[record.order[0]].text


def edit_distance(before: str, after: str | None) -> int:
    """Levenshtein distance in characters. Edits are mostly local, so the common prefix and
    suffix are cut first and the table covers only the changed middle."""
    a, b = before, after or ""
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[start:len(a) - end], b[start:len(b) - end]
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (char != other)))
        previous = current
    return previous[-1]
