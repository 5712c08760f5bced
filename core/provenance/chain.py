"""Sealing and verifying a campaign's hash chain, over events as the store holds them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import NamedTuple

from pydantic import BaseModel

from core.provenance.events import GENESIS, chain_hash


class StoredEvent(NamedTuple):
    """An event as stored: its place in the log and its body (JSON without seq, prev, hash)."""

    seq: int
    body: str


class Seal(NamedTuple):
    seq: int
    hash: str


class ChainHead(NamedTuple):
    seq: int
    hash: str


START = ChainHead(0, GENESIS)
CHAIN_FIELDS = {"seq", "prev", "hash"}  # supplied by the log and its seals, never by a body


class ChainBroken(Exception):
    """The log has a gap or an unreadable event where the sealer expected the next one."""


def seal_events(head: ChainHead, events: Iterable[StoredEvent]) -> list[Seal]:
    """Extend the chain from `head` over the next events, which must follow it without a gap."""
    seals: list[Seal] = []
    seq, prev = head
    for event in events:
        if event.seq != seq + 1:
            raise ChainBroken(f"expected seq {seq + 1}, found seq {event.seq}")
        prev = chain_hash(_fields(event.body), event.seq, prev)
        seq = event.seq
        seals.append(Seal(seq, prev))
    return seals


class Verdict(BaseModel):
    """The result of recomputing a chain: ok, or the first bad `seq` and why."""

    campaign: str
    ok: bool
    checked: int
    sealed: int
    unsealed: int = 0
    head: str = GENESIS
    bad_seq: int | None = None
    reason: str | None = None

    def line(self) -> str:
        if self.ok:
            lag = f", {self.unsealed} not yet sealed" if self.unsealed else ""
            return f"{self.campaign}: chain verified, {self.checked} events, head {self.head}{lag}"
        return f"{self.campaign}: chain broken at seq {self.bad_seq}: {self.reason}"


class ChainChecker:
    """Feeds on events in log order with the stored seals; stops at the first fault."""

    def __init__(self, campaign: str, sealed_up_to: int) -> None:
        self.campaign = campaign
        self.sealed_up_to = sealed_up_to
        self.expected = 1
        self.prev = GENESIS
        self.fault: tuple[int, str] | None = None
        self.unsealed = 0

    def feed(self, events: list[StoredEvent], seals: dict[int, str]) -> bool:
        """Check a batch; False once a fault is found. `seals` maps seq to its stored hash."""
        for index, event in enumerate(events):
            if event.seq != self.expected:
                return self._fail(self.expected, _missing(self.expected, event.seq))
            stored = seals.get(event.seq)
            if stored is None and event.seq <= self.sealed_up_to:
                return self._fail(event.seq, "its seal is missing")
            if stored is None or self.unsealed:
                # Past the head read at the start, the rest is the unsealed tail: a seal found
                # after an unsealed event was written by a sealer moving on while this read,
                # not a fault (it has no predecessor here to chain from).
                self.unsealed += 1
                self.expected += 1
                continue
            try:
                fields = _fields(event.body)
            except ValueError:
                return self._fail(event.seq, "the stored event is not valid JSON (changed)")
            if fields.keys() & CHAIN_FIELDS:  # chain_hash overrides these, so check them here
                return self._fail(event.seq, "the stored event names its own seq, prev or hash "
                                  "(changed)")
            try:
                digest = chain_hash(fields, event.seq, self.prev)
            except UnicodeEncodeError:  # a lone surrogate has no UTF-8: never what was sealed
                return self._fail(event.seq, "its contents do not match its seal (changed)")
            if digest != stored:
                return self._fail(event.seq, self._why(events, index, seals))
            self.prev = stored
            self.expected += 1
        return True

    def finish(self, appended: int = 0) -> Verdict:
        """`appended`: how many events the log had counted when the check began; fewer found
        means events were removed from its end, sealed or not."""
        last = self.expected - 1
        if self.fault is None and last < self.sealed_up_to:
            self._fail(last + 1, f"events {last + 1}..{self.sealed_up_to} are missing (removed)")
        if self.fault is None and last < appended:
            self._fail(last + 1, f"events {last + 1}..{appended} are missing (removed before "
                                 "they were sealed)")
        checked = self.expected - 1
        if self.fault:
            return Verdict(campaign=self.campaign, ok=False, checked=checked,
                           sealed=self.sealed_up_to, bad_seq=self.fault[0], reason=self.fault[1])
        return Verdict(campaign=self.campaign, ok=True, checked=checked, sealed=self.sealed_up_to,
                       unsealed=self.unsealed, head=self.prev)

    def refuse(self, seq: int, reason: str) -> bool:
        """A fault found outside the events fed (an archived segment that cannot be read)."""
        return self._fail(seq, reason)

    def _fail(self, seq: int, reason: str) -> bool:
        self.fault = (seq, reason)
        return False

    def _why(self, events: list[StoredEvent], index: int, seals: dict[int, str]) -> str:
        """Tell a moved event from a changed one: does it hash right at a neighbour's place?"""
        body, seq = events[index].body, events[index].seq
        known = seals | {0: GENESIS}
        for other in range(max(1, seq - 8), seq + 9):  # by seq, so a batch edge hides no neighbour
            if other == seq or other - 1 not in known or other not in seals:
                continue
            if chain_hash(_fields(body), other, known[other - 1]) == seals[other]:
                return f"holds the event sealed as seq {other} (reordered)"
        return "its contents do not match its seal (changed)"


def _missing(expected: int, found: int) -> str:
    if found > expected:
        return f"event {expected} is missing (removed); the log jumps to {found}"
    return f"event {found} appears again after {expected - 1} (reordered or duplicated)"


def _fields(body: str) -> dict[str, object]:
    fields = json.loads(body)
    if not isinstance(fields, dict):
        raise ValueError("an event is a JSON object")
    return fields
