"""Images on Telegram, through the real python-telegram-bot and the real webhook against the
emulated Bot API: one image comes as a photo with its alt text as caption, several as an album,
and the card's text and buttons reply to them; an image a photo cannot carry comes as a
document (and then so does its album); a lossless campaign sends documents. The bytes the
expert was shown are the bytes on record (the assigned and delivered events)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image
from telegram import Bot, InputMediaDocument, InputMediaPhoto
from telegram.error import BadRequest

from adapters.media.checker import PillowChecker
from adapters.media.store import DirectoryMedia
from adapters.redis.store import RedisStore
from adapters.telegram.app import CHANNEL, TelegramBot, build_telegram
from adapters.telegram.transport import AiohttpRequest
from adapters.telegram.webhook import add_telegram_webhook
from core.service.campaign_files import read_campaign
from core.service.coordinator import Coordinator
from core.service.images import ImageImport
from core.service.inbox import settled
from core.service.service import Service
from tests.emulators.telegram import ONE_ITEM_ALBUM, TelegramEmulator
from tests.image_play import png, sha
from tests.telegram_session import SECRET, User, joined, settings

DRAFTS = [{"text": "Transverse fracture of the distal radius.", "model": "med-vlm"},
          {"text": "No fracture seen.", "model": "other-vlm"}]


@pytest.fixture
def coordinator(service: Service, media: DirectoryMedia) -> Coordinator:
    """As the CLI's: images read beside the campaign file, decoded by Pillow, kept in `media`."""
    return Coordinator(service.stores, service.clock, service.catalog,
                       ImageImport(media, PillowChecker(), None, 20 << 20))


@asynccontextmanager
async def image_bot(emulator: TelegramEmulator, service: Service, coordinator: Coordinator,
                    media: DirectoryMedia | None) -> AsyncIterator[TelegramBot]:
    """The webhook on a real HTTP server, the bot reading images from `media` as its wiring
    hands it (bots/telegram_wiring.py), and a drain handling what the webhook keeps."""
    telegram = build_telegram(settings(emulator), service, coordinator, service.stores,
                              media=media)
    app = web.Application()
    add_telegram_webhook(app, telegram, SECRET)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    stop = asyncio.Event()
    try:
        await telegram.application.bot.set_webhook(str(server.make_url("/telegram/webhook")),
                                                   secret_token=SECRET)
        emulator.handled = partial(settled, service.stores.inbox, CHANNEL)
        drain = asyncio.create_task(telegram.drain.run_until(stop))
        yield telegram
        stop.set()
        await drain
    finally:
        stop.set()
        emulator.handled = None
        await server.close()


@pytest.fixture
async def tg(emulator: TelegramEmulator, service: Service, coordinator: Coordinator,
             media: DirectoryMedia) -> AsyncIterator[TelegramBot]:
    async with image_bot(emulator, service, coordinator, media) as telegram:
        yield telegram


async def post(coordinator: Coordinator, folder: Path, kind: str,
               images: list[tuple[bytes, str]], **spec: Any) -> list[str]:
    """A campaign file whose one item shows `images` (paths beside the file, with alt texts),
    posted as `expertloop campaign post` does; returns the images' SHA-256 in order."""
    (folder / "scans").mkdir(parents=True, exist_ok=True)
    entries = []
    for n, (data, alt) in enumerate(images, start=1):
        (folder / "scans" / f"{n}.png").write_bytes(data)
        entries.append({"path": f"scans/{n}.png", "alt": alt})
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump({
        "id": "img", "title": f"Image {kind}", "kind": kind, "time_limit_s": 600,
        "instructions": "Look at the images, then judge the read.", **spec,
        "items": [{"id": "xr-17", "prompt": "Is there a fracture? Say where.",
                   "images": entries, "drafts": DRAFTS[: 2 if kind == "pairwise" else 1]}]}))
    found, spool = read_campaign(path)
    try:
        await coordinator.post_campaign(found, spool)
    finally:
        spool.close()
    return [sha(data) for data, _ in images]


async def event(store: RedisStore, kind: str) -> dict[str, Any]:
    [found] = [e for e in (json.loads(x.body) for x in await store.read_events("img", 0, 1000))
               if e["type"] == kind]
    return found


