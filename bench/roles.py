"""What the ingest benchmarks share: the script run again in another role (the worker, the
platform's side) as a child process spoken to in JSON lines, a server on a free port, and a
fresh embedded Redis for each run."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis
from aiohttp import web

from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from core.service.inbox import InboxDrain

T = TypeVar("T")


class Child:
    """A benchmark script in another role, spoken to in JSON lines over stdin and stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, script: str, *args: str) -> Child:
        return cls(await asyncio.create_subprocess_exec(
            sys.executable, script, *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE))

    async def ask(self, **line: object) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(line).encode() + b"\n")
        await self.process.stdin.drain()
        return await self.hear()

    async def hear(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        said = await self.process.stdout.readline()
        assert said, f"a child process ({self.process.pid}) ended early"
        return dict(json.loads(said))

    async def end(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


async def take_turns(driver: Child, worker: Child, urls: dict[str, str], experts: int,
                     rounds: int) -> dict[str, float]:
    """Each round, the driver posts one press per expert to the bare server, then to ours
    (taking turns, so a busy spell of the machine hits both), with the worker paused; then
    the worker handles ours until every expert has their next card. The figures: presses
    accepted per second of posting, CPU of this process per press, answers handled per
    second, and end to end."""
    posting = {"bare": 0.0, "ours": 0.0}
    cpu = dict(posting)
    handling = 0.0
    for _ in range(rounds):
        for name in ("bare", "ours"):
            started = time.process_time()
            posting[name] += (await driver.ask(do="post", url=urls[name]))["s"]
            cpu[name] += time.process_time() - started
        await worker.ask(do="go")
        handling += (await driver.ask(do="cards"))["s"]
        await worker.ask(do="pause")
    answers = experts * rounds
    ours_rate, bare_rate = answers / posting["ours"], answers / posting["bare"]
    return {"experts": experts, "rounds": rounds, "answers": answers,
            "ours_accepted_per_s": ours_rate, "bare_per_s": bare_rate,
            "ratio": ours_rate / bare_rate, "handled_per_s": answers / handling,
            "end_to_end_per_s": answers / (posting["ours"] + handling),
            "ours_cpu_ms": 1000 * cpu["ours"] / answers,
            "bare_cpu_ms": 1000 * cpu["bare"] / answers}


def emit(**line: object) -> None:
    """A child's answer to its parent: one JSON line."""
    print(json.dumps(line), flush=True)


async def drain_on_orders(drain: InboxDrain) -> None:
    """The worker role: handle kept requests between the orders "go" and "pause" on stdin
    (paused, it leaves the machine's cores to the web process under test); on "quit", say how
    much CPU time the role took."""
    started = time.process_time()
    handling: tuple[asyncio.Event, asyncio.Task[None]] | None = None
    while (line := await asyncio.to_thread(sys.stdin.readline)):
        order = json.loads(line)["do"]
        if order == "go" and handling is None:
            stop = asyncio.Event()
            handling = stop, asyncio.create_task(drain.run_until(stop))
        elif order in ("pause", "quit") and handling is not None:
            handling[0].set()
            await handling[1]
            handling = None
        if order == "quit":
            break
        emit(ok=True)
    emit(cpu_s=time.process_time() - started)


@asynccontextmanager
async def serving(apps: dict[str, web.Application], path: str) -> AsyncIterator[dict[str, str]]:
    """Each app on a free port of 127.0.0.1, for as long as the block runs; the URL of `path`
    on each, by the same name."""
    runners: list[web.AppRunner] = []
    urls: dict[str, str] = {}
    try:
        for name, app in apps.items():
            runner = web.AppRunner(app, access_log=None)
            runners.append(runner)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            urls[name] = f"http://127.0.0.1:{port}{path}"
        yield urls
    finally:
        for runner in runners:
            await runner.cleanup()


async def on_fresh_redis(measure: Callable[[RedisStore, str], Awaitable[T]]) -> T:
    """`measure(store, redis_url)` on an embedded Redis of its own, stopped afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = EmbeddedRedis(Path(tmp))
        await redis_server.start()
        client = aioredis.from_url(redis_server.url(), decode_responses=True)
        try:
            return await measure(RedisStore(client), redis_server.url())
        finally:
            await client.aclose()
            await redis_server.stop()
