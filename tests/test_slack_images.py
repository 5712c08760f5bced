"""Images in Slack end to end: campaigns whose items show images, posted through the real import
(base64 bodies, as the API takes them), answered by the real slack-bolt app behind
`POST /slack/events`; the emulator takes uploads by Slack's external flow and refuses an image
block Slack would refuse, so a card it accepted named a file that was processed and ready."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
from PIL import Image
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.media.store import DirectoryMedia
from adapters.redis.store import RedisStore
from adapters.redis.uploads import RedisUploads
from adapters.slack.channel import build_channel, keep_alive
from adapters.slack.images import ImageStores
from adapters.slack.inbox import press_drain
from core.domain.campaigns import CampaignSpec
from core.domain.experts import Expert
from core.service.coordinator import Coordinator
from core.service.inbox import settled
from core.service.service import Service
from core.service.staging import spool_items
from tests.emulators.slack import BOT_TOKEN, SlackEmulator, SlackUser
from tests.image_play import importer, png, sha
from tests.test_service import events, of_type
from tests.test_slack import DRAFTS, _settings, web_process


def picture(color: str, kind: str = "PNG", size: tuple[int, int] = (48, 32)) -> bytes:
    return png(*size, color, kind)


@pytest.fixture
def images_coordinator(service: Service, media: DirectoryMedia) -> Coordinator:
    """A coordinator whose import keeps images in `media`, as bots/runtime.py wires it."""
    return Coordinator(service.stores, service.clock, service.catalog, importer(media))


@asynccontextmanager
async def slack_with_images(slack: SlackEmulator, service: Service, store: RedisStore,
                            media: DirectoryMedia) -> AsyncIterator[str]:
    """The web process's route and a worker's drain, each with its own channel reading the
    media store and keeping uploads in Redis, as bots/slack_wiring.py builds them."""
    settings = _settings(slack)
    images = ImageStores(media, RedisUploads(store.client))
    web = build_channel(settings, service, service_coordinator(service), store.roles(), images)
    worker = build_channel(settings, service, service_coordinator(service), store.roles(), images)
    stop = asyncio.Event()
    async with web_process(slack, web) as url, keep_alive(worker.messenger.client):
        running = asyncio.create_task(press_drain(worker, settings).run_until(stop))
        slack.settle = partial(settled, store, "slack")
        try:
            yield url
        finally:
            slack.settle = None
            stop.set()
            await running


def service_coordinator(service: Service) -> Coordinator:
    return Coordinator(service.stores, service.clock, service.catalog)


@pytest.fixture
async def events_url(slack: SlackEmulator, service: Service, store: RedisStore,
                     media: DirectoryMedia) -> AsyncIterator[str]:
    async with slack_with_images(slack, service, store, media) as url:
        yield url


async def expert(coordinator: Coordinator, slack: SlackEmulator, url: str, name: str
                 ) -> SlackUser:
    await coordinator.add_expert(Expert(id=name.lower(), name=name,
                                        identities=[f"slack:U{name.upper()}"]))
    return SlackUser(slack, url, f"U{name.upper()}")


async def post(coordinator: Coordinator, kind: str, images: list[list[bytes]],
               types: str = "image/png") -> None:
    """One item per entry of `images`, each showing those images (base64, as the API takes
    them), the second with its own alt text."""
    spec = CampaignSpec(id="c1", title=f"A {kind} task with images",
                        instructions="Look at the image.", kind=kind)
    drafts = DRAFTS[:2] if kind == "pairwise" else DRAFTS[:1]
    items: list[dict[str, object]] = [
        {"id": f"{kind}{n}", "prompt": f"What does image {n} show?", "drafts": drafts,
         "images": [{"data": base64.b64encode(data).decode(), "type": types,
                     **({"alt": "wrist, lateral view"} if m == 1 else {})}
                    for m, data in enumerate(shown)]}
        for n, shown in enumerate(images)]
    spool = spool_items(spec, items)
    try:
        await coordinator.post_campaign(spec, spool)
    finally:
        spool.close()


async def card_of(user: SlackUser, count: int = 1) -> dict[str, Any]:
    """The user's latest card, once `count` cards were posted to them (an answered card
    keeps no controls, so only the live one is among `cards`)."""
    await user.slack.wait_for("chat.postMessage", count,
                              where=lambda args: args["channel"] == user.channel)
    return user.slack.cards(user.id)[-1]


async def marked(store: RedisStore, count: int = 1) -> list[dict[str, Any]]:
    """The delivered events, once `count` are in: a card is marked after Slack took it."""
    for _ in range(1000):
        found = await of_type(store, "delivered")
        if len(found) >= count:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} delivered events")


def files_shown(card: dict[str, Any]) -> list[tuple[str, str]]:
    """(file id, alt text) of each image block, in order."""
    return [(b["slack_file"]["id"], b["alt_text"]) for b in card["blocks"]
            if b["type"] == "image"]


async def test_an_image_pairwise_campaign_is_answered_in_slack(
        events_url: str, slack: SlackEmulator, store: RedisStore,
        images_coordinator: Coordinator) -> None:
    scans = [[picture("red"), picture("blue")], [picture("green")]]
    await post(images_coordinator, "pairwise", scans)
    ann = await expert(images_coordinator, slack, events_url, "Ann")

    assert (await ann.command("next"))[0] == 200
    first = await card_of(ann)

    (assigned,) = await of_type(store, "assigned")
    shown = files_shown(first)
    assert [alt for _, alt in shown] == ["image 1 of pairwise0", "wrist, lateral view"]
    # the bytes Slack received are the bytes the record names, image by image
    received = [sha(slack.files.received(file_id)) for file_id, _ in shown]
    assert received == assigned["payload"]["images"] == [sha(s) for s in scans[0]]
    (delivered,) = await marked(store)
    assert delivered["payload"]["images"] == [{"sha256": s, "as": "original"} for s in received]
    assert delivered["payload"]["message_id"] == f"DANN:{first['ts']}"

    assert (await ann.press("el_choose", "B"))[0] == 200
    second = await card_of(ann, 2)

    (answered,) = await of_type(store, "answered")
    assert answered["payload"]["decision"]["choice"] == "B"
    (updated,) = await slack.wait_for("chat.update")
    assert [b["type"] for b in updated["blocks"]].count("image") == 2  # the answered card
    [(file_id, _)] = files_shown(second)
    assert sha(slack.files.received(file_id)) == sha(scans[1][0])


async def test_an_image_verify_campaign_uploads_a_shared_image_once(
        events_url: str, slack: SlackEmulator, store: RedisStore,
        images_coordinator: Coordinator) -> None:
    scan = picture("purple")
    await post(images_coordinator, "verify", [[scan], [scan], [scan]])
    ann = await expert(images_coordinator, slack, events_url, "Ann")
    bob = await expert(images_coordinator, slack, events_url, "Bob")

    await ann.command("next")
    await bob.command("next")
    ann_card, bob_card = await card_of(ann), await card_of(bob)
    assert (await ann.press("el_verify", "accept"))[0] == 200
    await card_of(ann, 2)

    assert [f for f, _ in files_shown(ann_card)] == [f for f, _ in files_shown(bob_card)]
    assert len(slack.called("files.getUploadURLExternal")) == len(slack.files.uploads) == 1
    assert slack.files.uploads == [scan]
    (answered,) = await of_type(store, "answered")
    assert answered["payload"]["decision"]["verdict"] == "accept"
    assert len(await marked(store, 3)) == 3  # two for Ann, one for Bob


async def test_a_webp_goes_as_a_png_and_the_record_says_so(
        events_url: str, slack: SlackEmulator, store: RedisStore,
        images_coordinator: Coordinator) -> None:
    webp = picture("orange", "WEBP")
    await post(images_coordinator, "verify", [[webp]], types="image/webp")
    ann = await expert(images_coordinator, slack, events_url, "Ann")

    await ann.command("next")
    [(file_id, _)] = files_shown(await card_of(ann))

    sent = slack.files.received(file_id)
    assert sent.startswith(b"\x89PNG") and sha(sent) != sha(webp)
    with Image.open(io.BytesIO(sent)) as png, Image.open(io.BytesIO(webp)) as original:
        assert png.tobytes() == original.convert("RGB").tobytes()  # the same pixels
    (delivered,) = await marked(store)
    assert delivered["payload"]["images"] == [{"sha256": sha(webp),
                                               "as": "converted:image/png"}]


async def test_a_card_waits_until_slack_has_processed_its_upload(
        events_url: str, slack: SlackEmulator, store: RedisStore,
        images_coordinator: Coordinator) -> None:
    slack.files.ready_after_s = 0.5
    await post(images_coordinator, "verify", [[picture("teal")]])
    ann = await expert(images_coordinator, slack, events_url, "Ann")

    await ann.command("next")
    [(file_id, _)] = files_shown(await card_of(ann))

    calls = [c.method for c in slack.calls if c.method.startswith("files.")]
    assert calls[:2] == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    assert set(calls[2:]) == {"files.info"}
    assert slack.files.ready(file_id)
    assert not [e for e in await events(store) if e["type"] == "given_back"]


@pytest.fixture
async def web_api(slack: SlackEmulator) -> AsyncIterator[AsyncWebClient]:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.url)
    yield client
    if client.session is not None:
        await client.session.close()


async def refusal(client: AsyncWebClient, block: dict[str, Any]) -> list[str]:
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="DANN", text="x", blocks=[block])
    assert refused.value.response["error"] == "invalid_blocks"
    return list(refused.value.response["errors"])


async def test_the_emulator_refuses_an_image_slack_would_refuse(
        slack: SlackEmulator, web_api: AsyncWebClient) -> None:
    slack.files.ready_after_s = 3600  # uploaded, never processed within this test
    sent: Any = await web_api.files_upload_v2(file=picture("red"), filename="red.png")
    file_id = sent["file"]["id"]
    image = {"type": "image", "alt_text": "a red square", "slack_file": {"id": file_id}}

    assert await refusal(web_api, {**image, "slack_file": {"id": "F9999999999"}}) == [
        "invalid slack file [json-pointer:/blocks/0/slack_file]"]
    assert await refusal(web_api, image) == [  # not processed yet
        "invalid slack file [json-pointer:/blocks/0/slack_file]"]
    assert await refusal(web_api, {k: v for k, v in image.items() if k != "alt_text"}) == [
        "missing required field: alt_text [json-pointer:/blocks/0]"]
    assert await refusal(web_api, {**image, "alt_text": ""}) == [
        "must be between 1 and 2000 characters [json-pointer:/blocks/0/alt_text]"]
    info: Any = await web_api.files_info(file=file_id)
    assert info["file"]["mimetype"] == ""

    slack.files.ready_after_s = 0
    assert (await web_api.files_info(file=file_id))["file"]["mimetype"] == "image/png"
    posted = await web_api.chat_postMessage(channel="DANN", text="x", blocks=[image])
    assert posted["ok"] and slack.files.received(file_id) == picture("red")
