"""Live asks: an agent asks credentialed experts for the final call and gets a typed decision
back (POST /api/asks). The shapes here are the API's; the flow is core/service/asks.py.

An ask reaches each expert it allows as an ordinary card whose lease token starts with
`ASK_PREFIX`, so every channel shows it and takes its answer the way it does a campaign's
task; `Service.submit` hands such answers to the asks service."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.domain.hard_cases import Level
from core.domain.items import Draft
from core.domain.kinds import Kind

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
