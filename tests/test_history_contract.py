"""The `History` port's contract: on random campaigns of every kind, played through the real
service on the embedded Redis and archived at random moments with small segments, the DuckDB
reader (adapters/history/duckdb.py) gives what the plain reader (core/reports/history.py, the
reference) gives: the same task records, and the same exports, quality, pay, models report and
dashboard figures, before and after an expert is erased. Export lines are compared as JSON
values in key order: the lines DuckDB writes itself may spell a number differently."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from adapters.archive.files import LocalSegmentFiles
from adapters.dashboard.panels import build_panel
from adapters.history.duckdb import DuckHistory
from adapters.redis.store import RedisStore
from bots.simulate import decide
from core.domain.answers import Answer
from core.domain.campaigns import Campaign
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.ports import History
from core.privacy.rights import Privacy
from core.provenance.ledger import Ledger
from core.reports.exports import FORMATS, Export
from core.reports.history import PlainHistory
from core.reports.models import campaign_models
from core.reports.pay import campaign_pay
from core.reports.quality import campaign_quality
from core.reports.trainers import ExportOptions
from core.service.archiving import Archiver, ArchiveSettings
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.campaign_play import post_items
from tests.dashboard_seed import OPTIONS, items

NOW = 1_795_000_000_000
KINDS = ("pairwise", "pairwise", "pairwise", "rank", "rate", "correct", "verify", "label",
         "write")  # pairwise thrice: DuckDB writes its trail and preference lines itself
ODD = ("\n", " ", "\u00a0", "\u2003", "")  # white space TRL rows care about, or none
ALSO = ((), ("adjudicated",), ("adjudicated", "auto_accepted"))


class World:
    """One example's store (its own archive folder), service and both readers."""

    def __init__(self, client: aioredis.Redis, folder: Path, archive: ArchiveSettings) -> None:
        files = LocalSegmentFiles(folder)
        self.store = RedisStore(client, files=files)
        self.clock = SetClock(NOW)
        self.service = Service(self.store.roles(), self.clock)
        self.coordinator = Coordinator(self.store.roles(), self.clock, self.service.catalog)
        self.ledger = Ledger(self.store, self.store, files)
        self.plain = PlainHistory(self.ledger)
        self.duck = DuckHistory(self.store, self.store, self.store, str(folder))
        self.archiver = Archiver(self.store, self.store, files, self.clock, archive,
                                 history=self.duck)

    async def archive(self, aged: bool = False) -> None:
        """Seal and archive what is due; `aged`: an hour later, so what is past the tail is."""
        if aged:
            self.clock.advance(3600)
        await self.ledger.seal("c1")
        await self.archiver.archive("c1")


async def work(world: World, expert: str, rng: random.Random, tasks: int) -> None:
    """An expert answers up to `tasks` cards; now and then one runs out and is answered late,
    and an answer gets a line of why after it."""
    for _ in range(tasks):
        card = await world.service.next_task(expert)
        if not isinstance(card, Card):
            return
        await world.service.opened(card.lease, expert)
        late = rng.random() < 0.1
        world.clock.advance(700 if late else rng.uniform(1, 90))
        if late:
            await world.service.expire_leases("c1")
        outcome = await world.service.submit(Answer(expert=expert, lease=card.lease,
                                                    decision=decide(card, rng), channel="web"))
        if outcome.status == "recorded" and rng.random() < 0.15:
            await world.service.add_rationale(expert, card.lease, "because it reads right")
        if rng.random() < 0.3:
            await world.archive()


