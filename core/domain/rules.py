"""The task rules the store enforces in Lua, where they must run atomically with the write, as
Python: the reference to read them by, and the one tests/test_lua_rules.py checks the scripts
(adapters/redis/scripts/common.lua) against on random inputs."""

from __future__ import annotations

import math

RECENT_ANSWERS = 200  # a card's time estimate is the median over this many latest answers
REFRESH_ALL_UNTIL = 20  # the estimate is refreshed on each answer up to this many...
REFRESH_EVERY = 10  # ...then on every tenth


def started_at(opened: int | None, delivered: int | None, assigned: int) -> int:
    """An expert's time counts from their first touch, else the card shown, else the lease."""
    if opened is not None:
        return opened
    return delivered if delivered is not None else assigned


def active_seconds(now: int, started: int, time_limit_s: int) -> float:
    """Time on a task, to the millisecond: never negative (a clock a little behind), never over
    the time limit (a card left open over lunch earns no more than the task allows)."""
    return float(f"{min(max(now - started, 0) / 1000, time_limit_s):.3f}")


def median_estimate(recent: list[float]) -> float:
    """The lower median: a few very slow answers do not inflate every later card's estimate."""
    ordered = sorted(recent[:RECENT_ANSWERS])
    return ordered[(len(ordered) + 1) // 2 - 1]


def refreshes_estimate(answers: int) -> bool:
    """Every answer moves a young campaign's estimate; later, every tenth is enough."""
    return answers <= REFRESH_ALL_UNTIL or answers % REFRESH_EVERY == 0


def shown_order(shuffle: list[int], n_drafts: int) -> list[int]:
    """A uniformly random order of exactly the item's drafts: the service shuffles every index
    a kind allows, before it knows the item; the store keeps those the item has."""
    return [index for index in shuffle if index < n_drafts]


def slot_free(taken: int, overlap: int) -> bool:
    """An item is offered while fewer than `overlap` experts hold or answered it; a late answer
    takes its slot back only on the same condition."""
    return taken < overlap


def slots_after_claim(taken: int, overlap: int) -> tuple[int, bool]:
    """A claim takes a slot; the item leaves the queue once none is free (the bool: still open)."""
    return taken + 1, slot_free(taken + 1, overlap)


def slots_after_return(taken: int) -> int:
    """An expired, skipped, flagged or undeliverable lease gives its slot back, never below 0."""
    return max(taken - 1, 0)


def slots_after_late(taken: int, overlap: int, counted: bool) -> int | None:
    """A late answer (acted in time, handled after the expiry pass) needs a free slot when it
    counts; None: none is free, so it is refused as taken. A late skip or flag needs none."""
    if not counted:
        return taken
    return taken + 1 if slot_free(taken, overlap) else None


QUEUE_SPAN = 1 << 26  # items per campaign the route order can tell apart by import order
CONFIDENCE_FLOOR = 1_000_000  # thousandths of a logprob: lower confidences sort together


def queue_key(order: str, confidence: float | None, texts: list[str]) -> int | None:
    """What orders an item in the open queue besides its seq (None: its seq alone, file order);
    never negative, since experts walk the queue forward from score 0. `least_confident`: its
    lowest draft confidence (mean token logprob, <= 0) first, by the thousandth (down to
    -1,000); items with none last. `most_disagreement`: drafts far apart in words first."""
    if order == "least_confident":
        known = confidence if confidence is not None else 0.0
        return CONFIDENCE_FLOOR + max(half_up(known * 1000), -CONFIDENCE_FLOOR)
    if order == "most_disagreement":
        return 1000 - half_up(disagreement(texts) * 1000)
    return None


def queue_score(key: int | None, seq: int) -> int:
    """The item's score in the open queue; ties keep file order."""
    return seq if key is None else key * QUEUE_SPAN + seq


def words(text: str) -> set[str]:
    """Lowercase ASCII words, as Lua's `%w` reads them."""
    out, word = set(), []
    for char in text.lower():
        if char.isascii() and char.isalnum():
            word.append(char)
        elif word:
            out.add("".join(word))
            word = []
    if word:
        out.add("".join(word))
    return out


def disagreement(texts: list[str]) -> float:
    """How far apart drafts are: the mean over pairs of 1 - Jaccard similarity of their word
    sets, to the thousandth; 0 with fewer than two drafts."""
    sets = [words(text) for text in texts]
    pairs = [(a, b) for i, a in enumerate(sets) for b in sets[i + 1:]]
    if not pairs:
        return 0.0
    total = 0.0
    for a, b in pairs:  # summed in order, as Lua sums them
        total += 1 - len(a & b) / len(a | b) if a | b else 0.0
    return half_up(total / len(pairs) * 1000) / 1000


def half_up(x: float) -> int:
    """Rounding half away from zero, as the Lua scripts round (Python's `round` goes to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)
