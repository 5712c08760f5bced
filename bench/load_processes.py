"""The processes bench/load.py starts: a redis-server, our web process (the app of
`expertloop serve` with the Telegram webhook), the workers that handle what the webhook kept
(the Telegram delivery loop of `expertloop worker`, flood limits lifted), and the bare baseline.
Run as a script, it is one of them:

    python bench/load_processes.py app|bare PORT [PROFILE_FILE]
    python bench/load_processes.py worker [PROFILE_FILE]
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import hmac
import os
import signal
import subprocess
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(ROOT))

from adapters.redis.embedded import server_binary  # noqa: E402
from adapters.telegram.app import TelegramBot, TelegramSettings, build_telegram  # noqa: E402
from adapters.telegram.delivery import TelegramDelivery  # noqa: E402
from adapters.telegram.limits import Limits  # noqa: E402
from adapters.telegram.webhook import SECRET_HEADER, add_telegram_webhook  # noqa: E402
from bots.runtime import Runtime, open_runtime, stop_on_signals  # noqa: E402
from bots.settings import Settings  # noqa: E402
from bots.web import build_app  # noqa: E402
from bots.worker import tick  # noqa: E402
from core.service.delivery import DeliveryLoop  # noqa: E402
from tests.cluster import free_ports  # noqa: E402

TOKEN, SECRET = "123:BENCH", "bench-load-secret"
NO_FLOOD = Limits(per_second=1e9, per_chat_per_second=1e9, chat_burst=10**9)


def open_telegram(runtime: Runtime) -> TelegramBot:
    """The Telegram channel as `expertloop serve` and `worker` build it, flood limits lifted
    (the emulator takes any rate)."""
    return build_telegram(TelegramSettings(
        token=TOKEN, api_url=os.environ["BENCH_TELEGRAM_API"], webhook_secret=SECRET,
        limits=NO_FLOOD), runtime.service, runtime.coordinator, runtime.store.roles())


async def serve_app(port: int) -> None:
    """`bots.web.build_app` as `expertloop serve` builds it, plus the Telegram webhook."""
    async with open_runtime(Settings()) as runtime:
        app = build_app(runtime)
        add_telegram_webhook(app, open_telegram(runtime), SECRET)
        await run_site(app, port)


async def work_app() -> None:
    """What `expertloop worker` does for answers: the Telegram inbox drain (`handle_kept`)
    and, each `worker_interval_s`, the tick (expire abandoned leases, seal the log). Pushes to
    idle experts, the outbox and agreement figures are left out: the bench's experts always
    hold a card and every send succeeds."""
    async with open_runtime(Settings()) as runtime:
        telegram = open_telegram(runtime)
        worker = DeliveryLoop(runtime.service, TelegramDelivery(telegram),
                              runtime.settings.backoff())
        stop = stop_on_signals()
        ticks = asyncio.create_task(tick_until(runtime, stop))
        await worker.handle_kept(stop)
        await ticks
        await worker.close()


async def tick_until(runtime: Runtime, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await tick(runtime)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=runtime.settings.worker_interval_s)


async def bare_webhook(request: web.Request) -> web.Response:
    """The least any Telegram webhook does: check the secret, parse the update."""
    if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), SECRET.encode()):
        raise web.HTTPForbidden()
    if "update_id" not in await request.json():
        raise web.HTTPBadRequest()
    return web.Response()


async def serve_bare(port: int) -> None:
    app = web.Application()
    app.router.add_post("/telegram/webhook", bare_webhook)
    app.router.add_get("/healthz", healthz)
    await run_site(app, port)


async def healthz(request: web.Request) -> web.Response:
    return web.Response()


async def run_site(app: web.Application, port: int) -> None:
    stop = stop_on_signals()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run_role(job: Coroutine[Any, Any, None], profile: str | None) -> None:
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    asyncio.run(job)
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)


class WebProcess:
    """A web process of ours or the bare one; always stopped (and its profile written)."""

    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.command, self.env, self.port = command, env, port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def __aenter__(self) -> str:
        self.process = launch(self.command, self.env)
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.command} exited with {self.process.returncode}")
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as reply:
                        if reply.status == 200:
                            return f"http://127.0.0.1:{self.port}/telegram/webhook"
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the web process did not come up")

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        stop(self.process)


class Workers:
    """N worker processes; they show they are up by handling kept updates, and are always
    stopped (SIGTERM: each finishes the updates in hand)."""

    def __init__(self, commands: list[list[str]], env: dict[str, str]) -> None:
        self.commands, self.env = commands, env
        self.processes: list[subprocess.Popen[bytes]] = []

    async def __aenter__(self) -> Workers:
        self.processes = [launch(command, self.env) for command in self.commands]
        return self

    def check(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"a worker exited with {process.returncode}")

    async def __aexit__(self, *exc: object) -> None:
        for process in self.processes:  # all at once: they finish side by side
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            await asyncio.to_thread(wait_or_kill, process)


def cpu_s(pid: int) -> float:
    """CPU seconds (user and system) a process has used so far, from Linux's /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    wait_or_kill(process)


def wait_or_kill(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def launch(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, cwd=ROOT)


def expertloop(command: str) -> list[str]:
    return [str(Path(sys.executable).with_name("expertloop")), command]


def server_command(role: str, port: int, profile: str | None) -> list[str]:
    if role == "serve":
        return expertloop("serve")
    return [sys.executable, str(Path(__file__).resolve()), role, str(port),
            *([profile] if profile else [])]


def worker_command(server: str, profile: str | None) -> list[str]:
    if server == "serve":
        return expertloop("worker")
    return [sys.executable, str(Path(__file__).resolve()), "worker", *([profile] if profile
                                                                        else [])]


def server_env(redis_url: str, bot_api: str, port: int, server: str) -> dict[str, str]:
    """The environment of our processes; with `serve`, the product's own Telegram settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "TELEGRAM_", "EXPERTLOOP_", "REDIS_"))}
    env.update(REDIS_URL=redis_url, PORT=str(port), BENCH_TELEGRAM_API=bot_api,
               PYTHONPATH=str(ROOT))
    if server == "serve":
        env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_SECRET=SECRET,
                   TELEGRAM_API_URL=bot_api)
    return env


def start_redis(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    (port,) = free_ports(1)
    server = subprocess.Popen(
        [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
         "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
         "--maxmemory-policy", "noeviction"], stdout=subprocess.DEVNULL)
    return server, f"redis://127.0.0.1:{port}/0"


async def wait_for_redis(client: aioredis.Redis) -> None:
    for _ in range(300):
        try:
            await client.ping()
            return
        except (aioredis.ConnectionError, OSError):
            await asyncio.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def main(argv: list[str]) -> None:
    role, rest = argv[0], argv[1:]
    if role == "worker":
        run_role(work_app(), rest[0] if rest else None)
        return
    port, profile = int(rest[0]), (rest[1] if len(rest) > 1 else None)
    run_role(serve_app(port) if role == "app" else serve_bare(port), profile)


if __name__ == "__main__":
    main(sys.argv[1:])
