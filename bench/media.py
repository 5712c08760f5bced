"""Benchmark: images. Two halves, one function each, run in one process:

- `import_half`: post a campaign of N items (default 2,000), each with its own ~200 KB PNG,
  through `read_campaign` + `Coordinator.post_campaign` (read, Pillow check, SHA-256, media
  store, Redis), against a bare loop over the same files that copies each one, hashes it and
  runs Pillow's `Image.open(...).verify()`. Target: at least 50% of the bare loop's rate.
- `serve_half`: signed image requests against a bare aiohttp file handler (added with the web
  chat's media route).

    .venv/bin/python bench/media.py [--items 2000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import redis.asyncio as aioredis
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.media.checker import PillowChecker  # noqa: E402
from adapters.media.fetch import GuardedFetcher  # noqa: E402
from adapters.media.store import DirectoryMedia  # noqa: E402
from adapters.redis.embedded import EmbeddedRedis  # noqa: E402
from adapters.redis.store import RedisStore  # noqa: E402
from core.domain.timing import SystemClock  # noqa: E402
from core.service.campaign_files import read_campaign  # noqa: E402
from core.service.coordinator import Coordinator  # noqa: E402
from core.service.images import ImageImport  # noqa: E402

SIDE = 260  # 260 x 260 RGB noise: a PNG of about 200 KB (noise does not compress)


@dataclass
class ImportResult:
    items: int
    mean_png_bytes: int
    ours_s: float
    bare_s: float
    ours_per_s: float
    bare_per_s: float
    ratio: float


def make_pngs(folder: Path, count: int) -> int:
    """`count` distinct PNGs (the first rows differ), so every one is stored; total bytes."""
    folder.mkdir(parents=True)
    rng = random.Random(7)
    noise = bytearray(rng.randbytes(SIDE * SIDE * 3))
    total = 0
    for number in range(count):
        noise[:8] = number.to_bytes(8, "big")
        path = folder / f"scan-{number}.png"
        Image.frombytes("RGB", (SIDE, SIDE), bytes(noise)).save(path, "PNG", compress_level=1)
        total += path.stat().st_size
    return total


def write_campaign(work: Path, count: int) -> Path:
    head = {"id": "bench-media", "title": "Fracture?", "instructions": "Look.",
            "kind": "verify", "overlap": 1}
    (work / "campaign.json").write_text(json.dumps(head), encoding="utf-8")
    with (work / "items.jsonl").open("w", encoding="utf-8") as out:
        for number in range(count):
            out.write(json.dumps({"id": f"xr-{number}", "prompt": "Is there a fracture?",
                                  "images": [f"scans/scan-{number}.png"],
                                  "drafts": [{"text": "None seen.", "model": "m"}]}) + "\n")
    return work / "campaign.json"


async def ours(url: str, campaign: Path, media: Path) -> float:
    client = aioredis.from_url(url, decode_responses=True)
    try:
        images = ImageImport(DirectoryMedia(media), PillowChecker(), GuardedFetcher(), 20 << 20)
        coordinator = Coordinator(RedisStore(client).roles(), SystemClock(), images=images)
        start = time.perf_counter()
        spec, spool = read_campaign(campaign, campaign.parent / "items.jsonl")
        try:
            await coordinator.post_campaign(spec, spool)
        finally:
            spool.close()
        return time.perf_counter() - start
    finally:
        await client.aclose()


def bare(scans: Path, target: Path, count: int) -> float:
    """Copy, hash, verify: the least any import of these files must do."""
    target.mkdir(parents=True)
    start = time.perf_counter()
    for number in range(count):
        source = scans / f"scan-{number}.png"
        copy = target / source.name
        shutil.copyfile(source, copy)
        hashlib.sha256(copy.read_bytes()).hexdigest()
        with Image.open(copy) as image:
            image.verify()
    return time.perf_counter() - start


async def import_half(count: int, work: Path) -> ImportResult:
    total = make_pngs(work / "scans", count)
    campaign = write_campaign(work, count)
    server = EmbeddedRedis(work / "redis")
    await server.start()
    try:
        bare_s = bare(work / "scans", work / "bare", count)
        ours_s = await ours(server.url(), campaign, work / "media")
    finally:
        await server.stop()
    stored = sum(1 for _ in (work / "media").rglob("*") if _.is_file())
    assert stored == count, f"{stored} images in the media store, expected {count}"
    return ImportResult(count, total // count, round(ours_s, 3), round(bare_s, 3),
                        round(count / ours_s, 1), round(count / bare_s, 1),
                        round(bare_s / ours_s, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-media-") as work:
        result = asyncio.run(import_half(args.items, Path(work)))
    if args.json:
        print(json.dumps({"import": asdict(result)}))
        return
    print(f"import {result.items} items, one PNG each (mean {result.mean_png_bytes} bytes)")
    print(f"  ours (read_campaign + post_campaign): {result.ours_s:.2f} s, "
          f"{result.ours_per_s:.0f} items/s")
    print(f"  bare (copy + sha256 + verify):        {result.bare_s:.2f} s, "
          f"{result.bare_per_s:.0f} items/s")
    print(f"  ratio: {result.ratio:.0%} of bare (target >= 50%)")


if __name__ == "__main__":
    main()
