"""Signed, expiring links to an item's images, and the route that serves them (`/media/<sha256>
?sig=&exp=`). An expert's card carries links valid until their lease ends; without the secret
nobody can make one, so the store cannot be enumerated, and a copied link stops working."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from aiohttp import web

from core.domain.media import Media
from core.ports import Access, Clock

ROUTE = "/media/{sha256:[0-9a-f]{64}}"
# The CSRF tokens are HMACs under the same shared secret: a key of its own for links keeps a
# CSRF token from ever passing for a link's signature, and the other way round.
LINK_KEY_LABEL = b"expertloop media links v1"
# The bytes under one name never change; a browser may keep them (privately) while the link holds.
MAX_AGE_S = 3600
SIGNATURES = {  # the types import accepts, by their first bytes (Pillow checked them at import)
    b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF87a": "image/gif",
    b"GIF89a": "image/gif", b"BM": "image/bmp", b"II*\x00": "image/tiff", b"MM\x00*": "image/tiff",
}


def link_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), LINK_KEY_LABEL, hashlib.sha256).digest()


def signature(key: bytes, sha256: str, expires_at: int) -> str:
    """HMAC-SHA256 over the image's name and the link's end (ms), so neither can be changed."""
    return hmac.new(key, f"{sha256}:{expires_at}".encode(), hashlib.sha256).hexdigest()


class MediaLinks:
    """Makes the links a card's images are shown by, under the key of the shared secret."""

    def __init__(self, secret: str) -> None:
        self.key = link_key(secret)

    def url(self, sha256: str, expires_at: int) -> str:
        return f"/media/{sha256}?sig={signature(self.key, sha256, expires_at)}&exp={expires_at}"


class LinkKeys:
    """The link key, read from the store once per process rather than per image request. The
    secret is made once and never rotated; should Redis lose it, a link signed under the new one
    fails against the kept key, and that failure reads it again before refusing."""

    def __init__(self, store: Access) -> None:
        self.store = store
        self.key: bytes | None = None

    async def valid(self, sha256: str, expires_at: int, sig: str) -> bool:
        if self.key is not None and _matches(self.key, sha256, expires_at, sig):
            return True
        self.key = link_key(await self.store.shared_secret())
        return _matches(self.key, sha256, expires_at, sig)


def _matches(key: bytes, sha256: str, expires_at: int, sig: str) -> bool:
    return hmac.compare_digest(signature(key, sha256, expires_at), sig)


MEDIA = web.AppKey("media_store", Media)
KEYS = web.AppKey("media_link_keys", LinkKeys)
CLOCK = web.AppKey("media_clock", Clock)


def add_media_route(app: web.Application, media: Media, store: Access, clock: Clock) -> None:
    """`clock` is the service's: a link ends when the lease does, by the same clock."""
    app[MEDIA] = media
    app[KEYS] = LinkKeys(store)
    app[CLOCK] = clock
    app.router.add_get(ROUTE, get_media)


async def get_media(request: web.Request) -> web.Response:
    """403 for a link that is forged, altered or past its end, before the store is asked, so a
    guess learns nothing; 404 only for a signed name the store does not hold."""
    sha256 = request.match_info["sha256"]
    exp = request.query.get("exp", "")
    sig = request.query.get("sig", "")
    if not exp.isdigit() or not await request.app[KEYS].valid(sha256, int(exp), sig):
        raise web.HTTPForbidden(text="This image link is not valid.")
    left_ms = int(exp) - request.app[CLOCK].now_ms()
    if left_ms <= 0:
        raise web.HTTPForbidden(text="This image link has expired: reload the chat.")
    try:  # the port is synchronous; a store on a network filesystem must not stall the loop
        data = await asyncio.to_thread(request.app[MEDIA].read, sha256)
    except FileNotFoundError as exc:
        raise web.HTTPNotFound(text="No such image.") from exc
    max_age = min(MAX_AGE_S, left_ms // 1000)
    return web.Response(body=data, content_type=content_type(data), headers={
        "Cache-Control": f"private, max-age={max_age}", "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer"})


def content_type(data: bytes) -> str:
    """The store keeps bytes by name only; their type is in their first bytes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    found = (t for magic, t in SIGNATURES.items() if data.startswith(magic))
    return next(found, "application/octet-stream")
