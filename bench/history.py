"""Benchmark: reports at a million answers, read from the archive and the hot tail (issue 17).

Seeding. A pairwise campaign (drafts from three models of known strength) is posted through
the Coordinator with answers/3 items, and `--experts` experts are added. Then the events a
played campaign writes for each task (`assigned`, `delivered`, `opened`, `answered`, shaped as
the service writes them for the web chat, bodies from core/provenance/events.py; every expert
holds a task at once, answered within a minute) are sealed in Python with
core.provenance.chain.seal_events and, every EXPERTLOOP_SEGMENT_EVENTS events, archived through
the Archiver's own steps (`write`: the file written, fsynced, read back; the seals saved as the
sealer saves them; `trim`: the manifest) without passing through Redis. The newest events (less
than a segment plus EXPERTLOOP_HOT_TAIL_EVENTS) go into Redis through the store's append
script, the seq counter first moved past the archived events (the one write not made through
the store), and then the real sealer and the worker's own `archive_pass` leave the hot tail.
No answer is played through the service there: its live state (leases, votes, ...) is not
made, so the memory figure comes from a second, played campaign (below).

Measured, each beside a baseline from the same run, through the code a user runs (the CLI's
own `campaign export` and `campaign quality` functions, the dashboard page over HTTP from the
web app, `Ledger.verify`):
- `trail` and `preference` export rows/s; baseline: DuckDB's `COPY (SELECT ...) TO 'x.jsonl'` of
  the same columns, straight over the segment files (targets: >= 50,000 rows/s and >= 50% of it);
- the dashboard page, cold (<= 10 s) and with the log unchanged (<= 0.2 s);
- `campaign quality` with 200 bootstrap resamples (<= 30 s); baseline: 200 bare
  `evalica.bradley_terry` fits, each on a bootstrap resample of the same judgments (<= 1.5x);
- `provenance verify` events/s (>= 200,000); baseline: a bare loop that reads the same events
  (segment files with pyarrow, the tail from Redis), parses, canonicalises and hashes each one
  (>= 50%);
- Redis `used_memory` per answered task on a campaign played through the service
  (`--memory-answers`, its own embedded Redis), sealed, before and after archiving. After
  archiving, the log still in Redis (the hot tail, plus events not yet due for a segment) is
  bounded by the settings, not by the answers: it is shown apart, and the per-task figure
  judged against the target (<= 1 KiB; 2.4 KiB before issue 17) is the rest.
Every figure is printed with its target and verdict, also where it falls short; the exit code
is 0 either way (a measurement, not a test).

    .venv/bin/python bench/history.py [--quick] [--answers 1000000] [--experts 300]
        [--memory-answers 30000] [--segment-events N] [--hot-tail N] [--bare-fits 50] [--json]

`--quick`: 20,000 answers by 60 experts, 5,000 played for memory, segments of 5,000 events
and a tail of 1,000 (so a small run still archives several segments), all 200 bare fits timed;
under two minutes. The full run times 50 of the 200 bare fits (each 0.5-1 s at a million
judgments) and scales them, and took 14 minutes on this 2-core machine (load average 1-4).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import random
import resource
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import duckdb
import evalica
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.archive.segments import meta_for  # noqa: E402
from adapters.dashboard.routes import DASHBOARD  # noqa: E402
from adapters.redis import keys as k  # noqa: E402
from adapters.redis.embedded import EmbeddedRedis  # noqa: E402
from adapters.redis.lua import sha, source  # noqa: E402
from bots import reports  # noqa: E402
from bots.runtime import Runtime, open_runtime  # noqa: E402
from bots.settings import Settings  # noqa: E402
from bots.web import build_app  # noqa: E402
from bots.worker import archive_pass  # noqa: E402
from core.domain.answers import Answer  # noqa: E402
from core.domain.campaigns import CampaignSpec  # noqa: E402
from core.domain.cards import Card, Idle  # noqa: E402
from core.domain.experts import Expert  # noqa: E402
from core.domain.kinds import Choose  # noqa: E402
from core.domain.timing import SetClock  # noqa: E402
from core.provenance.chain import ChainHead, Seal, StoredEvent, seal_events  # noqa: E402
from core.provenance.events import GENESIS, Event, body_json, iso_ms  # noqa: E402
from core.provenance.segments import ArchivedEvent  # noqa: E402
from core.service.archiving import Archiver, Segment, held_items  # noqa: E402
from core.service.staging import spool_items  # noqa: E402

CAMPAIGN = "bench-history"
OVERLAP = 3
MODELS = ("model-a", "model-b", "model-c")
STRENGTH = {"model-a": 0.62, "model-b": 0.5, "model-c": 0.38}
WORD_LIST = ("the model answer patient dose risk contract clause court tax proof lemma function "
             "error request cache query index user policy claim evidence study trial outcome "
             "effect sample bias gradient token context prompt draft review expert better worse")
WORDS = WORD_LIST.split()
TASK_S = 30.0  # every expert holds one task at a time and answers it in about this long
START_MS = 1_795_000_000_000
BATCH = 2000  # appends per pipeline round trip
QUIET_S = 3.0  # before reading used_memory: Redis trims idle client buffers, flushes its AOF
RESAMPLES = 200
PLAYING = 50  # experts answering at once in the played campaign


@dataclass
class Figure:
    """One line of the results: what was measured, its target, its baseline, the verdicts."""

    name: str
    value: float
    unit: str
    target: str
    meets_target: bool | None
    baseline: str = ""
    meets_baseline: bool | None = None
    note: str = ""


def progress(text: str) -> None:
    """A line on stderr while the run goes on, with the process's peak memory so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"  {text} [peak RSS {peak:.1f} GiB]", file=sys.stderr, flush=True)


