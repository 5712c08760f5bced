"""The DuckDB history beyond its contract: it reads an archive at an fsspec URL without loading
any DuckDB extension, keeps the archive's tallies beside its newest segment as each is archived
and computes them again when that file is unreadable; the trail lines that splice each item's
part are byte for byte json.dumps of the rows, and so are the pairwise lines DuckDB writes; the
tail read for has_images serves the export's read after it; and verify's fast pass over a
segment still finds a change."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import fsspec  # type: ignore[import-untyped]
import pytest
import redis.asyncio as aioredis

from adapters.archive.files import LocalSegmentFiles, open_segment_files
from adapters.archive.segments import segment_bytes
from adapters.history.duckdb import DuckHistory
from adapters.redis.keys import segments_key
from adapters.redis.store import RedisStore
from bots.simulate import decide
from core.domain.campaigns import Campaign
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.ports import SegmentFiles
from core.provenance.ledger import Ledger
from core.reports.exports import SHOWN, Export, item_shown, shown_key, trail_row
from core.reports.history import PlainHistory
from core.reports.lines import Fragments, LinePlan, spliced_line
from core.reports.quality import FAST_SHARE, campaign_quality
from core.service.archiving import Archiver, ArchiveSettings
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.campaign_play import post_items, work
from tests.dashboard_seed import OPTIONS, items

SMALL = ArchiveSettings(segment_events=40, segment_seconds=3600, hot_tail=10)


class World:
    def __init__(self, client: aioredis.Redis, files: SegmentFiles, clock: SetClock) -> None:
        self.store = RedisStore(client, files=files)
        self.clock = clock
        self.service = Service(self.store.roles(), clock)
        self.coordinator = Coordinator(self.store.roles(), clock, self.service.catalog)
        self.ledger = Ledger(self.store, self.store, files)
        self.duck = DuckHistory(self.store, self.store, self.store, files.location())
        self.archiver = Archiver(self.store, self.store, files, clock, SMALL, history=self.duck)

    async def play(self, kind: str = "pairwise", limit: int = 10_000) -> Campaign:
        rng = random.Random(3)
        campaign = await post_items(self.coordinator, items(kind, 20, rng), kind=kind,
                                    overlap=2, **OPTIONS.get(kind, {}))
        for name in ("ann", "bob"):
            await self.coordinator.add_expert(Expert(id=name, name=name))
            await work(self.service, self.clock, name, lambda card: decide(card, rng), 20,
                       limit)
        await self.ledger.seal("c1")
        self.clock.advance(7200)  # all past the tail is due, in segments of 40
        await self.archiver.archive("c1")
        return campaign


async def test_an_archive_at_an_fsspec_url_reads_as_the_plain_history_and_loads_nothing(
        client: aioredis.Redis, clock: SetClock, tmp_path: Path) -> None:
    world = World(client, open_segment_files(f"memory://{tmp_path.name}/archive"), clock)
    campaign = await world.play()
    segments = await world.store.segments("c1")
    assert segments
    memory = fsspec.filesystem("memory")
    assert memory.exists(f"/{tmp_path.name}/archive/c1/{segments[-1].name}.panel.json")
    plain = PlainHistory(world.ledger)
    assert [r async for b in world.duck.task_records("c1") for r in b] == \
        [r async for b in plain.task_records("c1") for r in b]
    assert await campaign_quality(world.ledger, campaign, history=world.duck) == \
        await campaign_quality(world.ledger, campaign, history=plain)
    loaded = world.duck._connection().sql(
        "SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()
    assert {name for (name,) in loaded} <= {"core_functions", "icu", "json", "parquet"}


async def test_the_newest_segment_keeps_the_tallies_and_a_damaged_file_is_redone(
        client: aioredis.Redis, clock: SetClock, tmp_path: Path) -> None:
    files = LocalSegmentFiles(tmp_path / "archive")
    world = World(client, files, clock)
    campaign = await world.play()
    folder = tmp_path / "archive" / "c1"
    segments = await world.store.segments("c1")
    assert len(segments) > 2  # the newest two keep tallies; the older ones' files went
    assert sorted(p.name for p in folder.glob("*.panel.json")) == sorted(
        f"{s.name}.panel.json" for s in segments[-2:])
    plain = PlainHistory(world.ledger)
    expected = await campaign_quality(world.ledger, campaign, history=plain)

    last = folder / f"{segments[-1].name}.panel.json"
    last.write_text("{not json")
    fresh = DuckHistory(world.store, world.store, world.store, str(tmp_path / "archive"))
    assert await campaign_quality(world.ledger, campaign, history=fresh) == expected
    assert json.loads(last.read_text())["format"]  # computed again and kept


@pytest.mark.parametrize("kind", ["pairwise", "rank", "correct", "verify", "label"])
async def test_a_spliced_trail_line_is_json_dumps_of_its_row(
        client: aioredis.Redis, clock: SetClock, tmp_path: Path, kind: str) -> None:
    world = World(client, LocalSegmentFiles(tmp_path / "archive"), clock)
    campaign = await world.play(kind)
    fragments = Fragments()
    rows = 0
    async for batch in PlainHistory(world.ledger).task_records("c1", also=("adjudicated",)):
        for record in batch:
            whole = trail_row(campaign, record, 12.5, 3)
            spliced = spliced_line(trail_row(campaign, record, 12.5, 3, shown=SHOWN),
                                   fragments.get(shown_key(record), lambda r=record: item_shown(r)))
            assert spliced == _dumps(whole) + "\n"
            rows += 1
    assert rows


def _dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


async def test_verify_finds_an_event_changed_in_a_segment_whose_manifest_was_changed_too(
        client: aioredis.Redis, clock: SetClock, tmp_path: Path) -> None:
    """Whoever rewrites a segment file and its SHA-256 in the manifest still breaks the chain:
    verify's fast pass over a segment finds it, and the checker names the event."""
    files = LocalSegmentFiles(tmp_path / "archive")
    world = World(client, files, clock)
    await world.play()
    assert (await world.ledger.verify("c1")).ok
    first = (await world.store.segments("c1"))[0]
    events = files.read_segment(first)
    changed = json.loads(events[5].body)
    changed["type"] = "answered_twice"
    events[5] = events[5].model_copy(update={"body": json.dumps(changed)})
    data = segment_bytes(first, events)
    (files.root / "c1" / first.name).write_bytes(data)
    forged = first.model_copy(update={"sha256": hashlib.sha256(data).hexdigest()})
    manifest = segments_key("c1")
    await client.zrem(manifest, first.model_dump_json())
    await client.zadd(manifest, {forged.model_dump_json(): first.last_seq})
    verdict = await world.ledger.verify("c1")
    assert not verdict.ok and verdict.bad_seq == events[5].seq
    assert "changed" in (verdict.reason or "") and first.name in (verdict.reason or "")


