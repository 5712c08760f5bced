"""Shared by the image tests: images made on the spot, their SHA-256, and the import the CLI
and the API wire (Pillow, the guarded fetcher). The `media` store fixture is in conftest.py."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from adapters.media.checker import PillowChecker
from adapters.media.fetch import GuardedFetcher
from adapters.media.store import DirectoryMedia
from core.service.images import ImageImport


def png(width: int = 40, height: int = 30, color: str = "red", kind: str = "PNG") -> bytes:
    """An image of one colour; WebP is written lossless, so its pixels can be compared."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, kind, **(
        {"lossless": True} if kind == "WEBP" else {}))
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def importer(media: DirectoryMedia, hosts: frozenset[str] = frozenset({"127.0.0.1"}),
             max_bytes: int = 20 << 20) -> ImageImport:
    return ImageImport(media, PillowChecker(), GuardedFetcher(hosts, timeout_s=10), max_bytes)
