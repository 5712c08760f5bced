"""The task rules the store enforces in Lua, where they must run atomically with the write, as
Python: the reference to read them by, and the one tests/test_lua_rules.py checks the scripts
(adapters/redis/scripts/common.lua) against on random inputs."""

from __future__ import annotations

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
