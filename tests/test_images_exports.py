"""Exports of an image campaign in TRL's vision shape: typed content parts with one image part per
image in the asking user turn, and an `images` column whose files the CLI writes beside the JSON
lines. Each file is loaded the way a trainer does, with `datasets` offline, and its images decoded
to the sizes that were posted."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.media.store import DirectoryMedia
from adapters.redis.store import RedisStore
from bots import reports
from bots.runtime import Runtime
from bots.settings import Settings
from core.domain.campaigns import Campaign
from core.domain.cards import Card
from core.domain.kinds import Choose, Decision, Verify
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.reports.exports import Export
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.campaign_play import add_expert, draft_index, post_items, work
from tests.test_images import importer, png

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
RED, BLUE, GREEN = png(40, 30, "red"), png(64, 48, "blue"), png(20, 10, "green")
ASK = "Which read of this scan is right?"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def posted(data: bytes, **more: str) -> dict[str, str]:
    return {"data": base64.b64encode(data).decode(), "type": "image/png", **more}


def text(value: str) -> list[dict[str, str]]:
    return [{"type": "text", "text": value}]


def reply(value: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": text(value)}]


@pytest.fixture
def media(tmp_path: Path) -> DirectoryMedia:
    return DirectoryMedia(tmp_path / "media")


@pytest.fixture
def vision(service: Service, media: DirectoryMedia) -> Coordinator:
    return Coordinator(service.stores, service.clock, service.catalog, importer(media))


@pytest.fixture
def runtime(client: aioredis.Redis, store: RedisStore, service: Service, vision: Coordinator,
            media: DirectoryMedia) -> Runtime:
    return Runtime(Settings(), client, store, service, vision, Ledger(store), media)


async def cli_export(runtime: Runtime, campaign: str, fmt: str, out: Path,
                     capsys: pytest.CaptureFixture[str], **more: Any) -> tuple[list[Any], str]:
    """`expertloop campaign export CAMPAIGN --format FMT -o OUT`, in process."""
    args = argparse.Namespace(**{"campaign": campaign, "format": fmt, "output": str(out),
                                 "conversational": False, "pairs": "all",
                                 "sft_shape": "messages", "include_model": False, **more})
    assert await reports.export(runtime, args) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return rows, capsys.readouterr().out


def loaded(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The file as TRL's trainers get it: `images` cast to images, paths read from its folder."""
    from datasets import Image, Sequence, load_dataset

    monkeypatch.chdir(path.parent)  # the column's paths are relative to the file
    data = load_dataset("json", data_files=str(path), split="train",
                        cache_dir=str(tmp_path / "hf"))
    return data.cast_column("images", Sequence(Image()))


def sizes(row: dict[str, Any]) -> list[tuple[int, int]]:
    return [(image.width, image.height) for image in row["images"]]


async def pairwise_scans(vision: Coordinator, service: Service, clock: SetClock) -> Campaign:
    """Two scans asked about as a string, one in a conversation, one item without images;
    the expert always picks the good draft."""
    def drafts(n: int) -> list[dict[str, str]]:
        return [{"text": f"Good read {n}.", "model": "good"}, {"text": f"Poor read {n}.",
                                                                "model": "poor"}]
    conversation = [{"role": "user", "content": "I fell on my wrist."},
                    {"role": "assistant", "content": "Do you have an X-ray?"},
                    {"role": "user", "content": "Here it is. Is it broken?"}]
    campaign = await post_items(vision, [
        {"id": "xr-1", "prompt": ASK, "drafts": drafts(1),
         "images": [posted(RED), posted(BLUE, alt="lateral view")]},
        {"id": "xr-2", "prompt": conversation, "drafts": drafts(2), "images": [posted(GREEN)]},
        {"id": "plain", "prompt": "No scan here: which is right?", "drafts": drafts(3)},
    ], kind="pairwise", overlap=1)
    await add_expert(vision, "ann")

    def good(card: Card) -> Decision:
        best = next(d.text for d in card.drafts if d.text.startswith("Good"))
        return Choose(choice=draft_index(card, best))  # type: ignore[arg-type]

    assert await work(service, clock, "ann", good) == 3
    return campaign