def odd_items(kind: str, count: int, rnd: random.Random) -> list[dict[str, Any]]:
    """The dashboard's items, some as conversations, some drafts starting or ending in odd
    white space and unicode, and for pairwise two drafts that differ only in white space."""
    found = items(kind, count, rnd)
    for item in found:
        if rnd.random() < 0.3:
            item["prompt"] = [{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": item["prompt"]}]
        for draft in item["drafts"]:
            if rnd.random() < 0.3:
                draft["text"] = rnd.choice(ODD) + draft["text"] + " é 中 \t" + rnd.choice(ODD)
    if kind == "pairwise" and rnd.random() < 0.5:
        found.append({"id": "same", "prompt": "Same?", "drafts": [
            {"text": "Same.", "model": "a"}, {"text": "\u00a0Same.\n", "model": "b"}]})
    return found


def values(line: str) -> Any:
    """A line's JSON values, objects as (key, value) lists, so key order counts too."""
    return json.loads(line, object_pairs_hook=list)


async def records(history: History, also: tuple[str, ...], with_items: bool) -> list[Any]:
    return [record async for batch in history.task_records("c1", also=also,
                                                           with_items=with_items)
            for record in batch]


async def outputs(world: World, campaign: Campaign, history: History) -> dict[str, Any]:
    """What a coordinator reads, through `history`."""
    found: dict[str, Any] = {}
    for fmt, options in [(fmt, ExportOptions()) for fmt in FORMATS] + [
            ("preference", ExportOptions(conversational=True))]:
        export = Export(world.ledger, campaign, fmt, options, history=history)
        lines = [line async for line in export.lines()]
        name = fmt + (" conversational" if options.conversational else "")
        found[name] = [values(line) for line in lines] if fmt != "csv" else lines
        found[f"{name} summary"] = export.summary.model_dump()
    found["quality"] = (await campaign_quality(world.ledger, campaign, resamples=20,
                                               history=history)).model_dump()
    found["pay"] = (await campaign_pay(world.ledger, campaign, history=history)).model_dump()
    found["models"] = (await campaign_models(world.ledger, campaign,
                                             history=history)).model_dump()
    status = await world.coordinator.status("c1")
    panel = await build_panel(world.coordinator, world.ledger, status, 0, history)
    figures = panel.figures
    found["dashboard"] = {
        "quality": panel.quality.model_dump(), "pay": panel.pay.model_dump(),
        "models": panel.models.model_dump() if panel.models else None, "ties": panel.ties,
        "figures": [figures.answered, sorted(figures.by_minute.items()),
                    sorted(figures.by_bin.items()), sorted(figures.sample),
                    sorted(figures.paid_tasks.items()), sorted(figures.paid_seconds.items())]}
    return found


async def same_everywhere(world: World, campaign: Campaign) -> None:
    for also in ALSO:
        for with_items in (True, False):
            assert await records(world.duck, also, with_items) == \
                await records(world.plain, also, with_items), (also, with_items)
    assert await world.duck.has_images("c1") == await world.plain.has_images("c1")
    duck, plain = await outputs(world, campaign, world.duck), await outputs(
        world, campaign, world.plain)
    for name in plain:
        assert duck[name] == plain[name], name


@settings(max_examples=6, deadline=None, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), count=st.integers(3, 10), overlap=st.integers(1, 3),
       experts=st.integers(2, 4), segment=st.integers(12, 60), tail=st.integers(0, 15),
       rnd=st.randoms(use_true_random=False))
async def test_the_duckdb_reader_reads_what_the_plain_one_reads(
        client: aioredis.Redis, kind: str, count: int, overlap: int, experts: int,
        segment: int, tail: int, rnd: random.Random) -> None:
    await client.flushdb()
    with tempfile.TemporaryDirectory() as folder:
        world = World(client, Path(folder), ArchiveSettings(
            segment_events=segment, segment_seconds=600, hot_tail=tail))
        campaign = await post_items(world.coordinator, odd_items(kind, count, rnd), kind=kind,
                                    overlap=overlap, time_limit_s=600,
                                    pay={"per_task": 0.5, "currency": "USD", "min_hourly": 30},
                                    **OPTIONS.get(kind, {}))
        names = [f"expert-{n}" for n in range(experts)]
        for name in names:
            await world.coordinator.add_expert(Expert(id=name, name=name))
            await work(world, name, rnd, rnd.randint(1, count))
        await world.archive(aged=True)
        assert await world.store.segments("c1")  # something to read from the files
        await same_everywhere(world, campaign)

        await Privacy(world.store.roles(), world.ledger).erase(names[0])
        for name in names[1:]:
            await work(world, name, rnd, count)
        await world.archive(aged=rnd.random() < 0.5)
        await same_everywhere(world, campaign)
        assert names[0] not in {json.loads(line)["expert"]
                                for line in await _trail(world, campaign)}


async def _trail(world: World, campaign: Campaign) -> list[str]:
    return [line async for line in Export(world.ledger, campaign, "trail",
                                          history=world.duck).lines()]
