"""Archiving sealed segments: a campaign's history moves to Parquet files and Redis keeps the
tail, while every reader (exports, quality, pay, verify, checkpoints, claims) sees one log; and
verify names the segment whose file was deleted, replaced, truncated or cannot be reached."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.archive.files import LocalSegmentFiles, open_segment_files
from adapters.redis import keys as k
from adapters.redis.store import RedisStore
from adapters.signing.ed25519 import Ed25519Signer, Ed25519Verifier, write_key_pair
from adapters.signing.notes import NoteFiles
from bots.runtime import Runtime
from bots.settings import Settings
from bots.worker import archive_loop, archive_pass
from core.domain.answers import Answer
from core.domain.campaigns import Campaign
from core.domain.cards import Card
from core.domain.kinds import Choose
from core.domain.timing import SetClock
from core.provenance.checkpoints import read_notes
from core.provenance.ledger import Ledger
from core.provenance.proofs import check_checkpoints
from core.reports.exports import Export
from core.reports.pay import campaign_pay
from core.reports.quality import campaign_quality
from core.service.archiving import Archiver, ArchiveSettings
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.campaign_play import add_expert, post_items, work

SMALL = ArchiveSettings(segment_events=50, segment_seconds=3600, hot_tail=20)
PAIR = [{"text": "One.", "model": "m1"}, {"text": "Two.", "model": "m2"}]


@pytest.fixture
def archive(tmp_path: Path) -> LocalSegmentFiles:
    return LocalSegmentFiles(tmp_path / "archive")


@pytest.fixture
def store(client: aioredis.Redis, archive: LocalSegmentFiles) -> RedisStore:
    """The suite's store, reading archived segments from the test's own archive."""
    return RedisStore(client, files=archive)


@pytest.fixture
def ledger(store: RedisStore, archive: LocalSegmentFiles) -> Ledger:
    return Ledger(store, store, archive)


@pytest.fixture
def archiver(store: RedisStore, archive: LocalSegmentFiles, clock: SetClock) -> Archiver:
    return Archiver(store, store, archive, clock, SMALL)


async def played(service: Service, coordinator: Coordinator, clock: SetClock,
                 ledger: Ledger, overlap: int = 2) -> Campaign:
    """30 pairwise items answered by two experts, sealed: about 280 events."""
    items = [{"id": f"q{i}", "prompt": f"Q{i}?", "drafts": PAIR} for i in range(30)]
    campaign = await post_items(coordinator, items, kind="pairwise", overlap=overlap,
                                pay={"per_task": 1.5, "currency": "USD", "min_hourly": 60})
    for expert, choice, seconds in (("ann", "A", 40), ("bob", "B", 70)):
        await add_expert(coordinator, expert)
        await work(service, clock, expert, lambda card, c=choice: Choose(choice=c), seconds)
    await ledger.seal("c1")
    return campaign


async def reports(ledger: Ledger, campaign: Campaign) -> dict[str, Any]:
    """What a coordinator reads of a campaign: exports, quality, pay, verify."""
    found: dict[str, Any] = {}
    for fmt in ("trail", "preference"):
        export = Export(ledger, campaign, fmt)
        found[fmt] = [line async for line in export.lines()]
    found["quality"] = (await campaign_quality(ledger, campaign, resamples=20)).model_dump()
    found["pay"] = (await campaign_pay(ledger, campaign)).model_dump()
    found["verify"] = (await ledger.verify("c1")).line()
    return found


async def in_redis(client: aioredis.Redis) -> tuple[int, int]:
    return (await client.xlen(k.campaign_key("c1", "log")),
            await client.hlen(k.campaign_key("c1", "hashes")))


async def test_an_archived_campaign_reads_the_same_and_redis_keeps_only_the_tail(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        store: RedisStore, archiver: Archiver, archive: LocalSegmentFiles) -> None:
    campaign = await played(service, coordinator, clock, ledger)
    before = await reports(ledger, campaign)
    events = await store.last_seq("c1")

    full = await archiver.archive("c1")  # segments of 50 while 50 are due past the tail
    clock.advance(3600)
    aged = await archiver.archive("c1")  # then the rest past the tail, its oldest an hour old

    assert [s.events for s in full] == [50] * ((events - 20) // 50)
    assert [s.events for s in aged] == [(events - 20) % 50]
    assert await in_redis(store.client) == (20, 20)
    assert sorted(p.name for p in (archive.root / "c1").iterdir()) == [
        s.name for s in await store.segments("c1")]
    assert await reports(ledger, campaign) == before


async def test_a_campaign_keeps_serving_tasks_whose_items_were_archived(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        store: RedisStore, archiver: Archiver) -> None:
    await played(service, coordinator, clock, ledger, overlap=3)
    await add_expert(coordinator, "cy")
    held = await service.next_task("cy")  # a task in hand while its item is archived
    assert isinstance(held, Card)
    await ledger.seal("c1")
    assert await archiver.archive("c1")
    assert (await store.segments("c1"))[0].last_seq > 31  # every item event is archived

    outcome = await service.submit(Answer(expert="cy", lease=held.lease,
                                          decision=Choose(choice="A"), channel="web"))
    more = await work(service, clock, "cy", lambda card: Choose(choice="A"))

    assert outcome.status == "recorded"
    assert more == 29  # every other item, each read from what the archive left in Redis
    assert (await ledger.verify("c1")).ok


async def noted(store: RedisStore, n: int) -> None:
    """`n` small events in campaign c1, sealed."""
    for i in range(n):
        await store.append_event("c1", f'{{"actor":"system","at":"2026-11-18T11:06:40.000Z",'
                                       f'"campaign":"c1","type":"note","payload":{{"i":{i}}}}}')
    await Ledger(store).seal("c1")


async def notes_archived(store: RedisStore, archiver: Archiver, n: int) -> list[str]:
    await noted(store, n)
    return [segment.name for segment in await archiver.archive("c1")]


def deleted(folder: Path, names: list[str]) -> None:
    (folder / names[1]).unlink()


def replaced(folder: Path, names: list[str]) -> None:
    shutil.copyfile(folder / names[2], folder / names[1])  # a valid segment, the wrong one


def truncated(folder: Path, names: list[str]) -> None:
    data = (folder / names[1]).read_bytes()
    (folder / names[1]).write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage", [deleted, replaced, truncated])
async def test_verify_names_the_segment_whose_file_was_damaged(
        store: RedisStore, archiver: Archiver, archive: LocalSegmentFiles, ledger: Ledger,
        damage: Any) -> None:
    names = await notes_archived(store, archiver, 180)
    assert (await ledger.verify("c1")).ok

    damage(archive.root / "c1", names)
    verdict = await ledger.verify("c1")

    assert not verdict.ok and verdict.bad_seq == 51
    assert verdict.reason is not None and names[1] in verdict.reason
    why = {deleted: "missing", replaced: "replaced", truncated: "replaced or truncated"}[damage]
    assert why in verdict.reason


async def test_verify_fails_when_the_archive_cannot_be_reached(
        store: RedisStore, archiver: Archiver, tmp_path: Path) -> None:
    names = await notes_archived(store, archiver, 80)
    nowhere = Ledger(store, store, open_segment_files(str(tmp_path / "unmounted")))

    verdict = await nowhere.verify("c1")

    assert not verdict.ok and verdict.bad_seq == 1
    assert verdict.reason is not None and names[0] in verdict.reason
    assert "cannot be reached" in verdict.reason


async def test_a_worker_told_to_stop_archives_no_further_segment(
        store: RedisStore, archiver: Archiver) -> None:
    await noted(store, 130)
    stop = asyncio.Event()
    stop.set()

    assert await archiver.archive("c1", stop) == []
    assert len(await archiver.archive("c1")) == 2


async def test_the_fsspec_archive_round_trips_a_segment(store: RedisStore, clock: SetClock,
                                                        tmp_path: Path) -> None:
    files = open_segment_files(f"memory://{tmp_path.name}/archive")
    archiver = Archiver(store, store, files, clock, SMALL)

    names = await notes_archived(store, archiver, 80)
    again = files.write_segment((await store.segments("c1"))[0],
                                files.read_segment((await store.segments("c1"))[0]))

    assert names == ["000000000001-000000000050.parquet"]
    assert again == (await store.segments("c1"))[0]  # kept as it was, not written twice
    assert (await Ledger(store, store, files).verify("c1")).ok


async def test_the_worker_archives_and_signs_a_checkpoint_at_each_segment(
        tmp_path: Path, client: aioredis.Redis, clock: SetClock) -> None:
    private, public = tmp_path / "signing.pem", tmp_path / "signing.pub.pem"
    write_key_pair(private, public)
    settings = Settings(_env_file=None, EXPERTLOOP_DATA_DIR=tmp_path / "var",
                        EXPERTLOOP_SIGNING_KEY=private, EXPERTLOOP_SEGMENT_EVENTS=50,
                        EXPERTLOOP_HOT_TAIL_EVENTS=20)
    files = open_segment_files(settings.archive_location())
    store = RedisStore(client, files=files)
    service = Service(store.roles(), clock)
    runtime = Runtime(settings, client, store, service,
                      Coordinator(store.roles(), clock, service.catalog),
                      Ledger(store, store, files))
    await played(service, runtime.coordinator, clock, runtime.ledger)
    archiver = Archiver(store, store, files, clock, settings.archiving())

    signing = (Ed25519Signer.from_pem(private), NoteFiles(settings.checkpoints_dir()))

    archived = await archive_pass(runtime, archiver, signing)

    assert archived == len(await store.segments("c1")) > 0
    assert (tmp_path / "var" / "archive" / "c1").is_dir()
    notes = read_notes(NoteFiles(settings.checkpoints_dir()).path("c1").read_text())
    assert len(notes) == 1
    verifier = Ed25519Verifier.from_pem(public)
    assert await check_checkpoints(store, "c1", notes, verifier) == 1


async def test_without_an_archive_the_archive_loop_says_so(
        tmp_path: Path, client: aioredis.Redis, clock: SetClock,
        caplog: pytest.LogCaptureFixture) -> None:
    store = RedisStore(client)
    service = Service(store.roles(), clock)
    runtime = Runtime(Settings(_env_file=None, EXPERTLOOP_DATA_DIR=tmp_path), client, store,
                      service, Coordinator(store.roles(), clock, service.catalog), Ledger(store))
    with caplog.at_level(logging.INFO, logger="expertloop.worker"):
        await asyncio.wait_for(archive_loop(runtime, asyncio.Event()), 30)
    assert "archiving is off" in caplog.text


def test_the_checkpoints_sit_beside_a_local_archive_and_under_the_data_dir_otherwise(
        tmp_path: Path) -> None:
    local = Settings(_env_file=None, EXPERTLOOP_DATA_DIR=tmp_path / "var",
                     EXPERTLOOP_ARCHIVE=str(tmp_path / "shared" / "archive"))
    remote = Settings(_env_file=None, EXPERTLOOP_DATA_DIR=tmp_path / "var",
                      EXPERTLOOP_ARCHIVE="s3://bucket/archive")
    default = Settings(_env_file=None, EXPERTLOOP_DATA_DIR=tmp_path / "var")

    assert local.checkpoints_dir() == tmp_path / "shared" / "checkpoints"
    assert remote.checkpoints_dir() == tmp_path / "var" / "checkpoints"
    assert default.archive_location() == str(tmp_path / "var" / "archive")
    assert default.checkpoints_dir() == tmp_path / "var" / "checkpoints"
