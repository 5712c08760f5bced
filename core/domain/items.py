"""Items and model drafts: what a coordinator asks experts to judge."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_DRAFTS = 26  # drafts are shown labelled A..Z

JsonValue = Any  # pydantic checks it is JSON-serialisable; kept loose for model params and meta


class Draft(BaseModel):
    """One model output, with enough identity to trace it back to the model that wrote it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    model: str = "unknown"
    model_version: str = ""
    params: dict[str, JsonValue] = Field(default_factory=dict)


class Item(BaseModel):
    """A prompt with its drafts; `gold` is a known answer in the file's draft order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200, pattern=r"^[^\t\r\n]+$")
    prompt: str = Field(min_length=1)
    drafts: list[Draft] = Field(default_factory=list, max_length=MAX_DRAFTS)
    gold: JsonValue = None
    meta: dict[str, JsonValue] = Field(default_factory=dict)


def draft_label(position: int) -> str:
    """Experts see drafts as A, B, C... in the order shown, never by model name."""
    return chr(ord("A") + position)
