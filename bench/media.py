"""Benchmark: images. Two halves, one function each, run in one process:

- `import_half`: post a campaign of N items (default 2,000), each with its own ~200 KB PNG,
  through `read_campaign` + `Coordinator.post_campaign` (read, Pillow check, SHA-256, media
  store, Redis), against a bare loop over the same files that copies each one, hashes it and
  runs Pillow's `Image.open(...).verify()`. Target: at least 50% of the bare loop's rate.
- `serve_half`: GET /media/<sha256>?sig=&exp= on the real web chat app (signature, expiry, the
  media store on disk, the type from the bytes), against a bare aiohttp handler returning the
  same file with `web.FileResponse` (sendfile), in the same run. A driver process (this script
  with --drive) sends the requests over C keep-alive connections, so the client's work is not
  counted against the server; the servers run in this process, each round bare then ours (so a
  busy spell of the machine hits both). The image is one of the import half's ~200 KB PNGs.
  Printed: requests/s of each, the ratio (target: ours >= 50% of bare), p50/p99 latency, and CPU
  of this process per request. Every response is checked: status 200 and the bytes' SHA-256.

    .venv/bin/python bench/media.py [--half import|serve] [--items 2000] [--requests 1000]
        [--connections 20] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.media.checker import PillowChecker  # noqa: E402
from adapters.media.fetch import GuardedFetcher  # noqa: E402
from adapters.media.store import DirectoryMedia  # noqa: E402
from adapters.redis.embedded import EmbeddedRedis  # noqa: E402
from adapters.redis.store import RedisStore  # noqa: E402
from adapters.web.media import MediaLinks  # noqa: E402
from adapters.web.routes import add_chat_routes  # noqa: E402
from bench.roles import Child, emit, on_fresh_redis, serving  # noqa: E402
from core.domain.timing import SystemClock  # noqa: E402
from core.service.campaign_files import read_campaign  # noqa: E402
from core.service.coordinator import Coordinator  # noqa: E402
from core.service.images import ImageImport  # noqa: E402
from core.service.service import Service  # noqa: E402

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


# The serving half

async def serve_half(requests: int, connections: int, rounds: int) -> dict[str, float]:
    return await on_fresh_redis(
        lambda store, _url: _serve_measure(store, requests, connections, rounds))


async def _serve_measure(store: RedisStore, requests: int, connections: int,
                         rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="el-bench-media-") as work:
        make_pngs(Path(work) / "scans", 1)  # the import half's kind of file
        image = (Path(work) / "scans" / "scan-0.png").read_bytes()
        media = DirectoryMedia(Path(work) / "media")
        sha = media.put(image)
        service = Service(store.roles(), SystemClock())
        ours = web.Application()
        add_chat_routes(ours, service, store, media)
        bare = web.Application()
        bare.router.add_get("/file", _file_handler(media.path(sha)))
        link = MediaLinks(await store.shared_secret()).url(sha, service.clock.now_ms() + 3600_000)
        driver = await Child.start(__file__, "--drive")
        try:
            async with serving({"ours": ours, "bare": bare}, "") as bases:
                urls = {"ours": bases["ours"] + link, "bare": bases["bare"] + "/file"}
                figures = await _take_turns(driver, urls, sha, requests, connections, rounds)
        finally:
            await driver.end()
    return {"image_bytes": len(image), "requests": requests * rounds,
            "connections": connections, **figures}


def _file_handler(path: Path) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def bare_file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={"Content-Type": "image/png"})
    return bare_file


async def _take_turns(driver: Child, urls: dict[str, str], sha: str, requests: int,
                      connections: int, rounds: int) -> dict[str, float]:
    seconds = {"bare": 0.0, "ours": 0.0}
    cpu = dict(seconds)
    latencies: dict[str, list[float]] = {"bare": [], "ours": []}
    for url in urls.values():  # warm both: connections, the page cache, the secret
        await driver.ask(do="get", url=url, sha=sha, n=connections * 5, c=connections)
    for _ in range(rounds):
        for name in ("bare", "ours"):
            started = time.process_time()
            said = await driver.ask(do="get", url=urls[name], sha=sha, n=requests, c=connections)
            cpu[name] += time.process_time() - started
            seconds[name] += said["s"]
            latencies[name] += said["latencies_ms"]
    total = requests * rounds
    figures: dict[str, float] = {}
    for name in ("ours", "bare"):
        ordered = sorted(latencies[name])
        figures |= {f"{name}_per_s": total / seconds[name],
                    f"{name}_p50_ms": statistics.median(ordered),
                    f"{name}_p99_ms": ordered[int(0.99 * (len(ordered) - 1))],
                    f"{name}_cpu_ms": 1000 * cpu[name] / total}
    figures["ratio"] = figures["ours_per_s"] / figures["bare_per_s"]
    return figures


# the driver (a separate process: the experts' browsers)

async def drive() -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        while (line := await asyncio.to_thread(sys.stdin.readline)):
            order = json.loads(line)
            seconds, latencies = await _get_many(session, order["url"], order["sha"],
                                                 order["n"], order["c"])
            emit(s=seconds, latencies_ms=latencies)


async def _get_many(session: aiohttp.ClientSession, url: str, sha: str, n: int,
                    c: int) -> tuple[float, list[float]]:
    """`n` GETs of `url` over `c` connections at once; each must bring the image's bytes."""
    left = iter(range(n))
    latencies: list[float] = []

    async def one_connection() -> None:
        for _ in left:
            started = time.perf_counter()
            async with session.get(url) as response:
                body = await response.read()
            latencies.append(1000 * (time.perf_counter() - started))
            if response.status != 200 or hashlib.sha256(body).hexdigest() != sha:
                raise SystemExit(f"bad response from {url}: {response.status}")

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(c)))
    return time.perf_counter() - started, latencies


