"""What a recorded decision says in the file's terms, for reports: the value it gives each unit
of agreement, whether it matches the item's gold, and which model it preferred to which."""

from __future__ import annotations

from collections.abc import Hashable

from core.domain import resolve
from core.domain.items import Draft
from core.domain.kinds import Kind
from core.reports.records import TaskRecord

NOMINAL_NONE = "none_acceptable"


def winner_loser(record: TaskRecord) -> tuple[int, int] | None:
    """A pairwise choice as file draft indices (winner, loser); None for a tie or no choice."""
    if record.decision.get("type") != "pairwise":
        return None
    return resolve.winner_loser(str(record.decision.get("choice")), record.order)


def ranking(record: TaskRecord) -> list[int] | None:
    """A ranking as file draft indices, best first."""
    if record.decision.get("type") != "rank":
        return None
    return resolve.ranking(record.decision.get("order", []), record.order)


def unit_values(record: TaskRecord, kind: Kind) -> list[tuple[str, Hashable]]:
    """The (unit, value) pairs an answer contributes to agreement. Units are items, except for
    rank, where each draft of an item is a unit and its value the position it was ranked at."""
    decision, item = record.decision, record.item_id
    if decision.get("type") == "none_acceptable":
        nominal = kind in (Kind.pairwise, Kind.label, Kind.verify)
        return [(item, NOMINAL_NONE)] if nominal else []
    if kind == Kind.pairwise:
        pair = winner_loser(record)
        return [(item, "tie" if pair is None else str(pair[0]))]
    if kind == Kind.rank:
        ranked = ranking(record) or []
        return [(f"{item}#{draft}", position + 1) for position, draft in enumerate(ranked)]
    if kind == Kind.rate:
        return [(item, int(decision["score"]))]
    if kind == Kind.label:
        return [(item, "|".join(sorted(decision.get("labels", []))))]
    if kind == Kind.verify:
        return [(item, str(decision.get("verdict")))]
    return []


def gold_correct(record: TaskRecord, kind: Kind) -> bool | None:
    """Whether the answer matches the item's gold (file draft order); None when not scorable."""
    gold = record.item.gold if record.item is not None else None
    if gold is None or kind in (Kind.correct, Kind.write):
        return None
    decision = record.decision
    if decision.get("type") == "none_acceptable":
        return False
    if kind == Kind.pairwise:
        pair = winner_loser(record)
        return bool(gold == "tie") if pair is None else bool(gold == pair[0])
    if kind == Kind.rank:
        return bool(ranking(record) == list(gold))
    if kind == Kind.rate:
        return bool(decision.get("score") == gold)
    if kind == Kind.label:
        wanted = gold if isinstance(gold, list) else [gold]
        return set(decision.get("labels", [])) == set(wanted)
    return bool(decision.get("verdict") == gold)


def model_name(draft: Draft) -> str:
    """The leaderboard names a model with its version, since versions are different systems."""
    return f"{draft.model}@{draft.model_version}" if draft.model_version else draft.model


def model_matches(record: TaskRecord) -> list[tuple[str, str, int]]:
    """(model x, model y, outcome) per comparison this answer implies: 1 x won, 2 y won, 0 tie.
    Comparisons of a model with itself say nothing about models and are left out."""
    if record.item is None:
        return []
    drafts = record.item.drafts
    found: list[tuple[str, str, int]] = []
    pair = winner_loser(record)
    ranked = ranking(record)
    if record.decision.get("type") == "pairwise" and len(drafts) == 2:
        outcome = 0 if pair is None else (1 if pair[0] == 0 else 2)
        found.append((model_name(drafts[0]), model_name(drafts[1]), outcome))
    elif ranked is not None:
        found += [(model_name(drafts[better]), model_name(drafts[worse]), 1)
                  for i, better in enumerate(ranked) for worse in ranked[i + 1:]]
    return [(x, y, outcome) for x, y, outcome in found if x != y]

