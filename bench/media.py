"""Benchmark: images (issue 19), in halves run one after the other.

Serving half (`serving_half`): GET /media/<sha256>?sig=&exp= on the real web chat app (signature,
expiry, the media store on disk, the type from the bytes), against a bare aiohttp handler that
returns the same file with `web.FileResponse` (sendfile), in the same run. A driver process (this
script with --drive) sends the requests over C keep-alive connections, so the client's work is
not counted against the server; the servers run in this process, each round bare then ours (so a
busy spell of the machine hits both). The image is a 200 KB PNG, as in the import half. Printed:
requests/s of each, the ratio (target: ours >= 50% of bare), p50/p99 latency, and CPU of this
process per request. Every response is checked: status 200 and the bytes' SHA-256.

    .venv/bin/python bench/media.py [--half serve] [--requests 1000] [--connections 20]
        [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image

if __package__ in (None, ""):  # run as a script: the shared bench helpers live beside it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.media.store import DirectoryMedia  # noqa: E402
from adapters.redis.store import RedisStore  # noqa: E402
from adapters.web.media import MediaLinks  # noqa: E402
from adapters.web.routes import add_chat_routes  # noqa: E402
from bench.roles import Child, emit, on_fresh_redis, serving  # noqa: E402
from core.domain.timing import SystemClock  # noqa: E402
from core.service.service import Service  # noqa: E402

IMAGE_BYTES = 200_000


def png_of_about(size: int, seed: int = 7) -> bytes:
    """A PNG of about `size` bytes: noise does not compress, so pixels ~ bytes / 3."""
    side = int((size / 3) ** 0.5)
    noise = hashlib.shake_256(seed.to_bytes(4, "big")).digest(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), noise).save(out, format="PNG")
    return out.getvalue()


# Serving half

async def serving_half(requests: int, connections: int, rounds: int) -> dict[str, float]:
    return await on_fresh_redis(
        lambda store, _url: _serve_measure(store, requests, connections, rounds))


async def _serve_measure(store: RedisStore, requests: int, connections: int,
                         rounds: int) -> dict[str, float]:
    image = png_of_about(IMAGE_BYTES)
    with tempfile.TemporaryDirectory(prefix="el-bench-media-") as work:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=("serve",), action="append",
                        help="which half to run (default: every half)")
    parser.add_argument("--requests", type=int, default=1000, help="serving: GETs per round")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        asyncio.run(drive())
        return
    results: dict[str, dict[str, Any]] = {}
    if args.half is None or "serve" in args.half:
        results["serve"] = asyncio.run(serving_half(args.requests, args.connections,
                                                    args.rounds))
        if not args.json:
            report_serving(results["serve"])
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
