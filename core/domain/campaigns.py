"""Campaigns: the spec a coordinator posts, and what the service keeps about it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.domain.asks import ASKS_LOG
from core.domain.drafting import Drafting, DraftingStatus, drafting_problem
from core.domain.hard_cases import Level, Overlap, Qualification, Rationale, Route, Settle
from core.domain.items import Item
from core.domain.kinds import DRAFTS_PER_KIND, Kind, KindOptions, Scale
from core.domain.qualification import QualificationCounts

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # safe inside Redis hash tags and URLs
# What every channel can show, refused when posted rather than cut when shown: a label is a
# button's text (Slack: at most 75 characters), the labels and the points of a rate scale are
# a menu's options (Slack: at most 100), https://docs.slack.dev/reference/block-kit/block-elements
LABEL_CHARS = 75
MOST_LABELS = 100
MOST_SCALE_POINTS = 100


def _label_shown_whole(label: str) -> str:
    """A label an expert can read on a button, whole."""
    if not label.strip():
        raise ValueError("a label needs some text")
    if len(label) > LABEL_CHARS:
        raise ValueError(f"a label is shown on a button, which holds at most {LABEL_CHARS} "
                         f"characters; this one has {len(label)}")
    return label


LabelText = Annotated[str, AfterValidator(_label_shown_whole)]


class Pay(BaseModel):
    """Per task or per hour, in a currency, with an optional hourly floor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_task: float | None = Field(default=None, ge=0)
    per_hour: float | None = Field(default=None, ge=0)
    currency: str = Field(default="USD", min_length=3, max_length=3)
    min_hourly: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_basis(self) -> Pay:
        if (self.per_task is None) == (self.per_hour is None):
            raise ValueError("give exactly one of per_task or per_hour")
        return self


class CampaignState(StrEnum):
    active = "active"
    paused = "paused"
    closed = "closed"


OverlapField = Annotated[
    Annotated[int, Tag("number"), Field(ge=1, le=100)] | Annotated[Overlap, Tag("range")],
    Discriminator(lambda value: "number" if isinstance(value, int) else "range")]


