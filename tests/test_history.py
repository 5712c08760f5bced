"""The DuckDB history beyond its contract: it reads an archive at an fsspec URL without loading
any DuckDB extension, keeps each segment's tallies beside it as it is archived and computes
them again when that file is unreadable; and the trail lines that splice each item's part are
byte for byte json.dumps of the rows."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import fsspec  # type: ignore[import-untyped]
import pytest
import redis.asyncio as aioredis

from adapters.archive.files import LocalSegmentFiles, open_segment_files
from adapters.history.duckdb import DuckHistory
from adapters.redis.store import RedisStore
from bots.simulate import decide
from core.domain.campaigns import Campaign
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.ports import SegmentFiles
from core.provenance.ledger import Ledger
from core.reports.exports import SHOWN, item_shown, shown_key, trail_row
from core.reports.history import PlainHistory
from core.reports.lines import Fragments, spliced_line
from core.reports.quality import campaign_quality
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

    async def play(self, kind: str = "pairwise") -> Campaign:
        rng = random.Random(3)
        campaign = await post_items(self.coordinator, items(kind, 12, rng), kind=kind,
                                    overlap=2, **OPTIONS.get(kind, {}))
        for name in ("ann", "bob"):
            await self.coordinator.add_expert(Expert(id=name, name=name))
            await work(self.service, self.clock, name, lambda card: decide(card, rng), 20)
        await self.ledger.seal("c1")
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


async def test_each_archived_segment_keeps_its_tallies_and_a_damaged_file_is_redone(
        client: aioredis.Redis, clock: SetClock, tmp_path: Path) -> None:
    files = LocalSegmentFiles(tmp_path / "archive")
    world = World(client, files, clock)
    campaign = await world.play()
    folder = tmp_path / "archive" / "c1"
    segments = await world.store.segments("c1")
    assert sorted(p.name for p in folder.glob("*.panel.json")) == sorted(
        f"{s.name}.panel.json" for s in segments)
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