async def _exported(world: World, campaign: Campaign, fmt: str, history: Any) -> list[str]:
    return [line async for line in Export(world.ledger, campaign, fmt,
                                          history=history).lines()]


@pytest.mark.parametrize("fmt", ["trail", "preference"])
async def test_the_lines_duckdb_writes_are_the_plain_readers_byte_for_byte(
        client: aioredis.Redis, clock: SetClock, tmp_path: Path, fmt: str) -> None:
    """A pairwise campaign's lines, written by DuckDB over archived segments and the tail, are
    the bytes the plain reader's rows give (json.dumps), one line per task, in log order."""
    world = World(client, LocalSegmentFiles(tmp_path / "archive"), clock)
    campaign = await world.play()
    assert await world.store.segments("c1")
    plan = LinePlan(fmt, False, False, False, None, None, FAST_SHARE)
    assert world.duck.writes_lines(campaign, plan)  # the lines below are DuckDB's own
    duck = await _exported(world, campaign, fmt, world.duck)
    assert len(duck) > 20
    assert duck == await _exported(world, campaign, fmt, PlainHistory(world.ledger))


async def test_an_export_after_has_images_reads_what_came_after_it(
        client: aioredis.Redis, clock: SetClock, tmp_path: Path) -> None:
    """The tail read to answer has_images serves the read that follows it, which gives what a
    fresh read gives: answers recorded in between (unsealed, then sealed once the tail read
    held them unsealed) and a segment archived in between are all read."""
    world = World(client, LocalSegmentFiles(tmp_path / "archive"), clock)
    campaign = await world.play(limit=8)  # tasks left for cy
    plan = LinePlan("preference", False, False, False, None, None)
    rng = random.Random(5)
    await world.coordinator.add_expert(Expert(id="cy", name="cy"))
    reader = DuckHistory(world.store, world.store, world.store, str(tmp_path / "archive"))
    for step in ("unsealed", "answers", "archived"):  # the archiver has a history of its own
        assert not await reader.has_images("c1")
        await work(world.service, world.clock, "cy", lambda card: decide(card, rng), 20, 3)
        if step != "unsealed":
            await world.ledger.seal("c1")
        if step == "archived":
            world.clock.advance(7200)
            await world.archiver.archive("c1")
        fresh = DuckHistory(world.store, world.store, world.store, str(tmp_path / "archive"))
        kept = [lined async for batch in reader.lines(campaign, plan) for lined in batch]
        assert kept == [lined async for batch in fresh.lines(campaign, plan) for lined in batch]
        assert "cy" in {json.loads(lined.line)["expert"] for lined in kept if lined.line}, step
