"""Drafting with images: an item's images go to the model as OpenAI `image_url` parts holding
data URLs of the stored bytes, through the real `openai` client to the emulator, and the record's
request hash covers them. The emulator refuses malformed content parts as the API does."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from adapters.media.store import DirectoryMedia
from adapters.models.openai_drafter import OpenAIDrafter
from adapters.redis.store import RedisStore
from core.domain.campaigns import CampaignSpec
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.provenance.events import canonical
from core.service.coordinator import Coordinator
from core.service.drafting import DraftingLoop
from core.service.service import Service
from core.service.staging import spool_items
from tests.emulators.openai import API_KEY, IMAGE_TOKENS, OpenAIEmulator, image_urls
from tests.image_play import importer, png
from tests.test_drafting import FAST, drafting, events

SCAN, SIDE = png(40, 30, "red"), png(24, 24, "navy", kind="JPEG")
ASK = "Is there a fracture? Say where."


@pytest.fixture
def media(tmp_path: Any) -> DirectoryMedia:
    return DirectoryMedia(tmp_path / "media")


@pytest.fixture
def vision(service: Service, media: DirectoryMedia) -> Coordinator:
    return Coordinator(service.stores, service.clock, service.catalog, importer(media))


def posted(data: bytes, type_: str) -> dict[str, str]:
    return {"data": base64.b64encode(data).decode(), "type": type_}


async def post_scan(vision: Coordinator, models: OpenAIEmulator) -> str:
    """A verify campaign of one item with two images and no drafts: model-a drafts it."""
    spec = CampaignSpec.model_validate({"id": "xr", "title": "Fracture?", "kind": "verify",
                                        "overlap": 1, "drafting": drafting(models, "model-a")})
    spool = spool_items(spec, [{"id": "xr-17", "prompt": ASK, "images": [
        posted(SCAN, "image/png"), posted(SIDE, "image/jpeg")]}])
    try:
        return (await vision.post_campaign(spec, spool)).id
    finally:
        spool.close()


def decoded(url: str) -> tuple[str, bytes]:
    header, _, payload = url.partition(",")
    return header, base64.b64decode(payload)


async def test_a_verify_item_with_images_is_drafted_from_the_exact_stored_bytes(
        store: RedisStore, vision: Coordinator, service: Service, clock: SetClock,
        models: OpenAIEmulator, drafter: OpenAIDrafter, media: DirectoryMedia) -> None:
    campaign_id = await post_scan(vision, models)
    await vision.add_expert(Expert(id="ann", name="Ann"))

    await DraftingLoop(store, store, drafter, clock, FAST, media=media).run_until_idle()

    (call,) = models.answered
    messages = call.body["messages"]
    asked = messages[-1]
    assert asked["role"] == "user"
    assert [part["type"] for part in asked["content"]] == ["image_url", "image_url", "text"]
    assert asked["content"][-1]["text"] == ASK
    sent = [decoded(url) for url in image_urls(messages)]
    assert sent == [("data:image/png;base64", SCAN), ("data:image/jpeg;base64", SIDE)]
    stored = [media.read(hashlib.sha256(data).hexdigest()) for data in (SCAN, SIDE)]
    assert [data for _, data in sent] == stored  # the bytes in the record, not a re-encoding

    (drafted,) = await events(store, campaign_id, "drafted")
    request = {"model": "model-a", "messages": messages, "params": {"temperature": 0.7}}
    assert drafted["payload"]["request_sha256"] == hashlib.sha256(canonical(request)).hexdigest()
    assert drafted["payload"]["usage"]["prompt_tokens"] == len(ASK.split()) + 2 * IMAGE_TOKENS
    card = await service.next_task("ann")
    assert isinstance(card, Card) and [len(card.images), len(card.drafts)] == [2, 1]
    assert card.drafts[0].text == models.draft_for("model-a", messages, temperature=0.7)


async def test_an_item_whose_images_cannot_be_read_is_set_aside_not_drafted_blind(
        store: RedisStore, vision: Coordinator, clock: SetClock, models: OpenAIEmulator,
        drafter: OpenAIDrafter, tmp_path: Any) -> None:
    campaign_id = await post_scan(vision, models)

    elsewhere = DirectoryMedia(tmp_path / "another-store")  # a worker on the wrong EXPERTLOOP_MEDIA
    await DraftingLoop(store, store, drafter, clock, FAST, media=elsewhere).run_until_idle()

    assert models.calls == []
    (failed,) = await events(store, campaign_id, "draft_failed")
    assert failed["payload"]["kind"] == "image_unavailable"
    assert f"image 1 ({hashlib.sha256(SCAN).hexdigest()}) is not in the media store" \
        in failed["payload"]["reason"]
    status = (await vision.status(campaign_id)).drafting
    assert status is not None and (status.pending, status.failed) == (0, 1)


def url_part(url: Any) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def data_of(data: bytes, type_: str = "image/png") -> str:
    return f"data:{type_};base64,{base64.b64encode(data).decode()}"


REFUSED: list[tuple[list[dict[str, Any]], str | None, str]] = [
    ([{"role": "system", "content": [url_part(data_of(SCAN))]}, {"role": "user", "content": "?"}],
     "messages[0]", "Image URLs are only allowed for messages with role 'user', but this "
     "message with role 'system' contains an image URL."),
    ([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}],
     "messages[0].content[0].type", "Invalid value: 'image'. Supported values are: 'text' and "
     "'image_url'."),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": "scan.png"}]}],
     "messages[0].content[0].image_url", "expected an object, but got a string instead."),
    ([{"role": "user", "content": [url_part("scan.png")]}],
     "messages[0].content[0].image_url.url", "but got a value without the 'data:' prefix."),
    ([{"role": "user", "content": [url_part("data:image/png;base64,!!notbase64")]}],
     "messages[0].content[0].image_url.url", "but got an invalid base64-encoded value."),
    ([{"role": "user", "content": [url_part("data:image/png;base64,")]}],
     "messages[0].content[0].image_url.url", "but got empty base64-encoded bytes."),
    ([{"role": "user", "content": [url_part(data_of(b"hello", "text/plain"))]}],
     None, "Invalid MIME type. Only image types are supported."),
    ([{"role": "user", "content": [url_part(data_of(b"not an image at all"))]}],
     None, "You uploaded an unsupported image."),
    ([{"role": "user", "content": [{"type": "text"}]}],
     "messages[0].content[0].text", "Missing required parameter: 'messages[0].content[0].text'."),
    ([{"role": "user", "content": []}],
     "messages[0].content", "empty array. Expected an array with minimum length 1"),
    ([{"role": "user", "content": {"type": "text", "text": "?"}}],
     "messages[0].content", "expected one of a string or array of objects, but got an object"),
]


async def test_the_emulator_takes_content_parts_and_refuses_malformed_ones_as_openai_does(
        models: OpenAIEmulator) -> None:
    async with AsyncOpenAI(base_url=models.url, api_key=API_KEY, max_retries=0) as client:
        for messages, param, words in REFUSED:
            with pytest.raises(openai.BadRequestError) as caught:
                await client.chat.completions.create(model="model-a", messages=messages)  # type: ignore[arg-type]
            error: Any = caught.value.body
            assert (error["param"], words in error["message"]) == (param, True), error

        taken = await client.chat.completions.create(model="model-a", messages=[
            {"role": "user", "content": [
                {"type": "text", "text": "Compare these."},
                {"type": "image_url", "image_url": {"url": "https://example.org/a.png",
                                                    "detail": "low"}},
                {"type": "image_url", "image_url": {"url": data_of(png(kind="GIF"))}},
                {"type": "image_url", "image_url": {"url": data_of(png(kind="WEBP"))}}]}])
    assert taken.usage is not None and taken.usage.prompt_tokens == 2 + 3 * IMAGE_TOKENS
