"""What a decision means in the file's terms: labels as shown mapped back to draft indices, and
edits as diffs against the draft, so exports never have to redo the shuffle."""

from __future__ import annotations

import difflib
from typing import Any

from core.domain.items import Item
from core.domain.kinds import Choose, Correct, Decision, Rank, Rate, Verify


def resolve(decision: Decision, order: list[int], item: Item) -> dict[str, Any]:
    """`order[i]` is the file index of the draft shown at position i (labelled A, B, ...)."""
    if isinstance(decision, Choose):
        pair = winner_loser(decision.choice, order)
        if pair is None:
            return {"winner": None, "loser": None, "tie": True}
        return {"winner": pair[0], "loser": pair[1], "tie": False}
    if isinstance(decision, Rank):
        return {"ranking": ranking(decision.order, order)}
    if isinstance(decision, Rate):
        return {"draft": order[0], "score": decision.score}
    if isinstance(decision, Correct):
        return {"draft": order[0], "diff": diff(item.drafts[order[0]].text, decision.text)}
    if isinstance(decision, Verify):
        if decision.verdict == "accept":
            return {"draft": order[0], "accepted": True}
        draft = item.drafts[order[0]].text
        return {"draft": order[0], "accepted": False, "diff": diff(draft, decision.text or "")}
    return {}


def winner_loser(choice: str, order: list[int]) -> tuple[int, int] | None:
    """A pairwise choice as shown (A or B) as file draft indices; None for a tie."""
    if choice not in ("A", "B"):
        return None
    shown = "AB".index(choice)
    return order[shown], order[1 - shown]


def ranking(labels: list[str], order: list[int]) -> list[int]:
    """A ranking of labels as shown, best first, as file draft indices."""
    return [order[ord(label) - ord("A")] for label in labels]


def diff(before: str, after: str) -> str:
    """A unified diff by line; empty when the expert changed nothing."""
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 fromfile="draft", tofile="expert", n=2)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
