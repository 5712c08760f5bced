"""Drafting: the models a campaign asks for drafts, and which drafts each item still needs.
Any OpenAI-compatible endpoint serves; the key itself is never stored, only the name of the
environment variable that holds it."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.domain.items import Item, JsonValue, Turn, turns_of
from core.domain.kinds import DRAFTS_PER_KIND, Kind

# What expertloop sets on every request itself; a campaign's `params` may not.
OWN_SECRETS = ("EXPERTLOOP_", "SLACK_", "TELEGRAM_", "REDIS_")
RESERVED_PARAMS = ("model", "messages", "stream", "n", "logprobs", "top_logprobs", "tools")


class Price(BaseModel):
    """What a million tokens cost, to put a price on every draft in the record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    currency: str = Field(default="USD", min_length=3, max_length=3)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return round((prompt_tokens * self.input_per_mtok
                      + completion_tokens * self.output_per_mtok) / 1_000_000, 8)


class ModelSpec(BaseModel):
    """One model that drafts. `max_concurrency` and `requests_per_minute` hold across every
    worker (they are kept in Redis), since that is what the endpoint sees."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\t\r\n|]+$")
    base_url: str = Field(pattern=r"^https?://\S+$")
    model: str | None = Field(default=None, min_length=1)
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    params: dict[str, JsonValue] = Field(default_factory=dict)
    max_concurrency: int = Field(default=4, ge=1, le=1024)
    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    price: Price | None = None

    @field_validator("api_key_env")
    @classmethod
    def _a_key_variable(cls, name: str | None) -> str | None:
        """Whoever posts a campaign picks the URL the key is sent to, so only a variable named
        as a model key may be sent, never one of expertloop's own secrets."""
        if name is None:
            return name
        if not name.endswith("_KEY") or name.startswith(OWN_SECRETS):
            raise ValueError(f"{name} is not a model key's variable: name one ending in _KEY, "
                             f"such as OPENAI_API_KEY, and not one of expertloop's own "
                             f"({', '.join(prefix + '*' for prefix in OWN_SECRETS)})")
        return name

    @field_validator("params")
    @classmethod
    def _not_reserved(cls, params: dict[str, JsonValue]) -> dict[str, JsonValue]:
        taken = sorted(set(params) & set(RESERVED_PARAMS))
        if taken:
            raise ValueError(f"expertloop sets {', '.join(taken)} itself; leave it out of params")
        return params

    @property
    def endpoint_model(self) -> str:
        """The model name the endpoint knows, which may differ from the name in the record."""
        return self.model or self.name


class Drafting(BaseModel):
    """The `drafting` block of a campaign file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str | None = Field(default=None, min_length=1)
    when: Literal["missing", "always"] = "missing"
    models: list[ModelSpec] = Field(min_length=1, max_length=26)

    @field_validator("models")
    @classmethod
    def _names_unique(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        names = [model.name for model in models]
        if len(set(names)) != len(names):
            raise ValueError("two models share a name; the name is what the record shows")
        return models

    def model(self, name: str) -> ModelSpec:
        return next(model for model in self.models if model.name == name)

    def slots(self, kind: Kind, given: int) -> list[str]:
        """The model of each draft an item with `given` drafts still needs, round-robin over the
        models: `missing` fills up to the kind's least, `always` adds one per model, both
        within the kind's most."""
        low, high = DRAFTS_PER_KIND[kind]
        need = max(low - given, 0)
        if self.when == "always":
            need = min(max(need, len(self.models)), high - given)
        return [self.models[slot % len(self.models)].name for slot in range(need)]

    def messages(self, item: Item, images: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The chat a model is called with: the item's own system turn wins over ours.
        `images`, the item's images as data URLs (the caller reads the bytes), go as OpenAI
        `image_url` parts before the text of the last turn, the user's question: the order
        of the exports' image parts, so a model is drafted as it is later trained."""
        turns = turns_of(item.prompt)
        if self.system and not any(turn.role == "system" for turn in turns):
            turns = [Turn(role="system", content=self.system), *turns]
        chat: list[dict[str, Any]] = [{"role": turn.role, "content": turn.content}
                                      for turn in turns]
        if images:
            chat[-1]["content"] = [*({"type": "image_url", "image_url": {"url": url}}
                                     for url in images),
                                   {"type": "text", "text": chat[-1]["content"]}]
        return chat


def data_url(type_: str, data: bytes) -> str:
    """An image inline, as OpenAI-compatible endpoints take it: no third party fetches it."""
    return f"data:{type_};base64,{base64.b64encode(data).decode('ascii')}"


def drafting_problem(drafting: Drafting, kind: Kind, given: int) -> str | None:
    """Why the models cannot draft what an item needs, or None."""
    low, high = DRAFTS_PER_KIND[kind]
    if drafting.when == "always" and given >= high:
        return (f"`drafting.when: always` adds drafts, but a {kind} item holds at most {high} "
                f"and this one has {given} already")
    return None


class DraftingStatus(BaseModel):
    """Items waiting on drafts, drafted, and set aside (`campaign redraft` tries them again);
    `paused` is the endpoint's own error while drafting waits for the coordinator."""

    pending: int = 0
    drafted: int = 0
    failed: int = 0
    discarded: int = 0  # replies that came after their slot had a draft (a retried request)
    paused: str | None = None


class DraftPlan(BaseModel):
    """What the store keeps of an item that waits for model drafts, to write it whole once the
    last draft is in: the item's JSON without drafts, its given drafts' JSON, the model of
    each missing draft, and the SHA-256 of each given text (identical drafts teach nothing)."""

    base: str
    given: str
    models: list[str]
    n_drafts: int
    gold: int
    texts: str


def draft_plan(item: Item, models: list[str]) -> DraftPlan:
    given = ",".join(draft.model_dump_json() for draft in item.drafts)
    texts = "".join(f"{text_sha(draft.text)}," for draft in item.drafts)
    return DraftPlan(base=item.model_dump_json(exclude={"drafts"}), given=given, models=models,
                     n_drafts=len(item.drafts) + len(models), gold=int(item.gold is not None),
                     texts=texts)


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