# what is printed

def report_serving(figures: dict[str, Any]) -> None:
    print(f"serving: {figures['requests']} signed GETs of a {figures['image_bytes'] // 1000} KB "
          f"PNG over {figures['connections']} connections")
    for name, label in (("ours", "/media (signed)"), ("bare", "bare FileResponse")):
        print(f"  {label:18} {figures[f'{name}_per_s']:8.0f} req/s   "
              f"p50 {figures[f'{name}_p50_ms']:6.2f} ms   p99 {figures[f'{name}_p99_ms']:6.2f} ms"
              f"   cpu {figures[f'{name}_cpu_ms']:.3f} ms/req")
    verdict = "meets" if figures["ratio"] >= 0.5 else "misses"
    print(f"  ratio {figures['ratio']:.1%} of bare (target >= 50%: {verdict})")


def report_import(result: ImportResult) -> None:
    print(f"import {result.items} items, one PNG each (mean {result.mean_png_bytes} bytes)")
    print(f"  ours (read_campaign + post_campaign): {result.ours_s:.2f} s, "
          f"{result.ours_per_s:.0f} items/s")
    print(f"  bare (copy + sha256 + verify):        {result.bare_s:.2f} s, "
          f"{result.bare_per_s:.0f} items/s")
    print(f"  ratio: {result.ratio:.0%} of bare (target >= 50%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=("import", "serve"), action="append",
                        help="which half to run (default: both)")
    parser.add_argument("--items", type=int, default=2000, help="import: items")
    parser.add_argument("--requests", type=int, default=1000, help="serve: GETs per round")
    parser.add_argument("--connections", type=int, default=20, help="serve")
    parser.add_argument("--rounds", type=int, default=3, help="serve")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        asyncio.run(drive())
        return
    halves = args.half or ["import", "serve"]
    results: dict[str, dict[str, Any]] = {}
    if "import" in halves:
        with tempfile.TemporaryDirectory(prefix="bench-media-") as work:
            result = asyncio.run(import_half(args.items, Path(work)))
        results["import"] = asdict(result)
        if not args.json:
            report_import(result)
    if "serve" in halves:
        results["serve"] = asyncio.run(serve_half(args.requests, args.connections, args.rounds))
        if not args.json:
            report_serving(results["serve"])
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
