"""Hard cases: how many judgments an item gets (dynamic overlap), when they agree enough to
stop asking (settle), who sees the extra judgments first (escalation), who makes the final call
(adjudication), why experts decided (rationale), and which items the model may decide alone
(route: order and audited auto-accept). Shares compare as integer counts, never as floats."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Level = Literal["junior", "standard", "senior"]
LEVELS: tuple[Level, ...] = ("junior", "standard", "senior")
Rationale = Literal["none", "optional", "required", "on_escalation"]
SHARE_SCALE = 1_000_000  # a share in millionths: 2 of 3 is 666,667, under 0.67's 670,000
RATIONALE_CHARS = 500  # one line of why


class Overlap(BaseModel):
    """`overlap: {min, max}`: min experts each item; up to max while they disagree."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = Field(ge=1, le=100)
    max: int = Field(ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Overlap:
        if self.max < self.min:
            raise ValueError(f"overlap max ({self.max}) is under min ({self.min})")
        return self


class Settle(BaseModel):
    """When the answers so far agree enough to stop asking: the majority's share of them (by
    integer counts), or for ratings the spread of scores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    share: float = Field(default=0.66, gt=0, le=1)
    max_spread: int = Field(default=1, ge=0)

    def share_ppm(self) -> int:
        return round(self.share * SHARE_SCALE)


class AutoAccept(BaseModel):
    """Verify campaigns: a draft at least this confident is accepted without an expert, but
    for an audit sample that experts still judge (the honest measure of what it lets through)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    confidence_at_least: float = Field(le=0)
    audit_rate: float = Field(default=0.05, ge=0, le=1)


class Route(BaseModel):
    """The order items are offered in, and which the model may decide alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order: Literal["file", "least_confident", "most_disagreement"] = "file"
    auto_accept: AutoAccept | None = None


def level_at_least(level: Level, wanted: Level) -> bool:
    return LEVELS.index(level) >= LEVELS.index(wanted)


def settled(votes: list[str], settle: Settle, rated: bool) -> tuple[bool, str]:
    """Whether these answers settle the item, and why not in words (for the `escalated`
    event). A rating settles on its spread; everything else on the majority's share."""
    if rated:
        scores = [int(vote) for vote in votes]
        spread = max(scores) - min(scores)
        return spread <= settle.max_spread, (
            f"the scores spread {spread}, more than {settle.max_spread}")
    top = Counter(votes).most_common(1)[0][1]
    ok = top * SHARE_SCALE >= settle.share_ppm() * len(votes)
    return ok, f"the majority holds {top} of {len(votes)}, under a share of {settle.share}"


def audited(campaign_id: str, item_id: str, rate: float) -> bool:
    """Whether a confident item still goes to experts: the SHA-256 of (campaign, item) read as
    a number in [0, 1) falls below `rate`. Deterministic, so every worker and test agrees."""
    digest = hashlib.sha256(f"{campaign_id}\n{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < rate


class PriorAnswer(BaseModel):
    """An earlier answer as an adjudicator sees it: unblinded, with who said it and why."""

    model_config = ConfigDict(frozen=True)

    expert: str
    decision: str  # as the expert meant it, in the drafts' labels on the adjudicator's card
    rationale: str | None = None


class Qualification(BaseModel):
    """`qualification: {items, pass_share}`: gold items every expert answers first; passing
    opens the campaign's real tasks. `items` is a JSON-lines path beside the campaign file, or
    (through the API) the items inline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: str | list[dict[str, object]]
    pass_share: float = Field(default=0.8, gt=0, le=1)