# --- the seeded campaign -----------------------------------------------------------------


CORPUS = " ".join(random.Random(3).choices(WORDS, k=200_000))


def text(rng: random.Random, chars: int) -> str:
    """About `chars` characters of words, cut from a long random text at a random word."""
    start = CORPUS.index(" ", rng.randrange(len(CORPUS) - 4 * chars)) + 1
    end = CORPUS.index(" ", start + chars)
    return CORPUS[start:end].capitalize() + "."


def make_item(rng: random.Random, n: int) -> dict[str, Any]:
    """~600 bytes, like a short pairwise item: a prompt and two drafts by different models."""
    texts = [text(rng, 200), text(rng, 200)]
    while texts[1] == texts[0]:  # a pair of identical drafts says nothing: exports leave it out
        texts[1] = text(rng, 200)
    drafts = [{"text": t, "model": m} for t, m in zip(texts, rng.sample(MODELS, 2), strict=True)]
    return {"id": f"item-{n:07d}", "prompt": text(rng, 120), "drafts": drafts}


def spec() -> CampaignSpec:
    return CampaignSpec(id=CAMPAIGN, title="Which answer is better?", kind="pairwise",
                        overlap=OVERLAP, time_limit_s=3600,
                        pay={"per_task": 0.4, "currency": "USD", "min_hourly": 30})


async def post(runtime: Runtime, items: int, experts: int) -> list[dict[str, Any]]:
    """The campaign and its experts, through the Coordinator; the items, as posted."""
    rng = random.Random(7)
    posted = [make_item(rng, n) for n in range(items)]
    spool = spool_items(spec(), iter(posted))
    try:
        await runtime.coordinator.post_campaign(spec(), spool)
    finally:
        spool.close()
    for n in range(experts):
        await runtime.coordinator.add_expert(Expert(id=f"expert-{n:03d}", name=f"Expert {n}",
                                                    daily_cap=10**9))
    return posted


class Judgments:
    """What each answer implied about the models, as the quality report reads it (model of
    draft 0, of draft 1, which won): the bare baseline fits the same judgments."""

    def __init__(self) -> None:
        self.xs: list[str] = []
        self.ys: list[str] = []
        self.winners: list[int] = []


def task_events(item: dict[str, Any], item_seq: int, expert: str, number: int, at: int,
                rng: random.Random, judged: Judgments) -> list[tuple[int, str]]:
    """(at, body) of one task's events, as the service writes them for a web chat expert."""
    lease = f"1.{number:012d}"
    order = rng.sample([0, 1], 2)
    a, b = (STRENGTH[item["drafts"][i]["model"]] for i in order)
    choice = "A" if rng.random() < a / (a + b) else "B"
    judged.xs.append(item["drafts"][0]["model"])
    judged.ys.append(item["drafts"][1]["model"])
    judged.winners.append(1 if order[0 if choice == "A" else 1] == 0 else 2)
    delivered, opened = at + rng.randint(100, 900), at + rng.randint(1000, 5000)
    answered = opened + int(rng.uniform(10, 40) * 1000)
    ids: dict[str, Any] = {"campaign": CAMPAIGN, "item": item["id"], "expert": expert,
                           "lease": lease}
    timing = {"active_seconds": round((answered - opened) / 1000, 3), "answered_at": answered,
              "assigned_at": at, "delivered_at": delivered, "opened_at": opened}
    events = [
        Event(type="assigned", at=iso_ms(at), actor="system", payload={
            "expires_at": at + 3_600_000, "item_seq": item_seq, "gold": False, "order": order},
            **ids),
        Event(campaign=CAMPAIGN, type="delivered", at=iso_ms(delivered), actor="system",
              lease=lease, payload={"channel": "web", "message_id": f"web-{number}"}),
        Event(campaign=CAMPAIGN, type="opened", at=iso_ms(opened), actor="system", lease=lease),
        Event(type="answered", at=iso_ms(answered), actor="expert", actor_id=expert, payload={
            "gold": False, "decision": {"choice": choice, "type": "pairwise"},
            "platform_event": None, "channel": "web", "order": order, "timing": timing}, **ids),
    ]
    return [(ms, body_json(event)) for ms, event in
            zip((at, delivered, opened, answered), events, strict=True)]


