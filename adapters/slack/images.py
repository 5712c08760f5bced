"""A card's images in Slack: each uploaded once by Slack's external upload flow (cached by its
SHA-256 in Redis, across processes), waited for until Slack has processed it, then shown in an
`image` block that names the file (`slack_file`), since Slack refuses an `image_url` it cannot
fetch and our media are not public.

Slack shows png, jpg and gif in image blocks
(https://docs.slack.dev/reference/block-kit/composition-objects/slack-file-object); other types
(WebP, say) go as a PNG made here, and the delivered mark says so."""

from __future__ import annotations

import asyncio
import io
from typing import Any, NamedTuple

from PIL import Image
from slack_sdk.web.async_client import AsyncWebClient

from core.domain.cards import Card
from core.domain.media import CardImage, Media
from core.errors import CardRefused
from core.ports import Turns, Uploads

CHANNEL = "slack"
SHOWN = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}
CONVERTED = "converted:image/png"
UPLOAD_TURN_MS = 60_000  # one process uploads an image; past this, another may (it died)


class ImageStores(NamedTuple):
    """Where a card's images come from (the media store) and where their uploads are kept."""

    media: Media
    uploads: Uploads


class NotReady(Exception):
    """Slack had not processed an upload within the wait; the card is owed and sent later."""


def shown_as(image: CardImage) -> str:
    return "original" if image.type in SHOWN else CONVERTED


def as_png(data: bytes) -> bytes:
    """The first frame as a PNG, its pixels kept (an alpha channel too)."""
    with Image.open(io.BytesIO(data)) as decoded:
        frame = decoded.convert("RGBA" if "A" in decoded.getbands() else "RGB")
    out = io.BytesIO()
    frame.save(out, format="PNG")
    return out.getvalue()


class SlackImages:
    """Files for a card's images: uploaded once per image across processes, and named in a
    card only once Slack has them ready."""

    def __init__(self, client: AsyncWebClient, stores: ImageStores, turns: Turns,
                 ready_within_s: float = 30.0) -> None:
        self.client = client
        self.media, self.uploads = stores
        self.turns = turns
        self.ready_within_s = ready_within_s

    async def files_for(self, card: Card) -> list[str]:
        """Slack file ids, in the card's order; CardRefused when the bytes are gone."""
        return list(await asyncio.gather(*(self.file_for(image) for image in card.images)))

    async def file_for(self, image: CardImage) -> str:
        """The kept upload; else this process uploads it, while any other showing the same
        image meanwhile waits for that upload rather than making its own."""
        while (kept := await self.uploads.uploaded(CHANNEL, image.sha256)) is None:
            if await self.turns.take_turn(f"{CHANNEL}:upload:{image.sha256}", UPLOAD_TURN_MS):
                break
            await asyncio.sleep(0.05)  # noqa: ASYNC110 - another process uploads it
        if kept is not None:
            return kept
        file_id = await self._upload(image)
        await self._until_ready(file_id)
        # Kept only once ready, so another process never names a file Slack would refuse yet.
        return await self.uploads.keep_uploaded(CHANNEL, image.sha256, file_id)

    async def forget(self, card: Card, files: list[str]) -> None:
        """Slack no longer shows these files (deleted): the next showing uploads again."""
        for image, file_id in zip(card.images, files, strict=True):
            await self.uploads.forget_uploaded(CHANNEL, image.sha256, file_id)

    async def _upload(self, image: CardImage) -> str:
        """The three calls of the external flow (files_upload_v2); private to the bot, which
        is the one that posts the blocks naming it."""
        data = await asyncio.to_thread(self._bytes, image)
        kind = SHOWN.get(image.type, "png")
        sent: Any = await self.client.files_upload_v2(
            file=data, filename=f"{image.sha256[:16]}.{kind}", title=image.alt[:255])
        return str(sent["file"]["id"])

    def _bytes(self, image: CardImage) -> bytes:
        try:
            data = self.media.read(image.sha256)
        except FileNotFoundError as exc:
            raise CardRefused(f"image {image.sha256} is not in the media store") from exc
        return data if image.type in SHOWN else as_png(data)

    async def _until_ready(self, file_id: str) -> None:
        """Slack scans an upload before it can be shown; until then files.info has no
        mimetype and a block naming it is refused with `invalid slack file`
        (slackapi/node-slack-sdk#2040, slackapi/python-slack-sdk#1797)."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + self.ready_within_s, 0.05
        while True:
            info: Any = await self.client.files_info(file=file_id)
            if info["file"].get("mimetype"):
                return
            if loop.time() >= deadline:
                raise NotReady(f"Slack had not processed file {file_id} after "
                               f"{self.ready_within_s:.0f} s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
