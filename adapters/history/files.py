"""Where the reader finds an archived segment (`<location>/<campaign>/<name>`, the layout of
adapters/archive/files.py) and keeps its tallies (`<name>.panel.json` beside it), on a local
directory or an fsspec URL. A tallies file is a cache: written whole (a temp name, then a
rename; an object store writes whole objects), and computed again when absent or unreadable.
Only `memory://` is tested of the fsspec backends."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from core.provenance.segments import SegmentMeta

SUFFIX = ".panel.json"


def is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


class PanelFiles:
    def __init__(self, location: str) -> None:
        self.location = location.rstrip("/") if is_url(location) else location
        self._fs: Any = None

    def segment_path(self, segment: SegmentMeta) -> str:
        """What DuckDB's read_parquet opens: a path, or a URL on a registered filesystem."""
        if is_url(self.location):
            return f"{self.location}/{segment.campaign}/{segment.name}"
        return str(Path(self.location.removeprefix("file://")) / segment.campaign / segment.name)

    def filesystems(self) -> list[Any]:
        """The fsspec filesystem DuckDB must read the segments through (none for a path)."""
        return [self._filesystem()] if is_url(self.location) else []

    def read_panel(self, segment: SegmentMeta) -> str | None:
        path = self.segment_path(segment) + SUFFIX
        try:
            if is_url(self.location):
                data: bytes = self._filesystem().cat_file(path)
                return data.decode()
            return Path(path).read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            return None

    def write_panel(self, segment: SegmentMeta, text: str) -> None:
        path = self.segment_path(segment) + SUFFIX
        if is_url(self.location):
            self._filesystem().pipe_file(path, text.encode())
            return
        folder = Path(path).parent
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".panel-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def remove_panel(self, segment: SegmentMeta) -> None:
        """Drop a segment's tallies file, if there is one."""
        path = self.segment_path(segment) + SUFFIX
        if is_url(self.location):
            if self._filesystem().exists(path):
                self._filesystem().rm_file(path)
            return
        Path(path).unlink(missing_ok=True)

    def _filesystem(self) -> Any:
        if self._fs is None:
            import fsspec  # type: ignore[import-untyped]  # only for an fsspec URL

            self._fs = fsspec.core.url_to_fs(self.location)[0]
        return self._fs