def answer_bodies(items: list[dict[str, Any]], seqs: dict[str, int], answers: int,
                  experts: int, clock: SetClock, judged: Judgments) -> Iterator[str]:
    """Every expert takes a task at once (a wave), then all answer: the log interleaves their
    events by time, as concurrent experts' do, and the next wave starts after the last answer.
    Each round visits every item, so no expert answers an item twice (expert n+round) and a
    reader's item cache is cold every round. The clock (the archiver's) follows the log."""
    rng = random.Random(11)
    for first in range(0, answers, experts):
        at = clock.now_ms()
        wave: list[tuple[int, str]] = []
        for number in range(first, min(first + experts, answers)):
            rnd, n = divmod(number, len(items))
            item = items[n]
            wave += task_events(item, seqs[item["id"]], f"expert-{(n + rnd) % experts:03d}",
                                number, at + rng.randint(0, 2000), rng, judged)
        wave.sort(key=lambda pair: pair[0])
        clock.now = wave[-1][0] + rng.randint(200, 1500)
        yield from (body for _, body in wave)


async def append(runtime: Runtime, bodies: list[str]) -> None:
    """One append.lua call per event (INCR the seq, XADD), as the service's scripts append,
    sent BATCH to a round trip."""
    keys = k.script_keys(CAMPAIGN)
    await runtime.client.script_load(source("append"))
    async with runtime.client.pipeline(transaction=False) as pipe:
        for body in bodies:
            pipe.execute_command("EVALSHA", sha("append"), len(keys), *keys, body)
            if len(pipe) >= BATCH:
                await pipe.execute()
        await pipe.execute()


def archiver(runtime: Runtime) -> Archiver:
    """The worker's Archiver (bots/worker.py `archive_loop`), on the runtime's store."""
    assert runtime.store.files is not None
    return Archiver(runtime.store, runtime.store, runtime.store.files, runtime.service.clock,
                    runtime.settings.archiving(), history=runtime.history)


class Seeder:
    """Sealed events not yet archived, in log order; full segments leave through the
    archiver's own steps as they fill, while the newest events stay for the real run."""

    def __init__(self, runtime: Runtime, pending: list[ArchivedEvent]) -> None:
        self.runtime = runtime
        self.moving = archiver(runtime)
        self.pending = pending
        self.head = ChainHead(pending[-1].seq, pending[-1].hash)
        self.in_redis = pending[-1].seq  # events up to here are in Redis: posted, sealed
        self.segments = 0
        self.history_s = 0.0  # in History.after_archived: the worker's cost, not seeding's

    def add(self, bodies: list[str]) -> None:
        """Seal the next events (core.provenance.chain.seal_events, as the sealer does)."""
        stored = [StoredEvent(self.head.seq + n, body) for n, body in enumerate(bodies, 1)]
        seals = seal_events(self.head, stored)
        self.pending += [ArchivedEvent(seq=event.seq, hash=seal.hash, body=event.body)
                         for event, seal in zip(stored, seals, strict=True)]
        self.head = ChainHead(seals[-1].seq, seals[-1].hash)

    async def archive_while(self, keep: int) -> None:
        """Archive full segments while at least `keep` events would stay after one."""
        size = self.runtime.settings.segment_events
        while len(self.pending) >= size + keep:
            await self.archive(self.pending[:size])
            del self.pending[:size]

    async def archive(self, events: list[ArchivedEvent]) -> None:
        """As the Archiver's `archive` does, step by step: the file (written, fsynced, read
        back), the seals the trim checks (saved as the sealer saves them), the trim, and the
        history's own work on the archived segment (its tallies, kept beside it)."""
        segments = await self.runtime.store.segments(CAMPAIGN)
        prev = segments[-1].last_hash if segments else GENESIS
        segment = Segment(meta_for(CAMPAIGN, events, prev, self.runtime.service.clock.now_ms()),
                          events, held_items(events))
        written = await self.moving.write(segment)
        fresh = [Seal(e.seq, e.hash) for e in events if e.seq > self.in_redis]
        for first in range(0, len(fresh), BATCH):
            await self.runtime.store.save_seals(CAMPAIGN, fresh[first:first + BATCH])
        assert await self.moving.trim(CAMPAIGN, segment, written), f"{written.name} refused"
        started = time.perf_counter()
        await self.runtime.history.after_archived(CAMPAIGN, written)
        self.history_s += time.perf_counter() - started
        self.segments += 1

    async def finish(self) -> None:
        """What a worker would still hold goes into Redis through the store's append script
        (the seq counter first moved past the archived events, which never were in Redis),
        then the real sealer and the worker's own archive pass take over."""
        unstored = [event for event in self.pending if event.seq > self.in_redis]
        if unstored:
            await self.runtime.client.set(k.campaign_key(CAMPAIGN, "seq"), unstored[0].seq - 1)
            await append(self.runtime, [event.body for event in unstored])
        await self.runtime.ledger.seal(CAMPAIGN)
        self.segments += await archive_pass(self.runtime, self.moving, None)


