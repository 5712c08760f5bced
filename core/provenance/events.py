"""Provenance events and their hash chain: the record that proves what was drafted and decided."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Actor = Literal["expert", "coordinator", "model", "system"]
GENESIS = "0" * 64  # `prev` of the first event of every campaign's chain


class Event(BaseModel):
    """One state change. `seq` orders it within its campaign; `prev`/`hash` chain it to the last."""

    model_config = ConfigDict(frozen=True)

    seq: int = 0
    campaign: str
    type: str
    at: str
    actor: Actor
    actor_id: str | None = None
    expert: str | None = None
    item: str | None = None
    lease: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    prev: str | None = None
    hash: str | None = None


def iso_ms(ms: int) -> str:
    """UTC with milliseconds, the one time format of the log."""
    t = time.gmtime(ms // 1000)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{ms % 1000:03d}Z")


def body_json(event: Event) -> str:
    """The stored form: everything but `seq`, `prev` and `hash`, which the log itself supplies."""
    return event.model_dump_json(exclude={"seq", "prev", "hash"}, exclude_none=True)


def canonical(fields: dict[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8. The same event always hashes the same."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def chain_hash(fields: dict[str, Any], seq: int, prev: str) -> str:
    """SHA-256 over the canonical JSON of the event without `hash` (with its `seq` and `prev`)."""
    whole = {**fields, "seq": seq, "prev": prev}
    whole.pop("hash", None)
    return hashlib.sha256(canonical(whole)).hexdigest()


def open_body(campaign: str, type_: str, at: int, actor: Actor, **ids: str | None) -> str:
    """An event body left open (no closing brace), shared by every `item_added` of an import:
    the store appends each item's id and body to it, so ~1 kB items are not encoded twice."""
    fields = {"actor": actor, "at": iso_ms(at), "campaign": campaign, "type": type_}
    fields.update({name: value for name, value in ids.items() if value is not None})
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))[:-1]
