"""The media store: image bytes content-addressed by SHA-256 under `EXPERTLOOP_MEDIA`.

A name is its content's hash, so a write is idempotent and a file never changes once written;
every process (web, worker, CLI) reads the same directory."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked(sha256: str) -> str:
    """A name from outside (a URL, a record) must not walk out of the store."""
    if not SHA256.match(sha256):
        raise FileNotFoundError(f"not a SHA-256: {sha256[:80]!r}")
    return sha256


class DirectoryMedia:
    """`<root>/<sha[:2]>/<sha>`; written through a temp file and a rename, so a reader never
    sees half an image, and two processes writing the same image both succeed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        name = _checked(sha256)
        return self.root / name[:2] / name

    def put(self, data: bytes) -> str:
        name = sha256_of(data)
        target = self.path(name)
        if target.exists():
            return name
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return name

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def has(self, sha256: str) -> bool:
        try:
            return self.path(sha256).is_file()
        except FileNotFoundError:
            return False


class FsspecMedia:
    """The same layout on any fsspec filesystem (`s3://bucket/media`, `memory://media`).
    Untested against a real object store: only `memory://` runs in the tests. fsspec is
    imported on first use, so the local store needs nothing beyond the standard library."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._fs: Any = None

    def _filesystem(self) -> Any:
        if self._fs is None:
            import fsspec  # type: ignore[import-untyped]  # only for an fsspec URL

            self._fs = fsspec.core.url_to_fs(self.url)[0]
        return self._fs

    def _key(self, sha256: str) -> str:
        name = _checked(sha256)
        return f"{self.url}/{name[:2]}/{name}"

    def put(self, data: bytes) -> str:
        name = sha256_of(data)
        key = self._key(name)
        fs = self._filesystem()
        if not fs.exists(key):
            fs.pipe_file(key, data)  # object stores write whole objects: no partial reads
        return name

    def read(self, sha256: str) -> bytes:
        data: bytes = self._filesystem().cat_file(self._key(sha256))
        return data

    def has(self, sha256: str) -> bool:
        try:
            return bool(self._filesystem().exists(self._key(sha256)))
        except FileNotFoundError:
            return False


def media_from(location: str | Path) -> DirectoryMedia | FsspecMedia:
    """A plain path is a local directory; `scheme://...` goes through fsspec."""
    text = str(location)
    if "://" in text and not text.startswith("file://"):
        return FsspecMedia(text)
    return DirectoryMedia(Path(text.removeprefix("file://")))
