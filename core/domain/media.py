"""Images in tasks. An item's image as posted names where its bytes are (a path beside the
campaign file, an http(s) URL, or base64 data through the API); import checks it, keeps the
bytes content-addressed, and the item as stored names them by SHA-256, so the record says
exactly which pixels an expert judged."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_IMAGES = 10  # per item
SHA256 = r"^[0-9a-f]{64}$"


def _unset(value: object) -> bool:
    """The stored form names only what it has: no `"path": null` beside a sha256."""
    return value is None


class ItemImage(BaseModel):
    """As posted, one of `path`, `url` or `data` (base64, with `type`), and `alt`. As stored:
    `sha256`, `type` (a MIME type), `width`, `height`, `bytes` and `alt` (default
    `image N of <item id>`, since Slack requires one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = Field(default=None, min_length=1, exclude_if=_unset)
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", exclude_if=_unset)
    data: str | None = Field(default=None, min_length=1, exclude_if=_unset)
    type: str | None = Field(default=None, pattern=r"^image/[a-z0-9.+-]+$", exclude_if=_unset)
    alt: str | None = Field(default=None, max_length=1000, exclude_if=_unset)
    sha256: str | None = Field(default=None, pattern=SHA256, exclude_if=_unset)
    width: int | None = Field(default=None, ge=1, exclude_if=_unset)
    height: int | None = Field(default=None, ge=1, exclude_if=_unset)
    bytes: int | None = Field(default=None, ge=1, exclude_if=_unset)

    @model_validator(mode="after")
    def _one_source(self) -> ItemImage:
        given = [name for name in ("path", "url", "data", "sha256") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("an image is one of a path, a url, base64 data, or (stored) a "
                             f"sha256; got {', '.join(given) or 'none'}")
        if self.data and not self.type:
            raise ValueError("base64 image data needs its `type`, e.g. image/png")
        return self

    @property
    def stored(self) -> bool:
        return self.sha256 is not None


def image_from(value: object) -> object:
    """A bare string in a file is a URL when it looks like one, else a path."""
    if isinstance(value, str):
        return {"url": value} if value.startswith(("http://", "https://")) else {"path": value}
    return value


class CardImage(BaseModel):
    """An image as a channel shows it: the bytes by their SHA-256 (read from the media store),
    their type and size, and the alt text."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    type: str
    alt: str
    width: int
    height: int
    bytes: int


class Media(Protocol):
    """Where image bytes live, by their SHA-256 (`EXPERTLOOP_MEDIA`): written once at import,
    read by every process that shows or serves them. Redis holds only the hashes."""

    def put(self, data: bytes) -> str:
        """Keep the bytes (once: the name is their SHA-256); returns the SHA-256."""
        ...

    def read(self, sha256: str) -> bytes:
        """The bytes; FileNotFoundError when the store has none by that name."""
        ...

    def has(self, sha256: str) -> bool: ...
