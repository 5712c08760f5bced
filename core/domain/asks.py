"""Live asks: an agent asks credentialed experts for the final call and gets a typed decision
back (POST /api/asks). The shapes here are the API's; the flow is core/service/asks.py.

An ask reaches each expert it allows as an ordinary card whose lease token starts with
`ASK_PREFIX`, so every channel shows it and takes its answer the way it does a campaign's
task; `Service.submit` hands such answers to the asks service."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.domain.answers import Outcome
from core.domain.hard_cases import Level
from core.domain.items import Draft
from core.domain.kinds import Approve, Decision, Kind

ASK_PREFIX = "ask-"  # never a campaign code's start: codes are base 36, without a dash
ASKS_LOG = "asks"  # the log all asks write to, verified like a campaign's
MIN_DEADLINE_S, MAX_DEADLINE_S = 30, 7 * 24 * 3600
CALL_ID_DAYS = 30

AskKind = Literal["approve", "choose", "verify", "write"]
AskStatus = Literal["pending", "approved", "rejected", "edited", "answered", "disagreed",
                    "expired", "withdrawn"]
OnTimeout = Literal["escalate", "reject", "expire"]
CARD_KINDS: dict[str, Kind] = {"approve": Kind.approve, "choose": Kind.pairwise,
                               "verify": Kind.verify, "write": Kind.write}
DRAFTS_NEEDED = {"approve": (0, 0), "choose": (2, 2), "verify": (1, 1), "write": (0, 0)}


def is_ask_token(token: str) -> bool:
    return token.startswith(ASK_PREFIX)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Proposal(_Strict):
    """The call an `approve` ask would make: an Edit changes `args` only."""

    function: str = Field(min_length=1, max_length=200)
    args: dict[str, Any] = {}


class AskTo(_Strict):
    """Who may answer: named experts (then skills and level are ignored), or everyone with
    all the skills at exactly `level` (any level without one). `on_timeout: escalate` widens
    it a stage at a time: the next level up, then anyone with the skills."""

    experts: list[str] = []
    skills: list[str] = []
    level: Level | None = None


class Quorum(_Strict):
    any_of: int | None = Field(default=None, ge=1, le=1)  # the first answer decides
    all_of: int | None = Field(default=None, ge=1, le=20)

    @model_validator(mode="after")
    def _one(self) -> Quorum:
        if (self.any_of is None) == (self.all_of is None):
            raise ValueError("give exactly one of any_of (1) and all_of (N)")
        return self

    def needed(self) -> int:
        return self.all_of or 1


class AskPay(_Strict):
    per_ask: float = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)


class Callback(_Strict):
    url: str = Field(min_length=1, max_length=2000)


class AskRequest(_Strict):
    """The body of POST /api/asks."""

    call_id: str = Field(min_length=1, max_length=200)
    kind: AskKind
    question: str = Field(min_length=1, max_length=3000)
    context: str = Field(default="", max_length=3000)
    proposal: Proposal | None = None
    drafts: list[Draft] = []
    to: AskTo = AskTo()
    quorum: Quorum = Quorum(any_of=1)
    deadline_s: int = Field(default=900)
    on_timeout: OnTimeout = "expire"
    urgent: bool = False
    pay: AskPay | None = None
    callback: Callback | None = None
    asker: str = Field(default="an agent", min_length=1, max_length=80)  # shown on the card

    @field_validator("deadline_s")
    @classmethod
    def _deadline(cls, value: int) -> int:
        if not MIN_DEADLINE_S <= value <= MAX_DEADLINE_S:
            raise ValueError(f"deadline_s must be from {MIN_DEADLINE_S} s to 7 days "
                             f"({MAX_DEADLINE_S} s)")
        return value

    @model_validator(mode="after")
    def _fits_the_kind(self) -> AskRequest:
        if self.kind == "approve" and self.proposal is None:
            raise ValueError("an approve ask needs its proposal")
        if self.kind != "approve" and self.proposal is not None:
            raise ValueError(f"a {self.kind} ask takes no proposal")
        low, high = DRAFTS_NEEDED[self.kind]
        if not low <= len(self.drafts) <= high:
            raise ValueError(f"a {self.kind} ask takes {low if low == high else f'{low}-{high}'}"
                             f" drafts, not {len(self.drafts)}")
        return self


class AskAnswer(BaseModel):
    """One expert's decision on an ask, as the record keeps it."""

    model_config = ConfigDict(frozen=True)

    expert: str
    decision: dict[str, Any]  # the API's per-kind shape (AskView.decision)
    comment: str | None = None
    at: int
    seq: int
    after_withdrawal: bool = False


