"""A card's images on Telegram: sent before the card's text, which replies to them.

One image goes by sendPhoto, several by sendMediaGroup (an album), each with its alt text as
the caption. Telegram recompresses a photo, so the record must say so; an image a photo cannot
carry (https://core.telegram.org/bots/api#sendphoto: at most 10 MB, width + height at most
10,000, a side at most 20 times the other; and we send only PNG and JPEG as photos) goes as a
document, the original bytes, and then so does the whole album, since an album cannot mix
documents with photos (https://core.telegram.org/bots/api#sendmediagroup). A campaign with
`images_lossless` sends documents always, so an expert sees exactly the bytes on record."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from telegram import Bot, InputMediaDocument, InputMediaPhoto, Message, ReplyParameters

from core.domain.cards import Card
from core.domain.media import CardImage, Media
from core.service.service import Service

PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDES = 10_000  # width + height
PHOTO_MAX_RATIO = 20
PHOTO_TYPES = {"image/png", "image/jpeg"}  # others (WebP, TIFF, GIF) go as they are
CAPTION_LIMIT = 1024  # characters, https://core.telegram.org/bots/api#sendphoto
PHOTO, ORIGINAL = "photo", "original"  # how an image went, in the delivered event


def fits_photo(image: CardImage) -> bool:
    """Whether Telegram takes this image as a photo (else it refuses the upload)."""
    small, large = sorted((image.width, image.height))
    return (image.type in PHOTO_TYPES and image.bytes <= PHOTO_MAX_BYTES
            and image.width + image.height <= PHOTO_MAX_SIDES
            and large <= PHOTO_MAX_RATIO * small)


def sent_as(images: Sequence[CardImage], lossless: bool) -> str:
    """One way for all of a card's images: an album is photos or documents, never both."""
    if lossless or not all(fits_photo(image) for image in images):
        return ORIGINAL
    return PHOTO


def caption(image: CardImage, number: int, count: int) -> str:
    """Plain text (no parse mode, so an alt text needs no escaping), cut to Telegram's limit."""
    head = f"Image {number} of {count}: " if count > 1 else ""
    return (head + image.alt)[:CAPTION_LIMIT]


def filename(card: Card, image: CardImage, number: int) -> str:
    extension = mimetypes.guess_extension(image.type) or ".bin"
    return f"{card.item}-{number}{extension}"


class Shown(NamedTuple):
    """The first image message (the card's text replies to it) and how each image went."""

    first: Message
    went: list[dict[str, str]]


@dataclass
class Pictures:
    """What images need beyond the bot: their bytes (the media store), whether the campaign
    asks for originals, and the delivered mark that names how each image went."""

    media: Media
    service: Service

    async def lossless(self, card: Card) -> bool:
        campaign = await self.service.campaign_of_lease(card.lease)
        return campaign is not None and campaign.spec.images_lossless

    async def send(self, bot: Bot, chat: int, card: Card, silent: bool) -> Shown:
        how = sent_as(card.images, await self.lossless(card))
        files = [await asyncio.to_thread(self.media.read, image.sha256)
                 for image in card.images]
        count = len(files)
        if count == 1:
            first = await _one(bot, chat, card, files[0], how, silent)
        else:
            kind = InputMediaPhoto if how == PHOTO else InputMediaDocument
            media = [kind(media=data, caption=caption(image, n, count),
                          filename=filename(card, image, n))
                     for n, (image, data) in enumerate(zip(card.images, files, strict=True),
                                                       start=1)]
            first = (await bot.send_media_group(chat, media, disable_notification=silent))[0]
        return Shown(first, [{"sha256": image.sha256, "as": how} for image in card.images])


async def _one(bot: Bot, chat: int, card: Card, data: bytes, how: str,
               silent: bool) -> Message:
    image = card.images[0]
    text, name = caption(image, 1, 1), filename(card, image, 1)
    if how == PHOTO:
        return await bot.send_photo(chat, data, caption=text, filename=name,
                                    disable_notification=silent)
    return await bot.send_document(chat, data, caption=text, filename=name,
                                   disable_notification=silent)


def replying_to(shown: Shown | None) -> ReplyParameters | None:
    """The card's first message replies to its images, so the two stay together."""
    return None if shown is None else ReplyParameters(message_id=shown.first.message_id)