async def shown(coordinator: Coordinator, emulator: TelegramEmulator) -> User:
    user = await joined(coordinator, emulator, "ann", 501)
    assert await user.say("/next") == 200
    return user


def edited(emulator: TelegramEmulator) -> set[int]:
    """The messages the bot edited."""
    return {int(p["message_id"]) for method, p in emulator.calls if method.startswith("edit")}


async def test_one_image_is_a_photo_with_its_caption_and_the_card_replies_to_it(
        tg: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore, tmp_path: Path) -> None:
    scan = png(480, 300)
    [expected] = await post(coordinator, tmp_path, "pairwise", [(scan, "wrist, lateral view")])

    user = await shown(coordinator, emulator)

    photo, card = emulator.chat(501)[-2:]
    assert photo["caption"] == "wrist, lateral view" and "photo" in photo
    assert card["reply_to_message"]["message_id"] == photo["message_id"]
    assert "Draft A" in card["text"] and "A is better" in emulator.buttons(card)
    [upload] = emulator.shown_files(501)
    assert upload["kind"] == "photo" and upload["data"] == scan
    assert (await event(store, "assigned"))["payload"]["images"] == [upload["sha256"]] \
        == [expected]
    assert (await event(store, "delivered"))["payload"]["images"] == [
        {"sha256": expected, "as": "photo"}]

    assert await user.press("A is better") == 200
    assert "✅ Saved" in emulator.messages[(501, card["message_id"])]["text"]
    assert edited(emulator) == {card["message_id"]}  # the photo is left as it was


async def test_several_images_are_an_album_and_the_card_replies_to_it(
        tg: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore, tmp_path: Path) -> None:
    scans = [(png(480, 300, c), f"view {c}") for c in ("#111111", "#777777", "#eeeeee")]
    expected = await post(coordinator, tmp_path, "verify", scans)

    user = await shown(coordinator, emulator)

    *album, card = emulator.chat(501)[-4:]
    assert [m["caption"] for m in album] == [
        "Image 1 of 3: view #111111", "Image 2 of 3: view #777777", "Image 3 of 3: view #eeeeee"]
    assert len({m["media_group_id"] for m in album}) == 1 and all("photo" in m for m in album)
    assert card["reply_to_message"]["message_id"] == album[0]["message_id"]
    assert [u["sha256"] for u in emulator.shown_files(501)] == expected
    assert (await event(store, "assigned"))["payload"]["images"] == expected
    assert (await event(store, "delivered"))["payload"]["images"] == [
        {"sha256": s, "as": "photo"} for s in expected]

    assert await user.press("Accept") == 200
    assert "✅ Saved" in emulator.messages[(501, card["message_id"])]["text"]
    assert edited(emulator) == {card["message_id"]}


@pytest.mark.parametrize("odd", [png(100, 2500), png(6000, 4100)],
                         ids=["ratio over 20", "sides over 10000"])
async def test_an_image_a_photo_cannot_carry_comes_as_a_document(
        odd: bytes, tg: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore, tmp_path: Path) -> None:
    [expected] = await post(coordinator, tmp_path, "verify", [(odd, "a long strip")])

    await shown(coordinator, emulator)

    [upload] = emulator.shown_files(501)
    assert (upload["kind"], upload["method"], upload["data"]) == ("document", "sendDocument",
                                                                   odd)
    assert (await event(store, "delivered"))["payload"]["images"] == [
        {"sha256": expected, "as": "original"}]
    assert emulator.refused == []


async def test_an_album_with_one_odd_image_comes_whole_as_documents(
        tg: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore, tmp_path: Path) -> None:
    images = [(png(480, 300), "wrist"), (png(100, 2500), "a long strip")]
    expected = await post(coordinator, tmp_path, "pairwise", images)

    user = await shown(coordinator, emulator)

    uploads = emulator.shown_files(501)
    assert [(u["kind"], u["method"]) for u in uploads] == [("document", "sendMediaGroup")] * 2
    assert [u["data"] for u in uploads] == [data for data, _ in images]
    assert (await event(store, "delivered"))["payload"]["images"] == [
        {"sha256": s, "as": "original"} for s in expected]
    assert emulator.refused == []
    assert await user.press("Tie") == 200


