"""The archive's files (the `SegmentFiles` port): `<location>/<campaign>/<segment name>`, on a
local directory or an fsspec URL. Readers outside the store (DuckDB over the Parquet files)
rely on that layout.

A write never makes a second copy of a segment: a file already at the segment's name that holds
exactly the segment's events (a run killed after its file was written, before the trim, or a
second worker racing the first) is kept as it is and its meta returned, so the next run and
the trim name the same bytes. Anything else there (a partial or foreign file) is replaced:
the events are still in Redis, since nothing trims them before their file reads back."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from adapters.archive.segments import (
    check_file,
    events_of,
    file_meta,
    fsync_dir,
    segment_bytes,
    write_local,
)
from core.provenance.segments import ArchivedEvent, SegmentError, SegmentMeta


class LocalSegmentFiles:
    """A directory on this machine or a shared mount. Each segment is written by `write_local`
    (temp file, fsync, rename, fsync the folder, read back) in a folder of its own, then linked
    to its name: a link never replaces a file, so the first writer's bytes are the ones kept."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def location(self) -> str:
        return str(self.root)

    def write_segment(self, segment: SegmentMeta, events: list[ArchivedEvent]) -> SegmentMeta:
        try:
            return self._write(segment, events)
        except OSError as exc:
            raise SegmentError(f"segment {segment.name}: not written to the archive "
                               f"{self.root}: {exc}") from exc

    def _write(self, segment: SegmentMeta, events: list[ArchivedEvent]) -> SegmentMeta:
        folder = self.root / segment.campaign
        target = folder / segment.name
        kept = self._kept(target, segment, events)
        if kept is not None:
            return kept
        staging = folder / f".{segment.name}.writing"
        written = write_local(staging, segment, events)
        try:
            os.link(staging / segment.name, target)
        except FileExistsError:  # another writer got there first: keep its file if it is ours
            kept = self._kept(target, segment, events)
            if kept is None:
                os.replace(staging / segment.name, target)
        except OSError:  # a filesystem without hard links: a rename, which may replace
            os.replace(staging / segment.name, target)
        fsync_dir(folder)
        shutil.rmtree(staging, ignore_errors=True)  # with any temp file a killed run left
        if kept is not None:
            return kept
        check_file(target.read_bytes(), written)
        return written

    def read_segment(self, segment: SegmentMeta) -> list[ArchivedEvent]:
        return checked(self.read_bytes(segment), segment, self.location())

    def read_bytes(self, segment: SegmentMeta) -> bytes:
        """The segment's file as it is, unchecked; SegmentError if it cannot be read."""
        path = self.root / segment.campaign / segment.name
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            if not self.root.is_dir():
                raise SegmentError(f"segment {segment.name}: the archive {self.root} cannot be "
                                   "reached (no such directory)") from exc
            raise SegmentError(f"segment {segment.name}: missing from the archive "
                               f"({path}; deleted?)") from exc
        except OSError as exc:
            raise SegmentError(f"segment {segment.name}: the archive {self.root} cannot be "
                               f"read: {exc}") from exc

    def _kept(self, target: Path, segment: SegmentMeta,
              events: list[ArchivedEvent]) -> SegmentMeta | None:
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            return None
        return same_segment(data, segment, events)


class FsspecSegmentFiles:
    """The same layout on any fsspec filesystem (`s3://bucket/archive`, `memory://archive`).
    Only `memory://` is tested here; a real object store is untested. Object stores write
    whole objects, so a reader never sees half a file, but they have no link that refuses to
    replace: two writers of one segment race, and the Lua refusal of the second trim plus the
    read back after the write are what keep the manifest naming the bytes that are there."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._fs: Any = None

    def location(self) -> str:
        return self.url

    def write_segment(self, segment: SegmentMeta, events: list[ArchivedEvent]) -> SegmentMeta:
        key = self._key(segment)
        try:
            kept = same_segment(self._filesystem().cat_file(key), segment, events)
        except FileNotFoundError:
            kept = None
        if kept is not None:
            return kept
        data = segment_bytes(segment, events)
        done = segment.model_copy(update={"sha256": hashlib.sha256(data).hexdigest()})
        try:
            self._filesystem().pipe_file(key, data)
            back = self._filesystem().cat_file(key)
        except OSError as exc:
            raise SegmentError(f"segment {segment.name}: not written to {self.url}: {exc}") from exc
        if back != data:
            raise SegmentError(f"segment {segment.name}: {self.url} returned other bytes than "
                               "were written")
        check_file(back, done)
        return done

    def read_segment(self, segment: SegmentMeta) -> list[ArchivedEvent]:
        return checked(self.read_bytes(segment), segment, self.url)

    def read_bytes(self, segment: SegmentMeta) -> bytes:
        """The segment's file as it is, unchecked; SegmentError if it cannot be read."""
        key = self._key(segment)
        try:
            return self._filesystem().cat_file(key)  # type: ignore[no-any-return]
        except FileNotFoundError as exc:
            raise SegmentError(f"segment {segment.name}: missing from the archive ({key}; "
                               "deleted?)") from exc
        except Exception as exc:  # any backend's failure to reach its store
            raise SegmentError(f"segment {segment.name}: the archive {self.url} cannot be "
                               f"reached: {exc}") from exc

    def _key(self, segment: SegmentMeta) -> str:
        return f"{self.url}/{segment.campaign}/{segment.name}"

    def _filesystem(self) -> Any:
        if self._fs is None:
            import fsspec  # type: ignore[import-untyped]  # only for an fsspec URL

            self._fs = fsspec.core.url_to_fs(self.url)[0]
        return self._fs


def checked(data: bytes, segment: SegmentMeta, location: str) -> list[ArchivedEvent]:
    """The events of a file read from `location`, if it is the one the manifest names."""
    try:
        return events_of(check_file(data, segment))
    except SegmentError as exc:
        raise SegmentError(f"{exc} (archive {location})") from exc


def same_segment(data: bytes, segment: SegmentMeta,
                 events: list[ArchivedEvent]) -> SegmentMeta | None:
    """The meta of the file in `data` (with its SHA-256) if it holds exactly `events` as
    `segment`; else None (a partial, foreign or changed file)."""
    try:
        own = file_meta(data)
        found = events_of(check_file(data, segment.model_copy(update={"sha256": ""})))
    except (SegmentError, OSError, ValueError):
        return None
    if own.model_copy(update={"archived_at": 0}) != segment.model_copy(
            update={"archived_at": 0, "sha256": ""}) or found != events:
        return None
    return own.model_copy(update={"sha256": hashlib.sha256(data).hexdigest()})


def open_segment_files(location: str) -> LocalSegmentFiles | FsspecSegmentFiles:
    """A plain path (or `file://`) is a local directory; any other `scheme://` goes through
    fsspec."""
    if "://" in location and not location.startswith("file://"):
        return FsspecSegmentFiles(location)
    return LocalSegmentFiles(Path(location.removeprefix("file://")))