async def test_a_pairwise_image_campaign_exports_as_trl_vision_preference_rows(
        tmp_path: Path, vision: Coordinator, service: Service, clock: SetClock,
        runtime: Runtime, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    await pairwise_scans(vision, service, clock)
    out = tmp_path / "export" / "prefs.jsonl"
    out.parent.mkdir()

    rows, said = await cli_export(runtime, "c1", "preference", out, capsys)

    by_item = {row["item"]: row for row in rows}
    one, two, plain = by_item["xr-1"], by_item["xr-2"], by_item["plain"]
    assert one["prompt"] == [{"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                                          *text(ASK)]}]
    assert (one["chosen"], one["rejected"]) == (reply("Good read 1."), reply("Poor read 1."))
    assert one["images"] == [f"images/{sha(RED)}.png", f"images/{sha(BLUE)}.png"]
    assert two["prompt"] == [
        {"role": "user", "content": text("I fell on my wrist.")},
        {"role": "assistant", "content": text("Do you have an X-ray?")},
        {"role": "user", "content": [{"type": "image"}, *text("Here it is. Is it broken?")]}]
    assert two["images"] == [f"images/{sha(GREEN)}.png"]
    assert plain["prompt"] == [{"role": "user", "content": text("No scan here: which is right?")}]
    assert plain["images"] == []  # one shape per file: the item without images too
    assert sorted(p.name for p in (out.parent / "images").iterdir()) == sorted(
        f"{sha(data)}.png" for data in (RED, BLUE, GREEN))
    assert (out.parent / one["images"][1]).read_bytes() == BLUE
    assert "3 images written to images/" in said and "TRL vision shape" in said

    data = loaded(out, tmp_path, monkeypatch)
    found = {row["item"]: sizes(row) for row in data}
    assert found == {"xr-1": [(40, 30), (64, 48)], "xr-2": [(20, 10)], "plain": []}
    assert data[0]["chosen"][0]["content"][0]["text"].startswith("Good read")


async def test_through_a_stream_the_images_column_holds_hashes_and_openai_dpo_leaves_them_out(
        vision: Coordinator, service: Service, clock: SetClock, store: RedisStore) -> None:
    campaign = await pairwise_scans(vision, service, clock)

    run = Export(Ledger(store), campaign, "preference")  # as the API streams it: no folder
    rows = {row["item"]: row for row in [json.loads(line) async for line in run.lines()]}
    assert rows["xr-1"]["images"] == [sha(RED), sha(BLUE)]
    assert any("images column holds SHA-256 hashes" in note for note in run.summary.notes)

    dpo = Export(Ledger(store), campaign, "openai-dpo")
    kept = [json.loads(line) async for line in dpo.lines()]
    assert [row["input"]["messages"][0]["content"] for row in kept] == [
        "No scan here: which is right?"]
    assert dpo.summary.excluded == {"images": 2}
    assert "2 rows with images left out" in dpo.summary.line()


async def verify_scans(vision: Coordinator, service: Service, clock: SetClock) -> None:
    campaign = await post_items(vision, [
        {"id": "xr-1", "prompt": ASK, "drafts": [{"text": "No fracture.", "model": "vlm"}],
         "images": [posted(RED), posted(BLUE)]},
        {"id": "xr-2", "prompt": ASK, "drafts": [{"text": "Distal radius.", "model": "vlm"}],
         "images": [posted(GREEN)]},
    ], id="v1", kind="verify", overlap=1)
    await add_expert(vision, "bo")

    def judge(card: Card) -> Decision:
        if card.item == "xr-1":
            return Verify(verdict="override", text="A hairline fracture of the scaphoid.",
                          reason="missed it")
        return Verify(verdict="accept")

    assert campaign.id == "v1" and await work(service, clock, "bo", judge) == 2


async def test_kto_and_both_sft_shapes_of_an_image_verify_campaign_load_with_their_images(
        tmp_path: Path, vision: Coordinator, service: Service, clock: SetClock,
        runtime: Runtime, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    await verify_scans(vision, service, clock)
    asked = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, *text(ASK)]}]
    fixed = "A hairline fracture of the scaphoid."

    kto, _ = await cli_export(runtime, "v1", "kto", tmp_path / "kto.jsonl", capsys)
    assert sorted((row["item"], row["completion"][0]["content"][0]["text"], row["label"])
                  for row in kto) == [("xr-1", fixed, True), ("xr-1", "No fracture.", False),
                                      ("xr-2", "Distal radius.", True)]
    assert all(row["prompt"] == asked for row in kto if row["item"] == "xr-1")

    (sft,), _ = await cli_export(runtime, "v1", "sft", tmp_path / "sft.jsonl", capsys)
    assert sft["messages"] == [*asked, *reply(fixed)]
    (pc,), _ = await cli_export(runtime, "v1", "sft", tmp_path / "pc.jsonl", capsys,
                                sft_shape="prompt_completion")
    assert (pc["prompt"], pc["completion"]) == (asked, reply(fixed))
    assert sft["images"] == pc["images"] == [f"images/{sha(RED)}.png", f"images/{sha(BLUE)}.png"]

    for name, expected in (("kto", {"xr-1": [(40, 30), (64, 48)], "xr-2": [(20, 10)]}),
                           ("sft", {"xr-1": [(40, 30), (64, 48)]}),
                           ("pc", {"xr-1": [(40, 30), (64, 48)]})):
        data = loaded(tmp_path / f"{name}.jsonl", tmp_path, monkeypatch)
        assert {row["item"]: sizes(row) for row in data} == expected, name
    assert len(list((tmp_path / "images").iterdir())) == 3  # shared by the three files
