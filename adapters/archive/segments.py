"""Sealed log segments as immutable Parquet files: the format, and writing and reading one.

A row is one event: its `seq`, its seal (`hash`), its stored `body` (the bytes the chain
hashes, so a segment verifies on its own) and columns derived from the body when it was
archived, for the reports to scan. A field no column names stays in `body` and in
`payload` (the payload's JSON), so later event kinds need no migration.

A segment file is written once, fsynced, read back and compared before anything trims the
events from Redis; its `SegmentMeta` (also in the file's own key-value metadata, without the
file's hash) is what the manifest keeps."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from core.provenance.segments import ArchivedEvent, SegmentError, SegmentMeta, segment_name

META_KEY = b"expertloop"
CHAIN_COLUMNS = ["seq", "hash", "body"]  # what verify and a read back need of a file
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SCHEMA = pa.schema([
    ("seq", pa.int64()),
    ("hash", pa.string()),
    ("body", pa.string()),
    ("type", pa.string()),
    ("at", pa.int64()),
    ("actor", pa.string()),
    ("expert", pa.string()),
    ("item", pa.string()),
    ("lease", pa.string()),
    ("payload", pa.string()),
])


def _columns(event: ArchivedEvent) -> dict[str, Any]:
    parsed = json.loads(event.body)
    payload = parsed.get("payload")
    return {"seq": event.seq, "hash": event.hash, "body": event.body,
            "type": parsed.get("type"), "at": _ms(parsed.get("at")), "actor": parsed.get("actor"),
            "expert": parsed.get("expert"), "item": parsed.get("item"),
            "lease": parsed.get("lease"),
            "payload": None if payload is None else json.dumps(payload, separators=(",", ":"),
                                                                sort_keys=True)}


def _ms(at: str | None) -> int | None:
    """An event's `at` (ISO 8601 UTC with ms, core.provenance.events.iso_ms) as epoch ms."""
    if at is None:
        return None
    return (datetime.fromisoformat(at) - EPOCH) // timedelta(milliseconds=1)


def segment_table(events: Iterable[ArchivedEvent]) -> pa.Table:
    rows = [_columns(event) for event in events]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def segment_bytes(meta: SegmentMeta, events: list[ArchivedEvent]) -> bytes:
    """The file's bytes: the rows, and the meta (without `sha256`) in the key-value metadata."""
    table = segment_table(events)
    inner = meta.model_copy(update={"sha256": ""}).model_dump_json().encode()
    table = table.replace_schema_metadata({META_KEY: inner})
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()


def meta_for(campaign: str, events: list[ArchivedEvent], prev: str, now_ms: int) -> SegmentMeta:
    first, last = events[0], events[-1]
    return SegmentMeta(campaign=campaign, name=segment_name(first.seq, last.seq),
                       first_seq=first.seq, last_seq=last.seq, prev=prev,
                       last_hash=last.hash, events=len(events), archived_at=now_ms)


def write_local(folder: Path, meta: SegmentMeta, events: list[ArchivedEvent]) -> SegmentMeta:
    """Write through a temp file, fsync it and the folder, rename, then read the file back and
    compare: only a segment returned from here may have its events trimmed from Redis. A
    segment already there with the same content (a crash after the write) is kept as it is."""
    data = segment_bytes(meta, events)
    done = meta.model_copy(update={"sha256": hashlib.sha256(data).hexdigest()})
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / meta.name
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".segment-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_dir(folder)
    check_file(target.read_bytes(), done)
    return done


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_file(data: bytes, meta: SegmentMeta) -> pa.Table:
    """The table in `data`, if it is the segment `meta` names; else SegmentError saying why."""
    found = hashlib.sha256(data).hexdigest()
    if meta.sha256 and found != meta.sha256:
        raise SegmentError(f"segment {meta.name}: its SHA-256 is {found[:16]}..., the manifest "
                           f"says {meta.sha256[:16]}... (replaced or truncated)")
    # The chain's columns only (the SHA-256 above vouches for the whole file), through
    # ParquetFile: pq.read_table would first import pyarrow.dataset (a quarter second).
    try:
        table = pq.ParquetFile(io.BytesIO(data)).read(columns=CHAIN_COLUMNS)
    except (pa.ArrowException, OSError) as exc:
        raise SegmentError(f"segment {meta.name}: not a readable Parquet file: {exc}") from exc
    seqs = table.column("seq")
    if table.num_rows != meta.events or (table.num_rows and (
            seqs[0].as_py() != meta.first_seq or seqs[-1].as_py() != meta.last_seq)):
        raise SegmentError(f"segment {meta.name}: holds {table.num_rows} events, the manifest "
                           f"says {meta.events} ({meta.first_seq}..{meta.last_seq})")
    return table


def file_meta(data: bytes) -> SegmentMeta:
    """The meta a segment file carries about itself (its `sha256` is blank)."""
    schema = pq.read_schema(io.BytesIO(data))
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise SegmentError("not an expertloop segment: no metadata")
    return SegmentMeta.model_validate_json(raw)


def events_of(table: pa.Table) -> list[ArchivedEvent]:
    return [ArchivedEvent(seq=seq, hash=digest, body=body) for seq, digest, body in zip(
        table.column("seq").to_pylist(), table.column("hash").to_pylist(),
        table.column("body").to_pylist(), strict=True)]