async def test_a_lossless_campaign_sends_the_original_files(
        tg: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore, tmp_path: Path) -> None:
    scan = png(480, 300)
    [expected] = await post(coordinator, tmp_path, "verify", [(scan, "wrist")],
                            images_lossless=True)

    await shown(coordinator, emulator)

    [upload] = emulator.shown_files(501)
    assert (upload["kind"], upload["data"], upload["filename"]) == ("document", scan,
                                                                     "xr-17-1.png")
    assert (await event(store, "delivered"))["payload"]["images"] == [
        {"sha256": expected, "as": "original"}]


async def test_a_card_whose_image_is_missing_goes_back_and_the_expert_is_told(
        emulator: TelegramEmulator, service: Service, coordinator: Coordinator,
        store: RedisStore, media: DirectoryMedia, tmp_path: Path) -> None:
    [expected] = await post(coordinator, tmp_path, "verify", [(png(480, 300), "wrist")])
    media.path(expected).unlink()  # the store lost it

    async with image_bot(emulator, service, coordinator, media):
        await shown(coordinator, emulator)

    assert "could not be shown here" in emulator.texts(501)[-1]
    assert emulator.shown_files(501) == []  # nothing half-shown: no image, no card
    assert set(emulator.buttons(emulator.last(501))) == {"Next task"}
    assert (await event(store, "undeliverable"))["payload"]["channel"] == "telegram"


# The emulator refuses what Telegram refuses, through the real client.

CHAT = 501


@pytest.fixture
async def api(emulator: TelegramEmulator) -> AsyncIterator[Bot]:
    bot = Bot(emulator.token, base_url=emulator.base_url, request=AiohttpRequest())
    async with bot:
        yield bot


async def refusal(emulator: TelegramEmulator, call: Any) -> str:
    with pytest.raises(BadRequest):
        await call
    return emulator.refused[-1][1]


async def test_the_emulator_refuses_a_caption_over_1024_characters(
        api: Bot, emulator: TelegramEmulator) -> None:
    fits = await api.send_photo(CHAT, png(40, 30), caption="x" * 1024)

    assert await refusal(emulator, api.send_photo(CHAT, png(40, 30), caption="x" * 1025)) \
        == "Bad Request: message caption is too long"
    assert fits.caption == "x" * 1024 and len(emulator.uploads) == 1


async def test_the_emulator_refuses_albums_of_one_item_or_of_photos_with_documents(
        api: Bot, emulator: TelegramEmulator) -> None:
    one = [InputMediaPhoto(png(40, 30))]
    mixed = [InputMediaPhoto(png(40, 30)), InputMediaDocument(png(40, 30), filename="b.png")]

    assert await refusal(emulator, api.send_media_group(CHAT, one)) == ONE_ITEM_ALBUM
    assert await refusal(emulator, api.send_media_group(CHAT, mixed)) == (
        "Bad Request: document can't be mixed with other media types")
    eleven = [InputMediaPhoto(png(40, 30)) for _ in range(11)]
    assert await refusal(emulator, api.send_media_group(CHAT, eleven)) == (
        "Bad Request: too many messages to send as an album")
    assert emulator.chat(CHAT) == [] and emulator.uploads == []  # nothing of them was shown


async def test_the_emulator_refuses_photos_over_telegrams_limits(
        api: Bot, emulator: TelegramEmulator) -> None:
    noise = Image.frombytes("RGB", (2000, 1800), bytes(range(256)) * 42188)
    big = io.BytesIO()
    noise.save(big, format="BMP")  # 10.8 MB: over the photo limit, fine for a document
    assert len(big.getvalue()) > 10 * 1024 * 1024

    assert await refusal(emulator, api.send_photo(CHAT, big.getvalue())) == (
        "Bad Request: PHOTO_SAVE_FILE_INVALID")
    assert await refusal(emulator, api.send_photo(CHAT, png(100, 2500))) == (
        "Bad Request: PHOTO_INVALID_DIMENSIONS")
    assert await refusal(emulator, api.send_photo(CHAT, png(6000, 4100))) == (
        "Bad Request: PHOTO_INVALID_DIMENSIONS")
    sent = await api.send_document(CHAT, big.getvalue(), filename="big.bmp")
    assert sent.document is not None and [u["kind"] for u in emulator.uploads] == ["document"]