async def posted(runtime: Runtime) -> list[ArchivedEvent]:
    """The events the Coordinator wrote (the campaign, its items), sealed by the sealer."""
    await runtime.ledger.seal(CAMPAIGN)
    events, after = [], 0
    while batch := await runtime.store.read_events(CAMPAIGN, after, BATCH):
        seals = await runtime.store.read_seals(CAMPAIGN, [event.seq for event in batch])
        events += [ArchivedEvent(seq=e.seq, hash=seals[e.seq], body=e.body) for e in batch]
        after = batch[-1].seq
    return events


async def seed(runtime: Runtime, answers: int, experts: int) -> tuple[Judgments, int, float]:
    """The campaign, its history in the archive and its tail in Redis; the judgments made,
    the segments archived and the seconds it took."""
    started = time.perf_counter()
    items = await post(runtime, -(-answers // OVERLAP), experts)
    seeder = Seeder(runtime, await posted(runtime))
    seqs = {e.item: e.seq for e in held_items(seeder.pending)}
    settings, judged, clock = runtime.settings, Judgments(), runtime.service.clock
    assert isinstance(clock, SetClock)
    clock.advance(60)
    bodies = answer_bodies(items, seqs, answers, experts, clock, judged)
    while batch := [body for _, body in zip(range(BATCH * 10), bodies, strict=False)]:
        seeder.add(batch)
        await seeder.archive_while(settings.segment_events + settings.hot_tail_events)
        if len(judged.winners) % 100_000 < BATCH * 10 // 4:
            progress(f"seeded {len(judged.winners):,} answers, {seeder.segments} segments, "
                     f"{time.perf_counter() - started:.0f} s")
    await seeder.archive_while(settings.hot_tail_events)
    await seeder.finish()
    progress(f"History.after_archived took {seeder.history_s:.0f} s of it (the segments "
             "written directly)")
    return judged, seeder.segments, time.perf_counter() - started


# --- the figures -------------------------------------------------------------------------


def segment_paths(settings: Settings, names: list[str]) -> list[str]:
    """The files as the archive lays them out: `<location>/<campaign>/<name>`."""
    root = Path(settings.archive_location()) / CAMPAIGN
    return [str(root / name) for name in names]


async def cli_export(runtime: Runtime, fmt: str, out: Path) -> tuple[int, float]:
    """`expertloop campaign export ID --format FMT -o FILE`, its own function; rows = lines."""
    args = argparse.Namespace(campaign=CAMPAIGN, format=fmt, output=str(out),
                              conversational=False, pairs="all", sft_shape="messages",
                              include_model=False)
    said = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(io.StringIO()):
        await reports.export(runtime, args)
    seconds = time.perf_counter() - started
    progress(f"{fmt}: {said.getvalue().strip()}")  # the export's own summary line
    with out.open("rb") as lines:
        return sum(1 for _ in lines), seconds


TRAIL_SQL = """
WITH ev AS (SELECT seq, hash, type, expert, item, lease, payload FROM read_parquet($files)),
answered AS (SELECT seq, hash, expert, item, lease, payload,
                    CAST(payload->'$.order' AS INTEGER[]) AS shown,
                    CAST(payload->>'$.timing.active_seconds' AS DOUBLE) AS active
             FROM ev WHERE type = 'answered'),
assigned AS (SELECT seq, hash, lease, CAST(payload->>'$.item_seq' AS BIGINT) AS item_seq
             FROM ev WHERE type = 'assigned'),
items AS (SELECT seq, hash, payload->>'$.item.prompt' AS prompt,
                 from_json(payload->'$.item.drafts', '[{{"text": "VARCHAR", "model": "VARCHAR",
                   "model_version": "VARCHAR", "params": "JSON"}}]') AS drafts
          FROM ev WHERE type = 'item_added'),
fast AS (SELECT median(active) * 0.4 AS below FROM answered),
rows AS (SELECT a.*, i.prompt, i.drafts, i.seq AS item_seq, i.hash AS item_hash,
                s.seq AS assigned_seq, s.hash AS assigned_hash, p.hash AS prev,
                CASE a.payload->>'$.decision.choice' WHEN 'A' THEN 0 ELSE 1 END + 1 AS pick
         FROM answered a JOIN assigned s USING (lease) JOIN items i ON i.seq = s.item_seq
         LEFT JOIN ev p ON p.seq = a.seq - 1)
SELECT '{campaign}' AS campaign, 'pairwise' AS kind, item, prompt, expert,
       []::VARCHAR[] AS images, lease, 'answered' AS event, payload->>'$.channel' AS channel,
       [{{'label': 'A', 'index': shown[1], 'text': drafts[shown[1] + 1].text,
          'model': drafts[shown[1] + 1].model,
          'model_version': drafts[shown[1] + 1].model_version,
          'params': drafts[shown[1] + 1].params}},
        {{'label': 'B', 'index': shown[2], 'text': drafts[shown[2] + 1].text,
          'model': drafts[shown[2] + 1].model,
          'model_version': drafts[shown[2] + 1].model_version,
          'params': drafts[shown[2] + 1].params}}] AS drafts,
       shown AS "order", payload->'$.decision' AS decision,
       {{'winner': shown[pick], 'loser': shown[3 - pick]}} AS resolved,
       CAST(payload->>'$.gold' AS BOOLEAN) AS gold, NULL AS gold_correct,
       payload->'$.timing' AS timing, false AS late,
       {{'fast': active < (SELECT below FROM fast), 'flagged': NULL, 'none_acceptable': false,
        'skipped': false}} AS flags,
       {{'answer': {{'seq': seq, 'hash': hash, 'prev': prev}},
        'assigned': {{'seq': assigned_seq, 'hash': assigned_hash}},
        'item': {{'seq': item_seq, 'hash': item_hash}}}} AS events,
       [drafts[shown[1] + 1].model, drafts[shown[2] + 1].model] AS draft_models,
       NULL AS edit_ratio, active AS decided_in_s, 'expert' AS decided_by, NULL AS rationale,
       NULL AS checkpoint
FROM rows ORDER BY seq
"""

PREFERENCE_SQL = """
WITH ev AS (SELECT seq, hash, type, expert, item, lease, payload FROM read_parquet($files)),
answered AS (SELECT seq, hash, expert, item, lease,
                    CAST(payload->'$.order' AS INTEGER[]) AS shown,
                    payload->>'$.decision.choice' AS choice FROM ev WHERE type = 'answered'),
assigned AS (SELECT lease, CAST(payload->>'$.item_seq' AS BIGINT) AS item_seq
             FROM ev WHERE type = 'assigned'),
items AS (SELECT seq, payload->>'$.item.prompt' AS prompt,
                 from_json(payload->'$.item.drafts', '[{{"text": "VARCHAR", "model": "VARCHAR"}}]')
                   AS drafts FROM ev WHERE type = 'item_added'),
picked AS (SELECT a.*, i.prompt, i.drafts,
                  CASE a.choice WHEN 'A' THEN a.shown[1] ELSE a.shown[2] END + 1 AS won,
                  CASE a.choice WHEN 'A' THEN a.shown[2] ELSE a.shown[1] END + 1 AS lost
           FROM answered a JOIN assigned s USING (lease) JOIN items i ON i.seq = s.item_seq)
SELECT prompt, ' ' || drafts[won].text AS chosen, ' ' || drafts[lost].text AS rejected,
       drafts[won].model AS chosen_model, drafts[lost].model AS rejected_model,
       'pairwise' AS source, item, expert, seq AS answer_seq, hash AS answer_hash,
       'expert' AS decided_by, NULL AS rationale
FROM picked ORDER BY seq
"""


def duckdb_copy(sql: str, files: list[str], out: Path) -> tuple[int, float]:
    """The floor for an export: DuckDB writing the same columns as JSON lines, in log order."""
    started = time.perf_counter()
    db = duckdb.connect(config={"autoinstall_known_extensions": False,
                                "autoload_known_extensions": False})
    try:
        db.execute(f"COPY ({sql.format(campaign=CAMPAIGN)}) TO '{out}' (FORMAT JSON)",
                   {"files": files})
    finally:
        db.close()
    seconds = time.perf_counter() - started
    with out.open("rb") as lines:
        return sum(1 for _ in lines), seconds


async def export_figure(runtime: Runtime, fmt: str, sql: str, files: list[str],
                        work: Path) -> Figure:
    rows, seconds = await cli_export(runtime, fmt, work / f"{fmt}.jsonl")
    floor_rows, floor_s = duckdb_copy(sql, files, work / f"{fmt}-duckdb.jsonl")
    ours, floor = rows / seconds, floor_rows / floor_s
    progress(f"{fmt}: {rows:,} rows in {seconds:.1f} s; DuckDB {floor_rows:,} in {floor_s:.1f} s")
    return Figure(f"{fmt} export", ours, "rows/s", ">= 50,000 rows/s", ours >= 50_000,
                  f"DuckDB COPY of the same columns, in log order: {floor:,.0f} rows/s "
                  f"({floor_rows:,} rows: the archive, not the tail); ours {ours / floor:.0%}, "
                  "target >= 50%", ours >= 0.5 * floor)


async def dashboard_figures(runtime: Runtime) -> list[Figure]:
    """The page `/` of the web app, over HTTP: cold (the panel is built while the page
    waits), then again with the log unchanged."""
    app = build_app(runtime)
    app[DASHBOARD].panels.wait_s = 3600.0  # the cold page waits for its panel: that is timed
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    seconds = []
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(2):
                started = time.perf_counter()
                async with http.get(f"http://127.0.0.1:{port}/") as response:
                    page = await response.text()
                    assert response.status == 200, (response.status, page[:300])
                seconds.append(time.perf_counter() - started)
        assert CAMPAIGN in page and MODELS[0] in page, "the page shows no built panel"
    finally:
        await runner.cleanup()
    cold, warm = seconds
    return [Figure("dashboard page, cold", cold, "s", "<= 10 s", cold <= 10),
            Figure("dashboard page, log unchanged", warm, "s", "<= 0.2 s", warm <= 0.2)]


async def quality_figure(runtime: Runtime, judged: Judgments, bare_fits: int) -> Figure:
    """`expertloop campaign quality ID` (200 resamples), against 200 bare fits."""
    args = argparse.Namespace(campaign=CAMPAIGN, json=False, resamples=RESAMPLES)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        await reports.quality(runtime, args)
    ours = time.perf_counter() - started
    bare = await asyncio.to_thread(bare_fits_per_match, judged, bare_fits) * RESAMPLES / bare_fits
    counted = await asyncio.to_thread(bare_fits_on_counts, judged)
    scaled = f", {bare_fits} timed and scaled" if bare_fits != RESAMPLES else ""
    return Figure("quality, 200 bootstrap resamples", ours, "s", "<= 30 s", ours <= 30,
                  f"{RESAMPLES} bare evalica fits, one row per judgment (the call "
                  f"evalica.bootstrap makes per resample): {bare:.1f} s{scaled}; ours "
                  f"{ours / bare:.2f}x, target <= 1.5x", ours <= 1.5 * bare,
                  f"the same {RESAMPLES} fits on the judgments as counts per (x, y, outcome), "
                  f"multinomial weights, as the report now fits them: {counted:.2f} s "
                  f"(ours {ours / counted:.1f}x)")


async def pay_figure(runtime: Runtime) -> Figure:
    """`expertloop campaign pay ID`: no target of its own, but a report a user runs."""
    args = argparse.Namespace(campaign=CAMPAIGN, json=False, csv=None)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        await reports.pay(runtime, args)
    return Figure("pay report", time.perf_counter() - started, "s", "none", None)


def bare_fits_per_match(judged: Judgments, fits: int) -> float:
    """evalica's Bradley-Terry on bootstrap resamples of the judgments, nothing else: the
    call evalica.bootstrap makes per resample (object arrays, the index found once)."""
    xs, ys = np.array(judged.xs, dtype=object), np.array(judged.ys, dtype=object)
    winners = np.array(judged.winners, dtype=np.uint8)
    index = pd.Index(sorted(set(judged.xs) | set(judged.ys)))
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for _ in range(fits):
        pick = rng.integers(0, len(xs), len(xs))
        evalica.bradley_terry(xs=xs[pick], ys=ys[pick], winners=list(winners[pick]), index=index)
    return time.perf_counter() - started


def bare_fits_on_counts(judged: Judgments) -> float:
    """The same judgments as counts per (x, y, outcome), each resample a multinomial draw."""
    counts = Counter(zip(judged.xs, judged.ys, judged.winners, strict=True))
    rows = sorted(counts)
    xs, ys = [x for x, _, _ in rows], [y for _, y, _ in rows]
    winners = [evalica.Winner(w) for _, _, w in rows]
    total = sum(counts.values())
    started = time.perf_counter()
    draws = np.random.default_rng(0).multinomial(
        total, np.array([counts[row] for row in rows]) / total, size=RESAMPLES)
    for drawn in draws:
        evalica.bradley_terry(xs, ys, winners, weights=[float(n) for n in drawn])
    return time.perf_counter() - started


async def verify_figure(runtime: Runtime, files: list[str]) -> Figure:
    started = time.perf_counter()
    verdict = await runtime.ledger.verify(CAMPAIGN)
    seconds = time.perf_counter() - started
    assert verdict.ok, verdict.line()
    bare_events, bare_s = await bare_verify(runtime, files)
    ours, bare = verdict.checked / seconds, bare_events / bare_s
    return Figure("provenance verify", ours, "events/s", ">= 200,000 events/s",
                  ours >= 200_000, f"a bare loop reading, parsing, canonicalising and hashing "
                  f"the same {bare_events:,} events: {bare:,.0f} events/s; ours "
                  f"{ours / bare:.0%}, target >= 50%", ours >= 0.5 * bare)


async def bare_verify(runtime: Runtime, files: list[str]) -> tuple[int, float]:
    """Read every event (files, then the tail from Redis), recompute its hash from the
    previous one, compare: the chain check and nothing else."""
    started = time.perf_counter()
    prev, count = GENESIS, 0
    for path in files:
        table = pq.read_table(path, columns=["seq", "hash", "body"])
        prev, checked = bare_chain(prev, table.column("seq").to_pylist(),
                                   table.column("hash").to_pylist(),
                                   table.column("body").to_pylist())
        count += checked
    after = (await runtime.store.segments(CAMPAIGN))[-1].last_seq
    while tail := await runtime.store.read_events(CAMPAIGN, after, BATCH):
        seals = await runtime.store.read_seals(CAMPAIGN, [event.seq for event in tail])
        prev, checked = bare_chain(prev, [e.seq for e in tail], [seals[e.seq] for e in tail],
                                   [e.body for e in tail])
        count, after = count + checked, tail[-1].seq
    return count, time.perf_counter() - started


def bare_chain(prev: str, seqs: list[int], hashes: list[str], bodies: list[str]
               ) -> tuple[str, int]:
    for seq, stored, body in zip(seqs, hashes, bodies, strict=True):
        fields = json.loads(body)
        fields["seq"], fields["prev"] = seq, prev
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":"),
                                           ensure_ascii=False).encode()).hexdigest()
        assert digest == stored, f"seq {seq} does not hash to its seal"
        prev = digest
    return prev, len(seqs)


