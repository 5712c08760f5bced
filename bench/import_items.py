"""Benchmark: importing a JSON-lines file of pairwise items into a fresh embedded Redis.

Measures our import path end to end (`read_campaign` + `Coordinator.post_campaign`) against a
raw baseline in the same run: the same lines written with pipelined `HSET key id line` (batches
of 1000) through redis.asyncio on the same server. Target: ours >= 50% of the raw rate.

    .venv/bin/python bench/import_items.py [--items 100000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import redis.asyncio as aioredis

from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from core.domain.timing import SystemClock
from core.service.campaign_files import read_campaign
from core.service.coordinator import Coordinator

TARGET_RATIO = 0.5
BATCH = 1000
WORD_LIST = ("the model answer patient dose risk contract clause court tax income loss proof lemma "
         "theorem function error request server latency cache query index table column user "
         "policy claim evidence study trial outcome effect sample bias variance gradient loss "
         "token context window prompt reply draft review expert judge better worse because "
         "however therefore although clearly likely unlikely section page figure value")
WORDS = WORD_LIST.split()
MODELS = (("gpt-4o", "2024-08-06"), ("claude-3-5-sonnet", "20241022"), ("llama-3.1-70b", "v1"),
          ("mistral-large", "2407"))
CAMPAIGN_YAML = """\
id: bench-import
title: Which answer is better?
instructions: Pick the draft that is more accurate and more helpful.
kind: pairwise
overlap: 3
"""


@dataclass
class Result:
    items: int
    bytes: int
    ours_s: float
    ours_items_per_s: float
    raw_s: float
    raw_items_per_s: float
    ratio: float
    target: float
    peak_rss_mb_after_ours: float
    peak_rss_mb: float
    forks_ours: int
    forks_raw: int


def text(rng: random.Random, chars: int) -> str:
    """Word salad of about `chars` characters, ending with a full stop."""
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words).capitalize()[: chars - 1] + "."


def make_item(rng: random.Random, number: int) -> dict[str, object]:
    def draft() -> dict[str, object]:
        model, version = rng.choice(MODELS)
        params = {"temperature": round(rng.uniform(0, 1.2), 2), "top_p": 0.95,
                  "max_tokens": 1024}
        return {"text": text(rng, 300), "model": model, "model_version": version,
                "params": params}

    return {"id": item_id(number), "prompt": text(rng, 150), "drafts": [draft(), draft()],
            "meta": {"source": "bench", "batch": number // BATCH}}


def item_id(number: int) -> str:
    return f"item-{number:07d}"


def write_items(path: Path, count: int, seed: int = 7) -> int:
    """Write `count` items as JSON lines; returns the file size in bytes."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for number in range(count):
            out.write(json.dumps(make_item(rng, number)) + "\n")
    return path.stat().st_size


async def ours(url: str, campaign_file: Path, items_path: Path) -> tuple[float, int]:
    """read_campaign + post_campaign, timed from opening the file to the campaign being open."""
    client = aioredis.from_url(url, decode_responses=True)
    try:
        coordinator = Coordinator(RedisStore(client).roles(), SystemClock())
        start = time.perf_counter()
        spec, spool = read_campaign(campaign_file, items_path)
        try:
            await coordinator.post_campaign(spec, spool)
        finally:
            spool.close()
        elapsed = time.perf_counter() - start
        stored = int(await client.hget("el:{bench-import}:counts", "items") or 0)
    finally:
        await client.aclose()
    return elapsed, stored


async def raw(url: str, items_path: Path) -> tuple[float, int]:
    """The same lines as `HSET key id line`, pipelined in batches, read from the same file."""
    client = aioredis.from_url(url, decode_responses=True)
    try:
        start = time.perf_counter()
        async with client.pipeline(transaction=False) as pipe:
            with items_path.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines):
                    pipe.hset("raw:items", item_id(number), line)
                    if len(pipe) >= BATCH:
                        await pipe.execute()
            await pipe.execute()
        elapsed = time.perf_counter() - start
        stored = int(await client.hlen("raw:items"))
    finally:
        await client.aclose()
    return elapsed, stored


async def forks(url: str) -> int:
    """Background saves the server forked so far (AOF rewrites compete for the 2 cores)."""
    client = aioredis.from_url(url)
    try:
        return int((await client.info("stats"))["total_forks"])
    finally:
        await client.aclose()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


async def run(count: int, work: Path) -> Result:
    items_path, campaign_file = work / "items.jsonl", work / "campaign.yaml"
    size = write_items(items_path, count)
    campaign_file.write_text(CAMPAIGN_YAML)
    server = EmbeddedRedis(work / "redis")
    await server.start()
    try:
        url = server.url()
        ours_s, ours_n = await ours(url, campaign_file, items_path)
        rss_ours, forks_ours = peak_rss_mb(), await forks(url)
        raw_s, raw_n = await raw(url, items_path)
        forks_raw = await forks(url) - forks_ours
    finally:
        await server.stop()
    if ours_n != count or raw_n != count:
        raise RuntimeError(f"stored {ours_n} (ours) and {raw_n} (raw) of {count} items")
    ours_rate, raw_rate = count / ours_s, count / raw_s
    return Result(count, size, round(ours_s, 3), round(ours_rate), round(raw_s, 3),
                  round(raw_rate), round(ours_rate / raw_rate, 3), TARGET_RATIO,
                  round(rss_ours, 1), round(peak_rss_mb(), 1), forks_ours, forks_raw)


def report(result: Result) -> None:
    verdict = "meets" if result.ratio >= result.target else "MISSES"
    print(f"items: {result.items:,} ({result.bytes / 1e6:.1f} MB of JSON lines)")
    print(f"ours  read_campaign+post_campaign: {result.ours_s:.2f} s, "
          f"{result.ours_items_per_s:,.0f} items/s")
    print(f"raw   pipelined HSET x{BATCH}:          {result.raw_s:.2f} s, "
          f"{result.raw_items_per_s:,.0f} items/s")
    print(f"server forks (AOF rewrites) during: ours {result.forks_ours}, raw {result.forks_raw}")
    print(f"ratio ours/raw: {result.ratio:.1%} ({verdict} target {result.target:.0%})")
    print(f"peak RSS: {result.peak_rss_mb_after_ours:.1f} MB after ours, "
          f"{result.peak_rss_mb:.1f} MB for the whole run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=(
        "Measures items/s of read_campaign + Coordinator.post_campaign on a fresh embedded "
        "Redis, and of a raw pipelined HSET of the same JSON lines (batches of 1000) on the "
        f"same server; prints both, the ratio (target >= {TARGET_RATIO:.0%}) and peak RSS."))
    parser.add_argument("--items", type=int, default=100_000, help="items to import (100000)")
    parser.add_argument("--json", action="store_true", help="print one machine-readable line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="el-bench-import-") as work:
        result = asyncio.run(run(args.items, Path(work)))
    if args.json:
        print(json.dumps({"bench": "import_items", **asdict(result)}))
    else:
        report(result)


if __name__ == "__main__":
    main()
