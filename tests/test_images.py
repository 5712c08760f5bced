"""Images in tasks: import checks every image before anything is stored (file, line and field
of each fault), keeps the bytes by SHA-256, and the record, the exports and the drafting call
name exactly those bytes."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.media.store import DirectoryMedia
from adapters.redis.store import RedisStore
from bots.runtime import Runtime
from bots.settings import Settings
from bots.web import build_app
from core.domain.answers import Answer
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import Verify
from core.errors import InvalidCampaign, Problem
from core.provenance.ledger import Ledger
from core.reports.exports import Export
from core.service.campaign_files import read_campaign
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.conftest import serving
from tests.image_play import importer, png
from tests.test_service import of_type

HEAD = """\
title: Is there a fracture?
instructions: Look at the scan.
kind: verify
overlap: 1
items:
"""
DRAFT = '[{text: "A transverse fracture of the distal radius.", model: med-vlm}]'


def item_yaml(item_id: str, images: str) -> str:
    return (f"  - id: {item_id}\n    prompt: Is there a fracture?\n"
            f"    images: {images}\n    drafts: {DRAFT}\n")


@pytest.fixture
def images_coordinator(service: Service, coordinator: Coordinator,
                       media: DirectoryMedia) -> Coordinator:
    return Coordinator(service.stores, service.clock, service.catalog, importer(media))


async def refused(coordinator: Coordinator, path: Path) -> list[Problem]:
    spec, spool = read_campaign(path)
    with pytest.raises(InvalidCampaign) as caught:
        await coordinator.post_campaign(spec, spool)
    assert await coordinator.list_campaigns() == []  # nothing stored
    return caught.value.problems


def where(problem: Problem) -> tuple[str, int | None, str]:
    return problem.source, problem.line, problem.field()


async def test_every_bad_image_is_named_by_file_line_and_field(
        tmp_path: Path, images_coordinator: Coordinator, media: DirectoryMedia,
        service: Service) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "good.png").write_bytes(png())
    (scans / "broken.png").write_bytes(png()[:60])
    (scans / "text.png").write_bytes(b"this is not an image at all")
    (scans / "old.bmp").write_bytes(png(kind="BMP"))
    (scans / "huge.png").write_bytes(png() + b"\0" * (2 << 20))
    many = "[" + ", ".join(["scans/good.png"] * 11) + "]"
    text = HEAD + "".join([
        item_yaml("ok", "[scans/good.png]"),                                    # line 6
        item_yaml("missing", "[scans/good.png, scans/nowhere.png]"),            # line 10
        item_yaml("truncated", "[{path: scans/broken.png, alt: wrist}]"),       # line 14
        item_yaml("text", "[scans/text.png]"),                                  # line 18
        item_yaml("bmp", "[scans/old.bmp]"),                                    # line 22
        item_yaml("huge", "[scans/huge.png]"),                                  # line 26
    ])
    path = tmp_path / "xr.yaml"
    path.write_text(text, encoding="utf-8")
    problems = await refused(images_coordinator, path)
    found = {(p.line, p.field()): p.msg for p in problems}
    assert set(found) == {(12, "items.1.images.1.path"), (16, "items.2.images.0.path"),
                          (20, "items.3.images.0.path"), (24, "items.4.images.0.path")}
    assert "no such file: scans/nowhere.png" in found[(12, "items.1.images.1.path")]
    assert "does not decode" in found[(16, "items.2.images.0.path")]
    assert "does not decode" in found[(20, "items.3.images.0.path")]
    assert "image/bmp is not supported" in found[(24, "items.4.images.0.path")]
    assert all(p.source == "xr.yaml" for p in problems)

    small = Coordinator(service.stores, service.clock,
                        service.catalog, importer(media, max_bytes=1 << 20))
    problems = await refused(small, path)
    assert [(p.line, p.field()) for p in problems][-1] == (28, "items.5.images.0.path")
    assert "2.0 MB is over the 1 MB" in problems[-1].msg

    path.write_text(HEAD + item_yaml("many", many), encoding="utf-8")
    with pytest.raises(InvalidCampaign) as caught:
        read_campaign(path)
    assert [(p.line, p.field()) for p in caught.value.problems] == [(8, "items.0.images")]


async def post_scans(tmp_path: Path, coordinator: Coordinator, colors: list[str]) -> str:
    """A verify campaign of one item showing one scan per color; returns the campaign id."""
    for color in colors:
        (tmp_path / f"{color}.png").write_bytes(png(color=color))
    listed = ", ".join(f"{color}.png" for color in colors[:-1])
    images = f"[{listed}, {{path: {colors[-1]}.png, alt: lateral view}}]" if listed \
        else f"[{{path: {colors[-1]}.png, alt: lateral view}}]"
    path = tmp_path / "xr.yaml"
    path.write_text("id: xr\n" + HEAD + item_yaml("xr-17", images), encoding="utf-8")
    spec, spool = read_campaign(path)
    campaign = await coordinator.post_campaign(spec, spool)
    return campaign.id


async def test_a_card_shows_the_stored_images_and_the_record_names_their_bytes(
        tmp_path: Path, images_coordinator: Coordinator, service: Service,
        media: DirectoryMedia, store: RedisStore) -> None:
    await post_scans(tmp_path, images_coordinator, ["red", "blue"])
    await images_coordinator.add_expert(Expert(id="ann", name="Ann"))

    card = await service.next_task("ann")

    assert isinstance(card, Card)
    red, blue = (hashlib.sha256(png(color=c)).hexdigest() for c in ("red", "blue"))
    assert [(i.sha256, i.type, i.width, i.height, i.alt) for i in card.images] == [
        (red, "image/png", 40, 30, "image 1 of xr-17"), (blue, "image/png", 40, 30, "lateral view")]
    assert [i.bytes for i in card.images] == [len(png(color="red")), len(png(color="blue"))]
    assert media.read(red) == png(color="red") and media.read(blue) == png(color="blue")
    (added,) = await of_type(store, "item_added", "xr")
    assert [i["sha256"] for i in added["payload"]["item"]["images"]] == [red, blue]
    assert ".png" not in json.dumps(added)  # not where it came from: the bytes are the record
    (assigned,) = await of_type(store, "assigned", "xr")
    assert assigned["payload"]["images"] == [red, blue]

    await service.delivered(card.lease, channel="telegram", images=[
        {"sha256": red, "as": "photo"}, {"sha256": blue, "as": "original"}])
    (delivered,) = await of_type(store, "delivered", "xr")
    assert delivered["payload"]["images"][0] == {"sha256": red, "as": "photo"}


@pytest.fixture
async def api(client: aioredis.Redis, service: Service, images_coordinator: Coordinator,
              media: DirectoryMedia) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    settings = Settings(EXPERTLOOP_MAX_BODY=64_000)
    store = RedisStore(client)
    runtime = Runtime(settings, client, store, service, images_coordinator, Ledger(store), media)
    async with TestClient(TestServer(build_app(runtime))) as http:
        yield http


def api_spec(images: list[object]) -> dict[str, object]:
    return {"id": "xr", "title": "Fracture?", "kind": "verify", "overlap": 1,
            "items": [{"id": "xr-17", "prompt": "Is there a fracture?", "images": images,
                       "drafts": [{"text": "Distal radius.", "model": "med-vlm"}]}]}


async def test_the_api_takes_base64_and_refuses_a_path_and_an_oversized_body(
        api: TestClient, tmp_path: Path, media: DirectoryMedia) -> None:  # type: ignore[type-arg]
    secret = tmp_path / "secret.png"
    secret.write_bytes(png(color="green"))
    for image in (str(secret), {"path": str(secret), "alt": "x"}):
        response = await api.post("/api/campaigns", json=api_spec([image]))
        body = await response.json()
        assert response.status == 422, body
        assert body["detail"][0]["loc"] == ["items", 0, "images", 0, "path"]
        assert "path is not accepted" in body["detail"][0]["msg"]
    assert not media.has(hashlib.sha256(png(color="green")).hexdigest())  # never read

    data = base64.b64encode(png(color="blue")).decode()
    response = await api.post("/api/campaigns", json=api_spec(
        [{"data": data, "type": "image/png", "alt": "wrist"}]))
    assert response.status == 201, await response.text()
    assert media.read(hashlib.sha256(png(color="blue")).hexdigest()) == png(color="blue")

    big = base64.b64encode(png(400, 400) + bytes(70_000)).decode()  # over the 64 kB body limit
    response = await api.post("/api/campaigns", json={**api_spec(
        [{"data": big, "type": "image/png"}]), "id": "big"})
    assert response.status == 413
    assert (await api.get("/api/campaigns/big")).status == 404


@pytest.fixture
async def image_server() -> AsyncIterator[str]:
    async def scan(request: web.Request) -> web.Response:
        return web.Response(body=png(color="navy"), content_type="image/png")

    async def away(request: web.Request) -> web.Response:
        port = request.url.port
        raise web.HTTPFound(f"http://localhost:{port}/scan.png")  # the same server, another name

    app = web.Application()
    app.add_routes([web.get("/scan.png", scan), web.get("/away.png", away)])
    async with serving(app) as url:
        yield url


async def test_a_url_is_fetched_once_from_a_listed_host_and_private_hosts_are_refused(
        api: TestClient, image_server: str, media: DirectoryMedia) -> None:  # type: ignore[type-arg]
    port = image_server.rsplit(":", 1)[1].strip("/")
    cases = {f"http://localhost:{port}/scan.png": "resolves to 127.0.0.1, a loopback address",
             "http://10.1.2.3/scan.png": "resolves to 10.1.2.3, a private address",
             "http://169.254.169.254/latest": "resolves to 169.254.169.254, a link-local",
             f"http://127.0.0.1:{port}/away.png": "redirected to another host"}
    for url, why in cases.items():
        response = await api.post("/api/campaigns", json=api_spec([{"url": url}]))
        body = await response.json()
        assert response.status == 422, (url, body)
        assert body["detail"][0]["loc"] == ["items", 0, "images", 0, "url"]
        assert why in body["detail"][0]["msg"], body
    navy = hashlib.sha256(png(color="navy")).hexdigest()
    assert not media.has(navy)

    response = await api.post("/api/campaigns", json=api_spec(
        [{"url": f"http://127.0.0.1:{port}/scan.png"}]))
    assert response.status == 201, await response.text()
    assert media.read(navy) == png(color="navy")


async def test_the_trail_names_the_images_by_sha256(
        tmp_path: Path, images_coordinator: Coordinator, service: Service,
        store: RedisStore) -> None:
    await post_scans(tmp_path, images_coordinator, ["red", "blue"])
    await images_coordinator.add_expert(Expert(id="ann", name="Ann"))
    card = await service.next_task("ann")
    assert isinstance(card, Card)
    await service.submit(Answer(expert="ann", lease=card.lease, decision=Verify(verdict="accept")))

    run = Export(Ledger(store), await service.catalog.campaign("xr"), "trail")
    (row,) = [json.loads(line) async for line in run.lines()]

    assert row["images"] == [hashlib.sha256(png(color=c)).hexdigest() for c in ("red", "blue")]
