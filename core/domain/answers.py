"""Leases, answers and outcomes: the exchange between a channel and the service."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.domain.cards import NextTask
from core.domain.hard_cases import RATIONALE_CHARS
from core.domain.kinds import Decision

LeaseState = Literal["live", "answered", "skipped", "flagged", "expired"]


class Lease(BaseModel):
    """One slot of one item held by one expert until `expires_at`; `order` is the shuffle shown."""

    model_config = ConfigDict(frozen=True)

    token: str
    campaign: str
    expert: str
    item: str
    item_seq: int
    order: list[int]
    gold: bool = False
    adjudicate: bool = False  # a final call on an item the experts could not settle
    escalated: bool = False  # the item was asked again: its experts disagreed
    day: str | None = None  # the expert's local day at assignment: what the daily cap counts
    assigned_at: int
    expires_at: int
    state: LeaseState = "live"
    delivered_at: int | None = None
    opened_at: int | None = None


class Answer(BaseModel):
    """What a channel hands the core: who, which lease, the decision, and the platform event id."""

    model_config = ConfigDict(frozen=True)

    expert: str
    lease: str = Field(min_length=3, max_length=40)
    decision: Decision
    channel: str = "api"
    event_id: str | None = None
    opened_at: int | None = None
    acted_at: int | None = None  # ms; when the expert acted, if a request waited before handling
    rationale: str | None = Field(default=None, max_length=RATIONALE_CHARS)  # one line of why


class Outcome(BaseModel):
    """What happened to an answer; a repeated submit returns the first outcome, `replayed` set."""

    status: Literal["recorded", "refused"]
    lease: str
    reason: str | None = None
    decision: str | None = None
    seq: int | None = None
    answered_at: int | None = None
    active_seconds: float | None = None
    replayed: bool = False
    late: bool = False  # acted in time, handled after the lease had gone back to the pool
    next: NextTask | None = None
