"""Importing an item's images: read each from where it was posted (a file beside the campaign
file, a URL fetched once, base64 data), decode it, keep the bytes in the media store by SHA-256
and hold the item in stored form, so the record names the exact pixels an expert judged.

Every image of a campaign is checked before any item reaches Redis; a refused campaign may leave
the bytes of its good images in the media store, unreferenced and harmless (a name is its
content), which also spares a second fetch when the fixed campaign is posted again."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

from core.domain.items import Item
from core.domain.media import ItemImage, Media
from core.ports import ImageChecker, ImageFetcher, ImageRefused
from core.service.staging import MAX_PROBLEMS, ItemSpool

# What every channel can show (Slack image blocks take PNG, JPEG and GIF; it converts WebP).
SUPPORTED = ("image/png", "image/jpeg", "image/gif", "image/webp")
Fault = tuple[int, str, str]  # image index, field, why


@dataclass(frozen=True)
class ImageImport:
    """What import needs: the media store, a decoder, a fetcher (None: URLs refused) and the
    largest image accepted (`EXPERTLOOP_MEDIA_MAX_MB`)."""

    media: Media
    checker: ImageChecker
    fetcher: ImageFetcher | None
    max_bytes: int

    def store(self, item: Item, base_dir: Path | None) -> tuple[Item, list[Fault]]:
        """The item with every image in stored form, and the faults of those that failed.
        `base_dir` None: the item came through the API, where a path is refused."""
        stored, faults = [], []
        for index, image in enumerate(item.images):
            try:
                stored.append(self._stored(image, base_dir, f"image {index + 1} of {item.id}"))
            except ImageRefused as exc:
                faults.append((index, _source_field(image), str(exc)))
        return item.model_copy(update={"images": stored}), faults

    def _stored(self, image: ItemImage, base_dir: Path | None, default_alt: str) -> ItemImage:
        data = self._bytes(image, base_dir)
        info = self.checker.check(data)
        if info.type not in SUPPORTED:
            raise ImageRefused(f"{info.type} is not supported; send {', '.join(SUPPORTED)}")
        if image.type and image.data and image.type != info.type:
            raise ImageRefused(f"the data says {image.type} but decodes as {info.type}")
        sha256 = self.media.put(data)
        return ItemImage(sha256=sha256, type=info.type, width=info.width, height=info.height,
                         bytes=len(data), alt=image.alt or default_alt)

    def _bytes(self, image: ItemImage, base_dir: Path | None) -> bytes:
        if image.path is not None:
            return self._file(image.path, base_dir)
        if image.url is not None:
            if self.fetcher is None:
                raise ImageRefused("image URLs cannot be fetched by this process")
            return self._sized(self.fetcher.fetch(image.url, self.max_bytes))
        if image.data is not None:
            return self._sized(_decoded(image.data))
        return self._held(str(image.sha256))

    def _file(self, path: str, base_dir: Path | None) -> bytes:
        if base_dir is None:
            raise ImageRefused("a path is not accepted here (the server must not read its own "
                               "files for a caller): send `url` or base64 `data` with `type`")
        full = base_dir / path
        try:
            size = full.stat().st_size
            if size > self.max_bytes:
                raise ImageRefused(self._too_big(size))
            return full.read_bytes()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ImageRefused(f"no such file: {path} (paths are relative to the campaign "
                               "file)") from exc
        except IsADirectoryError as exc:
            raise ImageRefused(f"{path} is a directory, not an image") from exc
        except PermissionError as exc:
            raise ImageRefused(f"cannot read {path}: permission denied") from exc

    def _held(self, sha256: str) -> bytes:
        """An image given in stored form (an item exported and posted again) must be here."""
        try:
            return self.media.read(sha256)
        except FileNotFoundError as exc:
            raise ImageRefused("no image with this sha256 in the media store") from exc

    def _sized(self, data: bytes) -> bytes:
        if len(data) > self.max_bytes:
            raise ImageRefused(self._too_big(len(data)))
        return data

    def _too_big(self, size: int) -> str:
        return (f"{size / (1 << 20):.1f} MB is over the {self.max_bytes / (1 << 20):g} MB an "
                "image may have (EXPERTLOOP_MEDIA_MAX_MB)")


def _decoded(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageRefused("`data` is not base64") from exc


def _source_field(image: ItemImage) -> str:
    return next(name for name in ("path", "url", "data", "sha256") if getattr(image, name))


def import_images(spool: ItemSpool, images: ImageImport | None) -> None:
    """Put every spooled item's images in stored form, or refuse the campaign whole with the
    file, line and field of each fault. Blocking (files, fetches, decoding): run in a thread."""

    def restage(item: Item, loc: tuple[str | int, ...], line: int | None) -> Item | None:
        if len(spool.problems) >= MAX_PROBLEMS:
            return None  # refused already; spare the fetches
        if images is None:
            spool.problem("this process has no media store to keep images in",
                          (*loc, "images"), line)
            return None
        stored, faults = images.store(item, spool.base_dir)
        for index, field, why in faults:
            spool.problem(why, (*loc, "images", index, field), line)
        return None if faults else stored

    spool.restage(restage)
    spool.check()