class AskView(BaseModel):
    """GET /api/asks/{id}: where an ask stands. `decision` is the API's per-kind shape:
    approve `{"verdict": "approved" | "rejected" | "edited", "args"?}`, choose `{"choice"}`,
    verify `{"verdict": "accept" | "override", "text"?, "reason"?}`, write `{"text"}`; under
    `all_of` with answers that differ, status `disagreed` and `decisions` lists them all."""

    id: str
    call_id: str
    kind: AskKind
    status: AskStatus
    question: str
    decision: dict[str, Any] | None = None
    decisions: list[AskAnswer] = []
    comment: str | None = None
    by: list[str] = []
    created_at: str
    expires_at: str
    decided_at: str | None = None
    waiting: str | None = None  # why nobody has it yet (all paused, quiet hours, ...)
    stage: int = 0  # escalations so far
    events: list[str] = []  # hashes of the ask's events in the `asks` log, once sealed


# What an ask card and its answer say to the expert, the same in every channel (each channel
# only escapes and styles it).

_WORDS = {"pairwise:A": "A is better", "pairwise:B": "B is better", "pairwise:tie": "A tie",
          "verify:accept": "Accepted", "verify:override": "Overridden", "write:": "Answered"}


def time_left(deadline_ms: int, now_ms: int | None) -> str:
    """The deadline as the expert reads it: how long they have, rounded up (the clock time in
    UTC when the time of showing is not known)."""
    if now_ms is None:
        stamp = datetime.fromtimestamp(deadline_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"answer by {stamp}"
    left = deadline_ms - now_ms
    if left <= 0:
        return "the deadline has passed"
    minutes = math.ceil(left / 60_000)
    if minutes < 90:
        return f"answer within {minutes} min"
    hours = math.ceil(left / 3_600_000)
    return f"answer within {hours} h" if hours < 48 else \
        f"answer within {math.ceil(hours / 24)} days"


def value_text(value: Any) -> str:
    """An argument as the expert reads it: a string as itself, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def decision_words(decision: Decision, before: dict[str, Any] | None = None) -> str:
    """What the expert decided, in words: 'Approved', 'Rejected: <reason>', 'Edited: amount
    100' (the arguments that changed, when the proposal is known)."""
    if not isinstance(decision, Approve):
        value = getattr(decision, "choice", None) or getattr(decision, "verdict", None) or ""
        return _WORDS.get(f"{decision.type}:{value}", "Answered")
    if decision.verdict == "approved":
        return "Approved"
    if decision.verdict == "rejected":
        return f"Rejected: {decision.comment or ''}".strip()
    args = decision.args or {}
    changed = [f"{k} {value_text(v)}" for k, v in args.items()
               if before is None or before.get(k) != v]
    dropped = [f"{k} removed" for k in (before or {}) if k not in args]
    return "Edited: " + (", ".join(changed + dropped) or "no change")


def outcome_words(outcome: Outcome, words: str) -> str:
    """What became of an answer to an ask: what was recorded, then what the service adds (a
    quorum still waiting, a withdrawal meanwhile), and whether it was a repeat."""
    line = words or "Recorded"
    if outcome.reason:
        line += "" if line.endswith((".", "!", "?")) else "."
        line += f" {outcome.reason[0].upper()}{outcome.reason[1:]}"
    return line + (" (already saved)" if outcome.replayed else "")
