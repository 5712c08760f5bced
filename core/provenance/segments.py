"""Sealed log segments, as the core sees them: what one holds and how it ties into the chain.
The files themselves (Parquet, adapters/archive/) and the manifest (Redis) live in adapters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from core.errors import ExpertloopError

SCHEMA_VERSION = 1


class SegmentMeta(BaseModel):
    """What a segment holds and how to check it: its first event's `prev` and its last event's
    `hash` tie it into the chain; `sha256` (of the whole file) catches a replaced or truncated
    file. `name` is relative to the campaign's folder in the archive."""

    model_config = ConfigDict(frozen=True)

    campaign: str
    name: str
    first_seq: int
    last_seq: int
    prev: str
    last_hash: str
    events: int
    sha256: str = ""
    archived_at: int = 0
    schema_version: int = SCHEMA_VERSION


def segment_name(first_seq: int, last_seq: int) -> str:
    """A segment's file name: its seq range, zero-padded so names sort in log order."""
    return f"{first_seq:012d}-{last_seq:012d}.parquet"


class ArchivedEvent(BaseModel):
    """An event as a segment holds it: its place, its seal and its stored body."""

    model_config = ConfigDict(frozen=True)

    seq: int
    hash: str
    body: str


class SegmentError(ExpertloopError):
    """A segment that cannot be read, or is not the file the manifest names: the command line
    says so in one line, and a report over it fails rather than leaving rows out."""
