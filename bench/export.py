"""Benchmark: exporting 100,000 answers of a pairwise campaign, against a raw baseline.

Seeds a fresh embedded Redis with a posted campaign (via the Coordinator) and its answers (the
`assigned`/`answered` events as the Lua scripts write them, pipelined), seals the log, then
measures rows/s of our streamed exports (`trail`, `preference`: task records with items fetched
on demand, rows built and written to a file) against writing the same rows straight from Redis
in the same run: XRANGE the log in batches, fetch each answer's item by a pipelined XRANGE, and
write the two raw bodies as one JSON line, with no models and no row logic.

    .venv/bin/python bench/export.py [--answers 100000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from adapters.redis import keys as k
from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from core.domain.campaigns import CampaignSpec
from core.domain.timing import SystemClock
from core.provenance.events import iso_ms
from core.provenance.ledger import Ledger
from core.reports.exports import Export
from core.service.catalog import Catalog
from core.service.coordinator import Coordinator
from core.service.staging import spool_items

CAMPAIGN = "bench-export"
OVERLAP = 3
BATCH = 2000
WORD_LIST = ("the model answer patient dose risk contract clause court tax proof lemma function "
             "error request cache query index user policy claim evidence study trial outcome "
             "effect sample bias gradient token context prompt draft review expert better worse")
WORDS = WORD_LIST.split()
MODELS = (("gpt-4o", "2024-08-06"), ("claude-3-5-sonnet", "20241022"), ("llama-3.1-70b", "v1"))


def text(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS))
    return " ".join(words).capitalize() + "."


def make_item(rng: random.Random, n: int) -> dict[str, Any]:
    drafts = [{"text": text(rng, 300), "model": m, "model_version": v,
               "params": {"temperature": 0.7}} for m, v in rng.sample(MODELS, 2)]
    return {"id": f"item-{n:07d}", "prompt": text(rng, 150), "drafts": drafts}


async def seed(client: aioredis.Redis, answers: int) -> None:
    """Post the items through the core, then append the answer events the scripts would."""
    rng = random.Random(7)
    n_items = -(-answers // OVERLAP)
    spec = CampaignSpec(id=CAMPAIGN, title="Better answer?", kind="pairwise", overlap=OVERLAP)
    spool = spool_items(spec, [make_item(rng, n) for n in range(n_items)])
    try:
        await Coordinator(RedisStore(client).roles(), SystemClock()).post_campaign(spec, spool)
    finally:
        spool.close()
    item_seqs = {item: int(info.split(",")[0]) for item, info in
                 (await client.hgetall(k.campaign_key(CAMPAIGN, "items"))).items()}
    seq = int(await client.get(k.campaign_key(CAMPAIGN, "seq")))
    now = 1_795_000_000_000
    async with client.pipeline(transaction=False) as pipe:
        for number in range(answers):
            rnd, n = divmod(number, n_items)  # each round revisits every item: a cold cache
            item, expert, token = f"item-{n:07d}", f"expert-{(n + rnd) % 20}", f"b.{number}"
            for body in answer_events(item, item_seqs[item], expert, token, now, rng):
                seq += 1
                pipe.xadd(k.campaign_key(CAMPAIGN, "log"), {"e": body}, id=f"0-{seq}")
            now += 100
            if len(pipe) >= BATCH:
                await pipe.execute()
        pipe.set(k.campaign_key(CAMPAIGN, "seq"), seq)
        await pipe.execute()


def answer_events(item: str, item_seq: int, expert: str, token: str, now: int,
                  rng: random.Random) -> list[str]:
    order = rng.sample([0, 1], 2)
    head = {"at": iso_ms(now), "campaign": CAMPAIGN, "expert": expert, "lease": token,
            "item": item}
    assigned = {"actor": "system", "type": "assigned", **head, "payload": {
        "expires_at": now + 600_000, "gold": False, "item_seq": item_seq, "order": order}}
    answered = {"actor": "expert", "actor_id": expert, "type": "answered", **head, "payload": {
        "channel": "web", "decision": {"type": "pairwise", "choice": rng.choice("AAB")},
        "platform_event": None, "gold": False, "order": order,
        "timing": {"active_seconds": round(rng.uniform(20, 90), 3), "answered_at": now + 45_000,
                   "assigned_at": now, "delivered_at": now + 200, "opened_at": now + 900}}}
    return [json.dumps(assigned, separators=(",", ":")),
            json.dumps(answered, separators=(",", ":"))]


async def ours(store: RedisStore, ledger: Ledger, fmt: str, out_path: Path
               ) -> tuple[float, int]:
    campaign = await Catalog(store).campaign(CAMPAIGN)
    run = Export(ledger, campaign, fmt)
    start = time.perf_counter()
    with out_path.open("w", encoding="utf-8") as out:
        async for line in run.lines():
            out.write(line)
    return time.perf_counter() - start, run.summary.rows


async def raw(client: aioredis.Redis, out_path: Path) -> tuple[float, int]:
    """The floor: read the stream, fetch each answer's item, write both bodies as one line."""
    log, rows, after = k.campaign_key(CAMPAIGN, "log"), 0, 0
    leases: dict[str, int] = {}
    start = time.perf_counter()
    with out_path.open("w", encoding="utf-8") as out:
        while entries := await client.xrange(log, min=f"0-{after + 1}", max="+", count=BATCH):
            after = int(entries[-1][0].split("-")[1])
            answered = []
            for _, fields in entries:
                event = json.loads(fields["e"])
                if event["type"] == "assigned":
                    leases[event["lease"]] = event["payload"]["item_seq"]
                elif event["type"] == "answered":
                    answered.append((fields["e"], leases.pop(event["lease"])))
            async with client.pipeline(transaction=False) as pipe:
                for _, item_seq in answered:
                    pipe.xrange(log, min=f"0-{item_seq}", max=f"0-{item_seq}")
                items = await pipe.execute()
            for (body, _), item in zip(answered, items, strict=True):
                out.write(f'{{"answer":{body},"item":{item[0][1]["e"]}}}\n')
                rows += 1
    return time.perf_counter() - start, rows


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(answers: int, work: Path) -> dict[str, Any]:
    server = EmbeddedRedis(work / "redis")
    await server.start()
    client = aioredis.from_url(server.url(), decode_responses=True)
    try:
        start = time.perf_counter()
        await seed(client, answers)
        seeded = time.perf_counter() - start
        store = RedisStore(client)
        ledger = Ledger(store)
        start = time.perf_counter()
        await ledger.seal(CAMPAIGN)
        sealed = time.perf_counter() - start
        rss_before = peak_rss_mb()
        result: dict[str, Any] = {"answers": answers, "seed_s": round(seeded, 1),
                                  "seal_s": round(sealed, 1)}
        for fmt in ("trail", "preference"):
            seconds, rows = await ours(store, ledger, fmt, work / f"{fmt}.jsonl")
            result[fmt] = {"rows": rows, "s": round(seconds, 2),
                           "rows_per_s": round(rows / seconds),
                           "mb": round((work / f"{fmt}.jsonl").stat().st_size / 1e6, 1)}
        result["peak_rss_growth_mb"] = round(peak_rss_mb() - rss_before, 1)
        seconds, rows = await raw(client, work / "raw.jsonl")
        result["raw"] = {"rows": rows, "s": round(seconds, 2), "rows_per_s": round(rows / seconds)}
    finally:
        await client.aclose()
        await server.stop()
    return result


def report(r: dict[str, Any]) -> None:
    raw_rate = r["raw"]["rows_per_s"]
    print(f"answers: {r['answers']:,} (seeded in {r['seed_s']} s, sealed in {r['seal_s']} s)")
    for fmt in ("trail", "preference"):
        x = r[fmt]
        print(f"ours {fmt:<10}: {x['rows']:,} rows in {x['s']} s, {x['rows_per_s']:,} rows/s "
              f"({x['rows_per_s'] / raw_rate:.0%} of raw), {x['mb']} MB")
    print(f"raw  XRANGE + item fetch + write: {r['raw']['rows']:,} rows in {r['raw']['s']} s, "
          f"{raw_rate:,} rows/s")
    print(f"peak RSS growth during our exports: {r['peak_rss_growth_mb']} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print one machine-readable line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="el-bench-export-") as work:
        result = asyncio.run(run(args.answers, Path(work)))
    print(json.dumps({"bench": "export", **result}) if args.json else "", end="")
    if not args.json:
        report(result)


if __name__ == "__main__":
    main()
