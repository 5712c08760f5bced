"""Items and model drafts: what a coordinator asks experts to judge. A prompt is a plain string
or a conversation (chat turns ending with the user's), as chat models are called with."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
)

from core.domain.media import MAX_IMAGES, ItemImage, image_from

MAX_DRAFTS = 26  # drafts are shown labelled A..Z

JsonValue = Any  # pydantic checks it is JSON-serialisable; kept loose for model params and meta
Role = Literal["system", "user", "assistant"]


class Draft(BaseModel):
    """One model output, with enough identity to trace it back to the model that wrote it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    model: str = "unknown"
    model_version: str = ""
    params: dict[str, JsonValue] = Field(default_factory=dict)
    confidence: float | None = Field(  # the mean token logprob (<= 0), when the model gave it
        default=None, le=0, exclude_if=lambda value: value is None)


class Turn(BaseModel):
    """One message of a conversation, in the chat format every OpenAI-compatible model takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: str = Field(min_length=1, pattern=r"\S")


def _ends_with_user(turns: list[Turn]) -> list[Turn]:
    """The reply under judgment answers the last turn: a conversation ends with a user turn."""
    if turns[-1].role != "user":
        raise ValueError(f"a conversation ends with a user turn; this one ends with "
                         f"{turns[-1].role!r}")
    return turns


Conversation = Annotated[list[Turn], Field(min_length=1), AfterValidator(_ends_with_user)]
# Union tags pydantic puts in error paths, after the field they belong to.
UNION_TAGS = {"prompt": ("text", "conversation"), "overlap": ("number", "range")}


def _prompt_form(value: object) -> str:
    return "conversation" if isinstance(value, list) else "text"


Prompt = Annotated[
    Annotated[str, Tag("text"), Field(min_length=1)] | Annotated[Conversation, Tag("conversation")],
    Discriminator(_prompt_form)]


class Item(BaseModel):
    """A prompt with its drafts; `gold` is a known answer in the file's draft order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200, pattern=r"^[^\t\r\n]+$")
    prompt: Prompt
    drafts: list[Draft] = Field(default_factory=list, max_length=MAX_DRAFTS)
    images: list[Annotated[ItemImage, BeforeValidator(image_from)]] = Field(
        default_factory=list, max_length=MAX_IMAGES, exclude_if=lambda value: not value)
    gold: JsonValue = None
    meta: dict[str, JsonValue] = Field(default_factory=dict)


def item_confidence(item: Item) -> float | None:
    """An item is as confident as its least confident draft; None when no draft says."""
    known = [draft.confidence for draft in item.drafts if draft.confidence is not None]
    return min(known) if known else None


def draft_label(position: int) -> str:
    """Experts see drafts as A, B, C... in the order shown, never by model name."""
    return chr(ord("A") + position)


def turns_of(prompt: str | list[Turn]) -> list[Turn]:
    """Any prompt as a conversation: a plain string is one user turn."""
    return [Turn(role="user", content=prompt)] if isinstance(prompt, str) else prompt


def prompt_text(prompt: str | list[Turn]) -> str:
    """A prompt as one readable string, for places that hold text alone (a CSV cell, a key):
    a conversation's turns, each under its role."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{turn.role}: {turn.content}" for turn in prompt)


def clean_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """An error's field path without a union's tag: `prompt.2.role`, not
    `prompt.conversation.2.role`, so it matches the file."""
    return tuple(part for index, part in enumerate(loc)
                 if not (index and part in UNION_TAGS.get(str(loc[index - 1]), ())))
