"""Images in the web chat: a card shows its item's images from signed, expiring links, an expert
answers an image pairwise and an image verify campaign in Chromium, and a link that is forged,
altered or past its lease is refused."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from playwright.async_api import Browser, Page

from adapters.media.checker import PillowChecker
from adapters.media.store import DirectoryMedia
from adapters.redis.store import RedisStore
from adapters.web.media import MediaLinks, content_type
from adapters.web.routes import add_chat_routes
from bots.runtime import Runtime
from bots.settings import Settings
from bots.web import build_app
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.campaign_files import read_campaign
from core.service.coordinator import Coordinator
from core.service.images import ImageImport
from core.service.service import Service
from tests.conftest import serving
from tests.image_play import png

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
WRIST = "wrist, lateral view"
CHART = "chart of monthly admissions"
Client = TestClient[web.Request, web.Application]




DRAFTS = [{"text": "Transverse fracture of the distal radius.", "model": "med-vlm"},
          {"text": "No fracture seen.", "model": "other-vlm"}]
SCAN = png(480, 300, "#2456d6")
BARS = png(360, 240, "#b3261e")


def chat_app(service: Service, store: RedisStore, media: DirectoryMedia) -> web.Application:
    app = web.Application()
    add_chat_routes(app, service, store, media)
    return app


@pytest.fixture
async def http(service: Service, store: RedisStore, media: DirectoryMedia
               ) -> AsyncIterator[Client]:
    async with TestClient(TestServer(chat_app(service, store, media))) as client:
        yield client


@pytest.fixture
async def site(service: Service, store: RedisStore, media: DirectoryMedia) -> AsyncIterator[str]:
    async with serving(chat_app(service, store, media)) as url:
        yield url


@pytest.fixture
def coordinator(service: Service, media: DirectoryMedia) -> Coordinator:
    """As the CLI's: images read beside the campaign file, decoded by Pillow, kept in `media`."""
    return Coordinator(service.stores, service.clock, service.catalog,
                       ImageImport(media, PillowChecker(), None, 20 << 20))


async def post_image_campaign(coordinator: Coordinator, folder: Path, campaign_id: str,
                              kind: str, image: bytes, alt: str) -> str:
    """A campaign file whose one item shows one image (a path beside the file), posted as
    `expertloop campaign post` does; returns the image's SHA-256."""
    (folder / "scans").mkdir(parents=True, exist_ok=True)
    (folder / "scans" / f"{campaign_id}.png").write_bytes(image)
    drafts = DRAFTS[: 2 if kind == "pairwise" else 1]
    path = folder / f"{campaign_id}.yaml"
    path.write_text(yaml.safe_dump({
        "id": campaign_id, "title": f"Image {kind}", "kind": kind, "time_limit_s": 600,
        "instructions": "Look at the image, then judge the read.",
        "items": [{"id": "xr-17", "prompt": "Is there a fracture? Say where.",
                   "images": [{"path": f"scans/{campaign_id}.png", "alt": alt}],
                   "drafts": drafts}]}))
    spec, spool = read_campaign(path)
    try:
        await coordinator.post_campaign(spec, spool)
    finally:
        spool.close()
    return hashlib.sha256(image).hexdigest()


async def invite(coordinator: Coordinator, expert_id: str = "ann") -> str:
    await coordinator.add_expert(Expert(id=expert_id, name="Ann Expert"))
    return await coordinator.invite_web(expert_id)


async def image_link(http: Client, token: str) -> str:
    page = await (await http.get(f"/chat/{token}")).text()
    found = re.search(r'<img src="([^"]+)"', page)
    assert found, page
    return found[1].replace("&amp;", "&")


async def events(store: RedisStore, campaign_id: str, kind: str) -> list[dict[str, Any]]:
    bodies = [json.loads(e.body) for e in await store.read_events(campaign_id, 0, 10_000)]
    return [e for e in bodies if e["type"] == kind]


