"""The processes bench/load.py starts: a redis-server, our web process (the app of
`expertloop serve` with the Telegram webhook, its flood limits lifted) and the bare baseline.
Run as a script, it is one of the two web processes:

    python bench/load_processes.py app|bare PORT [PROFILE_FILE]
"""

from __future__ import annotations

import asyncio
import cProfile
import hmac
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(ROOT))

from adapters.redis.embedded import server_binary  # noqa: E402
from adapters.telegram.app import TelegramSettings, build_telegram  # noqa: E402
from adapters.telegram.limits import Limits  # noqa: E402
from adapters.telegram.webhook import SECRET_HEADER, add_telegram_webhook  # noqa: E402
from bots.runtime import open_runtime, stop_on_signals  # noqa: E402
from bots.settings import Settings  # noqa: E402
from bots.web import build_app  # noqa: E402
from tests.cluster import free_ports  # noqa: E402

TOKEN, SECRET = "123:BENCH", "bench-load-secret"
NO_FLOOD = Limits(per_second=1e9, per_chat_per_second=1e9, chat_burst=10**9)


async def serve_app(port: int) -> None:
    """`bots.web.build_app` as `expertloop serve` builds it, plus the Telegram webhook with the
    flood limits lifted (the emulator takes any rate)."""
    async with open_runtime(Settings()) as runtime:
        app = build_app(runtime)
        telegram = build_telegram(TelegramSettings(
            token=TOKEN, api_url=os.environ["BENCH_TELEGRAM_API"], webhook_secret=SECRET,
            limits=NO_FLOOD), runtime.service, runtime.coordinator)
        add_telegram_webhook(app, telegram, SECRET)
        await run_site(app, port)


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


def run_server(role: str, port: int, profile: str | None) -> None:
    job = serve_app if role == "app" else serve_bare
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    asyncio.run(job(port))
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)


class WebProcess:
    """A web process of ours or the bare one; always stopped (and its profile written)."""

    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.command, self.env, self.port = command, env, port
        self.process: subprocess.Popen[bytes] | None = None

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
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def launch(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, cwd=ROOT)


def server_command(role: str, port: int, profile: str | None) -> list[str]:
    if role == "serve":
        return [str(Path(sys.executable).with_name("expertloop")), "serve"]
    return [sys.executable, str(Path(__file__).resolve()), role, str(port),
            *([profile] if profile else [])]


def server_env(redis_url: str, bot_api: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "TELEGRAM_", "EXPERTLOOP_", "REDIS_"))}
    env.update(REDIS_URL=redis_url, PORT=str(port), BENCH_TELEGRAM_API=bot_api,
               PYTHONPATH=str(ROOT))
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


if __name__ == "__main__":
    run_server(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