class CampaignSpec(BaseModel):
    """The campaign file without its items (they stream separately)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(default=None, pattern=ID_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    instructions: str = ""
    kind: Kind
    scale: Scale | None = None
    labels: list[LabelText] = Field(default_factory=list, validate_default=True)
    multi: bool = False
    overlap: OverlapField = 1  # a number means min = max
    settle: Settle = Settle()
    escalate_to: Level | None = None  # judgments past min go to this level and above first
    escalate_wait_s: int = Field(default=600, ge=0)  # ...then to anyone eligible
    adjudicate: bool = False  # unsettled at max: an adjudicator makes the final call
    rationale: Rationale = "none"
    route: Route = Route()
    qualification: Qualification | None = None
    images_lossless: bool = False  # Telegram sends images as documents: the original bytes
    skills: list[str] = Field(default_factory=list)
    pay: Pay | None = None
    time_limit_s: int = Field(default=600, ge=10, le=86_400)
    gold_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    drafting: Drafting | None = None
    # How fast an expert can read a draft: an acceptance quicker than this is worth a look.
    reading_chars_per_s: float = Field(default=25.0, gt=0)

    @field_validator("scale")
    @classmethod
    def _scale_for_rate(cls, scale: Scale | None, info: ValidationInfo) -> Scale | None:
        if scale is not None and info.data.get("kind") != Kind.rate:
            raise ValueError("`scale` only applies to kind: rate")
        if scale is not None and scale.max - scale.min + 1 > MOST_SCALE_POINTS:
            raise ValueError(f"a scale has at most {MOST_SCALE_POINTS} points (a menu shows no "
                             f"more); {scale.min} to {scale.max} is {scale.max - scale.min + 1}")
        return scale

    @field_validator("labels")
    @classmethod
    def _labels_for_label(cls, labels: list[str], info: ValidationInfo) -> list[str]:
        kind = info.data.get("kind")
        if kind == Kind.label and not labels:
            raise ValueError("a label campaign needs `labels`")
        if kind is not None and kind != Kind.label and labels:
            raise ValueError("`labels` only applies to kind: label")
        if len(set(labels)) != len(labels):
            raise ValueError("`labels` has a duplicate")
        if len(labels) > MOST_LABELS:
            raise ValueError(f"at most {MOST_LABELS} labels (a menu shows no more); "
                             f"got {len(labels)}")
        return labels

    @property
    def overlap_min(self) -> int:
        return self.overlap if isinstance(self.overlap, int) else self.overlap.min

    @property
    def overlap_max(self) -> int:
        return self.overlap if isinstance(self.overlap, int) else self.overlap.max

    @field_validator("id")
    @classmethod
    def _not_the_asks_log(cls, value: str | None) -> str | None:
        if value == ASKS_LOG:
            raise ValueError(f"{ASKS_LOG!r} is the live asks' log; choose another id")
        return value

    @field_validator("kind")
    @classmethod
    def _not_an_ask_kind(cls, kind: Kind) -> Kind:
        if kind == Kind.approve:
            raise ValueError("kind approve is for live asks (POST /api/asks), not campaigns")
        return kind

    @model_validator(mode="after")
    def _hard_cases_fit_the_kind(self) -> CampaignSpec:
        if self.overlap_max > self.overlap_min and self.kind in (Kind.correct, Kind.write):
            raise ValueError(f"a {self.kind} answer is no vote, so its overlap cannot grow: "
                             f"give one number")
        if self.route.auto_accept is not None and self.kind != Kind.verify:
            raise ValueError("route.auto_accept applies to kind: verify only")
        return self

    def options(self) -> KindOptions:
        scale = self.scale or (Scale() if self.kind == Kind.rate else None)
        return KindOptions(kind=self.kind, scale=scale, labels=tuple(self.labels), multi=self.multi)


class Campaign(BaseModel):
    """A posted campaign as stored: the spec, its id, and a short code for lease tokens."""

    model_config = ConfigDict(frozen=True)

    id: str
    code: str
    spec: CampaignSpec
    created_at: int
    posted_by: str = "coordinator"


class CampaignStatus(BaseModel):
    """Progress counts, the shape of `GET /api/campaigns/{id}` and `campaign status --json`."""

    id: str
    title: str
    kind: Kind
    state: CampaignState
    items: int = 0
    answers: int = 0
    in_progress: int = 0
    done: int = 0
    skipped: int = 0
    flagged: int = 0
    none_acceptable: int = 0
    expired: int = 0
    dead_requests: int = 0  # answers set aside after every try (the expert was told)
    awaiting_adjudication: int = 0  # items unsettled at their most judgments, for an adjudicator
    adjudicated: int = 0
    conversations: int = Field(  # items whose prompt is a conversation (exports' shape)
        default=0, exclude_if=lambda value: value == 0)
    drafting: DraftingStatus | None = Field(  # only for a campaign whose models draft
        default=None, exclude_if=lambda value: value is None)
    qualification: QualificationCounts | None = Field(  # only for a campaign with one
        default=None, exclude_if=lambda value: value is None)


def item_problem(spec: CampaignSpec, item: Item) -> tuple[tuple[str, ...], str] | None:
    """Why an otherwise well-formed item does not fit this campaign's kind, or None."""
    low, high = DRAFTS_PER_KIND[spec.kind]
    given = len(item.drafts)
    drafted = 0
    if spec.drafting is not None:
        problem = drafting_problem(spec.drafting, spec.kind, given)
        if problem:
            return ("drafts",), problem
        drafted = len(spec.drafting.slots(spec.kind, given))
    if not low <= given + drafted <= high:
        want = str(low) if low == high else f"{low} to {high}"
        return ("drafts",), f"a {spec.kind} item needs {want} drafts, got {given}"
    if item.gold is not None:
        problem = _gold_problem(spec, given + drafted, item.gold)
        if problem:
            return ("gold",), problem
    return None


def _gold_problem(spec: CampaignSpec, n_drafts: int, gold: object) -> str | None:
    kind = spec.kind
    if kind == Kind.pairwise and gold not in (0, 1, "tie"):
        return "pairwise gold is 0, 1 (the better draft's index) or \"tie\""
    if kind == Kind.rank and (not isinstance(gold, list) or sorted(gold) != list(range(n_drafts))):
        return "rank gold is a list of every draft index, best first"
    if kind == Kind.rate:
        scale = spec.options().scale or Scale()
        if not isinstance(gold, int) or not scale.min <= gold <= scale.max:
            return f"rate gold is an integer from {scale.min} to {scale.max}"
    if kind == Kind.label:
        labels = gold if isinstance(gold, list) else [gold]
        if not labels or any(label not in spec.labels for label in labels):
            return "label gold must be one or more of the campaign's labels"
    if kind == Kind.verify and gold not in ("accept", "override"):
        return "verify gold is \"accept\" or \"override\""
    if kind in (Kind.correct, Kind.write) and not isinstance(gold, str):
        return "gold for a text task is the reference text"
    return None