# Plain HTTP: what the link serves, and what it refuses.

async def test_the_cards_link_serves_the_original_bytes_privately(
        http: Client, coordinator: Coordinator, tmp_path: Path) -> None:
    sha = await post_image_campaign(coordinator, tmp_path, "xr", "pairwise", SCAN, WRIST)
    link = await image_link(http, await invite(coordinator))

    response = await http.get(link)

    assert response.status == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Cache-Control"].startswith("private")
    assert hashlib.sha256(await response.read()).hexdigest() == sha


async def test_a_forged_or_altered_link_is_refused(
        http: Client, coordinator: Coordinator, media: DirectoryMedia, tmp_path: Path) -> None:
    sha = await post_image_campaign(coordinator, tmp_path, "xr", "pairwise", SCAN, WRIST)
    other = media.put(BARS)  # in the store, but on no card of this expert's
    link = await image_link(http, await invite(coordinator))
    sig = re.search(r"sig=([0-9a-f]+)", link)
    exp = re.search(r"exp=(\d+)", link)
    assert sig and exp
    flipped = ("0" if sig[1][0] != "0" else "1") + sig[1][1:]

    refused = [link.replace(sig[1], flipped),  # one character of the signature changed
               link.replace(sha, other),  # another image under this link's signature
               link.replace(exp[1], str(int(exp[1]) + 86_400_000)),  # a day longer
               f"/media/{sha}?exp={exp[1]}",  # no signature
               f"/media/{sha}?sig={sig[1]}&exp=soon",
               MediaLinks("not-the-shared-secret").url(sha, int(exp[1]))]  # signed elsewhere

    for forged in refused:
        response = await http.get(forged)
        assert (response.status, forged) == (403, forged)
        assert b"\x89PNG" not in await response.read()
    assert (await http.get(link)).status == 200


async def test_a_link_past_its_lease_is_refused(
        http: Client, coordinator: Coordinator, clock: SetClock, tmp_path: Path) -> None:
    await post_image_campaign(coordinator, tmp_path, "xr", "pairwise", SCAN, WRIST)
    link = await image_link(http, await invite(coordinator))
    assert (await http.get(link)).status == 200

    clock.advance(600)  # the campaign's time limit: the lease, and the link with it, end

    response = await http.get(link)
    assert response.status == 403
    assert "expired" in await response.text()


async def test_a_signed_name_the_store_does_not_hold_is_not_found(
        http: Client, store: RedisStore, clock: SetClock) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()
    link = MediaLinks(await store.shared_secret()).url(missing, clock.now_ms() + 60_000)

    assert (await http.get(link)).status == 404
    assert (await http.get("/media/../../etc/passwd?sig=00&exp=1")).status == 404


async def test_the_web_process_serves_an_image_posted_through_the_api(
        client: aioredis.Redis, store: RedisStore, service: Service, coordinator: Coordinator,
        media: DirectoryMedia) -> None:
    """bots/web.py wires the media route: base64 posted to the API, shown in the web chat."""
    runtime = Runtime(Settings(), client, store, service, coordinator, Ledger(store), media)
    async with TestClient(TestServer(build_app(runtime))) as web_process:
        posted = await web_process.post("/api/campaigns", json={
            "id": "xr", "title": "Fracture?", "kind": "verify", "items": [{
                "id": "xr-17", "prompt": "Is there a fracture?", "drafts": DRAFTS[:1],
                "images": [{"data": base64.b64encode(SCAN).decode(), "type": "image/png"}]}]})
        assert posted.status == 201, await posted.text()
        token = await invite(coordinator)
        page = await (await web_process.get(f"/chat/{token}")).text()
        assert 'alt="image 1 of xr-17"' in page  # the default alt text
        shown = await web_process.get(await image_link(web_process, token))
        assert shown.status == 200
        assert hashlib.sha256(await shown.read()).hexdigest() == hashlib.sha256(SCAN).hexdigest()