# --- memory, on a played campaign --------------------------------------------------------


async def play(runtime: Runtime, answers: int, experts: int) -> int:
    """Experts answer every task through the service (card, delivered, opened, answer); at
    most PLAYING of them at a time, so a process's Redis connections (100) suffice."""
    clock = runtime.service.clock
    assert isinstance(clock, SetClock)
    await post(runtime, -(-answers // OVERLAP), experts)
    gate = asyncio.Semaphore(PLAYING)

    async def answer_all(expert: str, rng: random.Random) -> None:
        task: Card | Idle | None
        async with gate:
            task = await runtime.service.next_task(expert)
        while isinstance(task, Card):
            async with gate:
                await runtime.service.delivered(task.lease, channel="web", message_id="m")
                await runtime.service.opened(task.lease, expert)
                clock.advance(TASK_S / experts)
                outcome = await runtime.service.submit(Answer(
                    expert=expert, lease=task.lease, decision=Choose(choice=rng.choice("AB"))))
            task = outcome.next

    await asyncio.gather(*(answer_all(f"expert-{n:03d}", random.Random(n))
                           for n in range(experts)))
    return (await runtime.coordinator.status(CAMPAIGN)).answers


async def used_memory(runtime: Runtime) -> int:
    await asyncio.sleep(QUIET_S)
    return int((await runtime.client.info("memory"))["used_memory"])


async def log_bytes(runtime: Runtime) -> int:
    """What the campaign's log still holds in Redis: the stream and the seals."""
    total = 0
    for name in ("log", "hashes"):
        total += int(await runtime.client.memory_usage(k.campaign_key(CAMPAIGN, name),
                                                       samples=0) or 0)
    return total


async def largest_keys(runtime: Runtime, count: int = 6) -> list[tuple[str, int]]:
    """Where the memory went (`MEMORY USAGE` of every key), for whoever works on it."""
    sizes = [(str(key), int(await runtime.client.memory_usage(key, samples=0) or 0))
             async for key in runtime.client.scan_iter(count=1000)]
    return sorted(sizes, key=lambda pair: -pair[1])[:count]


async def memory_figures(settings: Settings, answers: int, experts: int, scale: int
                         ) -> list[Figure]:
    """Before and after archiving, on a campaign played through the service. After: what
    grows with the answers (live state, items) per task, plus the log left in Redis, which
    the settings bound (the tail, and less than a segment not yet due), spread over `scale`
    answers (the seeded campaign's size)."""
    async with open_runtime(settings, SetClock(START_MS)) as runtime:
        empty = await used_memory(runtime)
        played = await play(runtime, answers, experts)
        await runtime.ledger.seal(CAMPAIGN)
        before = await used_memory(runtime) - empty
        segments = await archive_pass(runtime, archiver(runtime), None)
        after = await used_memory(runtime) - empty
        kept_log = await log_bytes(runtime)
        tail = await runtime.client.xlen(k.campaign_key(CAMPAIGN, "log"))
        largest = await largest_keys(runtime)
    growing = (after - kept_log) / played
    at_scale = growing + kept_log / scale
    progress(f"memory: {played:,} answers played, {segments} segments archived, {tail:,} "
             "events left in Redis; per task, the largest keys after archiving: "
             + ", ".join(f"{key} {size / played:,.0f} B" for key, size in largest))
    judged = f"{played:,} answers played, {segments} segments archived" + (
        "" if segments else ": nothing archived (too few events for a segment), not judged")
    return [
        Figure("Redis per answered task, before archiving", before / played, "B", "none",
               None, note=f"{played:,} answers played, the log sealed; bench/load.py measured "
               "2.4 KiB before issue 17"),
        Figure(f"Redis per answered task, archived, at {scale:,}", at_scale, "B",
               "<= 1 KiB", at_scale <= 1024 if segments else None,
               note=f"{judged}: {growing:,.0f} B/task grows with the answers (live state, items), "
               f"plus the log left in Redis, {kept_log / 2**20:.1f} MiB for {tail:,} events "
               f"(bounded by the tail and segment settings) over {scale:,} answers; over the "
               f"{played:,} played answers it all comes to {after / played:,.0f} B/task"),
    ]


# --- the run -----------------------------------------------------------------------------


def settings_for(folder: Path, args: argparse.Namespace, redis_url: str | None = None
                 ) -> Settings:
    return Settings(_env_file=None, EXPERTLOOP_DATA_DIR=folder,
                    REDIS_URL=redis_url, EXPERTLOOP_SEGMENT_EVENTS=args.segment_events,
                    EXPERTLOOP_HOT_TAIL_EVENTS=args.hot_tail)


async def measure(args: argparse.Namespace, settings: Settings, work: Path,
                  judged: Judgments) -> list[Figure]:
    """Each figure in a runtime of its own, as each CLI command and the web process open one:
    nothing a report keeps in memory carries over from the seeding or another report."""
    figures: list[Figure] = []
    async with open_runtime(settings) as runtime:
        segments = await runtime.store.segments(CAMPAIGN)
    files = segment_paths(settings, [segment.name for segment in segments])
    for fmt, sql in (("trail", TRAIL_SQL), ("preference", PREFERENCE_SQL)):
        async with open_runtime(settings) as runtime:
            figures.append(await export_figure(runtime, fmt, sql, files, work))
    async with open_runtime(settings) as runtime:
        figures += await dashboard_figures(runtime)
    progress("dashboard measured")
    async with open_runtime(settings) as runtime:
        figures.append(await quality_figure(runtime, judged, args.bare_fits))
    progress("quality measured")
    async with open_runtime(settings) as runtime:
        figures.append(await pay_figure(runtime))
    async with open_runtime(settings) as runtime:
        figures.append(await verify_figure(runtime, files))
    progress("verify measured")
    return figures


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    figures = await memory_figures(settings_for(work / "played", args), args.memory_answers,
                                   args.experts, args.answers)
    server = EmbeddedRedis(work / "redis")
    await server.start()
    try:
        settings = settings_for(work / "seeded", args, server.url())
        async with open_runtime(settings, SetClock(START_MS)) as runtime:
            judged, segments, seed_s = await seed(runtime, args.answers, args.experts)
            events = await runtime.store.last_seq(CAMPAIGN)
            tail = await runtime.client.xlen(k.campaign_key(CAMPAIGN, "log"))
        progress(f"seeded: {events:,} events, {segments} segments, {tail:,} in Redis, "
                 f"{seed_s:.0f} s")
        figures += await measure(args, settings, work, judged)
    finally:
        await server.stop()
    return {"answers": args.answers, "experts": args.experts, "events": events,
            "segments": segments, "segment_events": args.segment_events,
            "hot_tail": args.hot_tail, "tail_in_redis": tail, "seed_s": round(seed_s, 1),
            "memory_answers": args.memory_answers, "figures": [asdict(f) for f in figures]}


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("meets" if ok else "misses")


def report(result: dict[str, Any], seconds: float) -> None:
    print(f"{result['answers']:,} answers by {result['experts']} experts: {result['events']:,} "
          f"events, {result['segments']} segments of <= {result['segment_events']:,}, "
          f"{result['tail_in_redis']:,} events in Redis (tail {result['hot_tail']:,}); seeded "
          f"in {result['seed_s']:.0f} s; memory from {result['memory_answers']:,} played "
          f"answers; whole run {seconds:.0f} s\n")
    print(f"  {'figure':<46} {'value':>10} {'unit':<8}  {'target':<20} verdict")
    for f in result["figures"]:
        value = f"{f['value']:,.0f}" if f["value"] >= 100 else f"{f['value']:.2f}"
        print(f"  {f['name']:<46} {value:>10} {f['unit']:<8}  {f['target']:<20} "
              f"{verdict(f['meets_target'])}")
        if f["baseline"]:
            print(wrapped(f"baseline: {f['baseline']}: {verdict(f['meets_baseline'])}"))
        if f["note"]:
            print(wrapped(f"({f['note']})"))


def wrapped(text: str) -> str:
    return textwrap.fill(text, 100, initial_indent=" " * 6, subsequent_indent=" " * 8)


def with_defaults(args: argparse.Namespace) -> None:
    """Sizes left unset: --quick's, or the full run's (segment and tail from the settings,
    EXPERTLOOP_SEGMENT_EVENTS and EXPERTLOOP_HOT_TAIL_EVENTS, if set)."""
    settings = Settings(_env_file=None)
    full = (1_000_000, 300, 30_000, settings.segment_events, settings.hot_tail_events, 50)
    quick = (20_000, 60, 5_000, 5_000, 1_000, RESAMPLES)
    for name, value in zip(("answers", "experts", "memory_answers", "segment_events",
                            "hot_tail", "bare_fits"), quick if args.quick else full,
                           strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="20,000 answers, 60 experts, 5,000 played, small segments")
    parser.add_argument("--answers", type=int)
    parser.add_argument("--experts", type=int)
    parser.add_argument("--memory-answers", type=int)
    parser.add_argument("--segment-events", type=int)
    parser.add_argument("--hot-tail", type=int)
    parser.add_argument("--bare-fits", type=int,
                        help="bare fits to time for the quality baseline, scaled to 200 (200 "
                             "with --quick, else 50: a fit on 1,000,000 judgments takes ~1 s)")
    parser.add_argument("--json", action="store_true", help="print one machine-readable line")
    args = parser.parse_args()
    with_defaults(args)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="el-bench-history-") as work:
        result = asyncio.run(run(args, Path(work)))
    if args.json:
        print(json.dumps({"bench": "history", **result}))
    else:
        report(result, time.perf_counter() - started)


if __name__ == "__main__":
    main()
