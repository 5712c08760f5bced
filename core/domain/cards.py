"""Cards: a task as any channel shows it, free of platform types."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from core.domain.hard_cases import PriorAnswer
from core.domain.items import Turn
from core.domain.kinds import Kind, Scale
from core.domain.media import CardImage


class CardDraft(BaseModel):
    """A draft as shown: its label and text, never the model that wrote it."""

    model_config = ConfigDict(frozen=True)

    label: str
    text: str


class AskInfo(BaseModel):
    """What a live ask's card shows beyond a task's: who asks, by when, what it pays, and for
    `approve` the call it would make (an Edit changes its `args`)."""

    model_config = ConfigDict(frozen=True)

    ask: str  # the ask's id
    asker: str
    deadline_at: int  # ms
    pay: float | None = None
    currency: str | None = None
    urgent: bool = False
    function: str | None = None
    args: dict[str, Any] | None = None


class Estimate(BaseModel):
    """What the task will take and pay; `pilot` until the campaign has enough answers to tell."""

    model_config = ConfigDict(frozen=True)

    seconds: int
    pay: float | None = None
    currency: str | None = None
    pilot: bool = True


class Card(BaseModel):
    """One task for one expert; `lease` is the short opaque token every answer must carry."""

    model_config = ConfigDict(frozen=True)

    lease: str
    campaign: str
    title: str
    instructions: str
    kind: Kind
    item: str
    prompt: str | list[Turn]  # a conversation is shown turn by turn
    images: list[CardImage] = []  # shown at the top of the card, in the item's order
    drafts: list[CardDraft]
    allowed: list[str]
    scale: Scale | None = None
    labels: list[str] = []
    multi: bool = False
    expires_at: int
    estimate: Estimate
    resumed: bool = False  # a task the expert already held: it may be on their screen already
    rationale: Literal["none", "optional", "required"] = "none"  # a line of why, beside the answer
    # An adjudication: the earlier answers, unblinded; the expert's call needs a reason.
    adjudication: bool = False
    prior: list[PriorAnswer] = []
    ask: AskInfo | None = None  # a live ask (its lease starts with `ask-`), not a campaign task


IdleReason = Literal["no_tasks", "daily_cap", "quiet_hours", "paused"]


class Idle(BaseModel):
    """No task right now, and why, so a channel can tell the expert something useful."""

    model_config = ConfigDict(frozen=True)

    reason: IdleReason
    message: str


NextTask = Card | Idle