def test_the_type_comes_from_the_bytes() -> None:
    def encoded(fmt: str) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (4, 4)).save(out, format=fmt)
        return out.getvalue()

    found = {fmt: content_type(encoded(fmt)) for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP")}

    assert found == {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif",
                     "WEBP": "image/webp", "BMP": "image/bmp"}
    assert content_type(b"<svg onload=alert(1)>") == "application/octet-stream"


# In Chromium: the expert sees the image, opens it full size, and answers.

async def loaded_width(page: Page) -> int:
    """The card's image once the browser decoded it (0 for a broken image)."""
    image = page.locator("#card .images img")
    await image.wait_for()
    await page.wait_for_function(
        "() => document.querySelector('#card .images img')?.complete === true")
    width: int = await image.evaluate("img => img.naturalWidth")
    return width


async def shown_sha(page: Page) -> str:
    """The SHA-256 of the bytes behind the card's image, as the browser fetches them."""
    digest: str = await page.evaluate("""async () => {
        const src = document.querySelector('#card .images img').src;
        const bytes = await (await fetch(src)).arrayBuffer();
        const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
        return Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
    }""")
    return digest


async def saved(page: Page, count: int) -> str:
    bubble = page.locator("#log .bubble").nth(count - 1)
    await bubble.wait_for()
    return await bubble.inner_text()


async def test_an_expert_sees_the_images_and_answers_pairwise_and_verify(
        browser: Browser, site: str, coordinator: Coordinator, store: RedisStore,
        ledger: Ledger, tmp_path: Path) -> None:
    scan = await post_image_campaign(coordinator, tmp_path, "a-xr-pair", "pairwise", SCAN, WRIST)
    bars = await post_image_campaign(coordinator, tmp_path, "b-verify", "verify", BARS, CHART)
    page = await browser.new_page(viewport={"width": 400, "height": 860})  # a phone's width
    await page.goto(f"{site}/chat/{await invite(coordinator)}")

    assert await loaded_width(page) == 480
    assert await shown_sha(page) == scan  # the bytes the browser got are the ones on record
    assert await page.locator("#card .images img").get_attribute("alt") == WRIST
    assert await page.locator("#card .images figcaption").inner_text() == WRIST
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "webchat-image.png"), full_page=True)

    async with page.expect_popup() as opened:  # a tap opens the full size
        await page.click("#card .images a")
    full = await opened.value
    await full.wait_for_load_state()
    assert await full.evaluate("document.images[0].naturalWidth") == 480
    await full.close()

    await page.keyboard.press("2")  # B is better
    assert "Saved your choice" in await saved(page, 1)
    assert await loaded_width(page) == 360  # the verify card, with its own image
    assert await page.locator("#card .images figcaption").inner_text() == CHART
    await page.keyboard.press("a")  # accept the draft's read of the chart
    assert "Saved your verdict" in await saved(page, 2)
    await page.locator(".notice").filter(has_text="No tasks").wait_for()

    for campaign_id, sha in (("a-xr-pair", scan), ("b-verify", bars)):
        await ledger.seal(campaign_id)
        assert (await ledger.verify(campaign_id)).ok
        [assigned] = await events(store, campaign_id, "assigned")
        [delivered] = await events(store, campaign_id, "delivered")
        assert assigned["payload"]["images"] == [sha]  # the exact bytes the expert judged
        assert delivered["payload"]["images"] == [{"sha256": sha, "as": "original"}]
        [answered] = await events(store, campaign_id, "answered")
        assert answered["expert"] == "ann"
    [pair] = await events(store, "a-xr-pair", "answered")
    [verify] = await events(store, "b-verify", "answered")
    assert pair["payload"]["decision"] == {"type": "pairwise", "choice": "B"}
    assert verify["payload"]["decision"]["verdict"] == "accept"
