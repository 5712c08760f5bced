"""The processes bench/asks.py starts: `expertloop serve` and `expertloop worker` (the real
commands, the platforms' pacing lifted unless BENCH_LIMITS=1), and the bare baseline, an aiohttp
process that forwards one request and returns. Run as a script, it is one of them:

    python bench/asks_roles.py serve|worker
    python bench/asks_roles.py bare PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(ROOT))

from bench.load_processes import NO_FLOOD, cpu_s, healthz, launch, run_site, stop  # noqa: E402
from tests.cluster import free_ports  # noqa: E402

HTTP = web.AppKey("bare_http", aiohttp.ClientSession)


@dataclass(frozen=True)
class Platforms:
    """Where the emulators listen, and the secrets our processes are set up with."""

    telegram_api: str
    telegram_token: str
    slack_api: str
    slack_token: str
    slack_signing_secret: str
    webhook_secret: str
    callback_secret: str
    api_token: str


# the bare baseline


async def bare_ask(request: web.Request) -> web.Response:
    """Forward one card, as the platform takes it, and return."""
    body, http = await request.json(), request.app[HTTP]
    channel, _, address = str(body["identity"]).partition(":")
    if channel == "telegram":
        url = f"{os.environ['BENCH_TELEGRAM_API']}{os.environ['BENCH_TELEGRAM_TOKEN']}/sendMessage"
        button: dict[str, Any] = {"text": "Approve", "callback_data": "bare:approve"}
        sent: dict[str, Any] = {"chat_id": int(address), "text": body["text"],
                                "reply_markup": {"inline_keyboard": [[button]]}}
        headers: dict[str, str] = {}
    else:
        url = f"{os.environ['BENCH_SLACK_API']}chat.postMessage"
        button = {"type": "button", "action_id": "bare_approve", "value": "approve",
                  "text": {"type": "plain_text", "text": "Approve"}}
        sent = {"channel": "D" + address.removeprefix("U"), "text": body["text"], "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}},
            {"type": "actions", "elements": [button]}]}
        headers = {"Authorization": f"Bearer {os.environ['BENCH_SLACK_TOKEN']}"}
    async with http.post(url, json=sent, headers=headers) as reply:
        await reply.read()
    return web.json_response({"ok": True}, status=201)


async def bare_tap(request: web.Request) -> web.Response:
    """Forward one tap to the agent's receiver, and return."""
    body = await request.json()
    async with request.app[HTTP].post(body["url"], json={"id": body["id"]}) as reply:
        await reply.read()
    return web.Response()


async def serve_bare(port: int) -> None:
    app = web.Application()
    app.router.add_post("/ask", bare_ask)
    app.router.add_post("/tap", bare_tap)
    app.router.add_get("/healthz", healthz)

    async def session(app: web.Application) -> AsyncIterator[None]:
        app[HTTP] = aiohttp.ClientSession()
        yield
        await app[HTTP].close()

    app.cleanup_ctx.append(session)
    await run_site(app, port)


# ours


def lift_pacing() -> None:
    """Telegram's and Slack's pacing off, in the settings every channel is built from (the
    emulators take any rate; the bare forwarder is not paced either)."""
    from bots import slack_wiring, telegram_wiring

    telegram_of, slack_of = telegram_wiring.telegram_settings, slack_wiring.slack_settings

    def telegram_settings(settings: Any) -> Any:
        found = telegram_of(settings)
        return found and found.model_copy(update={"limits": NO_FLOOD})

    def slack_settings(settings: Any) -> Any:
        found = slack_of(settings)
        return found and found.model_copy(update={"post_interval_s": 0.0})

    telegram_wiring.telegram_settings = telegram_settings
    slack_wiring.slack_settings = slack_settings


def run_ours(command: str) -> int:
    """`expertloop serve|worker`, profiled into BENCH_PROFILE (a folder) when it is set, in
    CPU time (on a shared machine, wall time charges other processes' turns to our sends)."""
    from bots import cli

    if os.environ.get("BENCH_LIMITS") != "1":
        lift_pacing()
    folder = os.environ.get("BENCH_PROFILE")
    if not folder:
        return cli.main([command])
    profiler = cProfile.Profile(time.process_time)  # CPU: a busy machine's waits are not ours
    profiler.enable()
    try:
        return cli.main([command])
    finally:
        profiler.disable()
        profiler.dump_stats(f"{folder}/{command}-{os.getpid()}.prof")


class Processes:
    """Our web process and workers, and the bare one; always stopped."""

    def __init__(self, work: Path, workers: int, limits: bool, profile: str | None) -> None:
        self.work, self.workers, self.limits, self.profile = work, workers, limits, profile
        self.started: dict[str, list[subprocess.Popen[bytes]]] = {}

    def environment(self, redis_url: str, at: Platforms) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SLACK_", "TELEGRAM_", "EXPERTLOOP_", "REDIS_"))}
        env.update(PYTHONPATH=str(ROOT), REDIS_URL=redis_url, EXPERTLOOP_API_TOKEN=at.api_token,
                   EXPERTLOOP_DATA_DIR=str(self.work / "var"),
                   TELEGRAM_BOT_TOKEN=at.telegram_token, TELEGRAM_API_URL=at.telegram_api,
                   TELEGRAM_WEBHOOK_SECRET=at.webhook_secret, SLACK_BOT_TOKEN=at.slack_token,
                   SLACK_SIGNING_SECRET=at.slack_signing_secret, SLACK_API_URL=at.slack_api,
                   EXPERTLOOP_CALLBACK_SECRET=at.callback_secret,
                   EXPERTLOOP_CALLBACK_HOSTS="127.0.0.1",
                   EXPERTLOOP_ASKS_PER_MINUTE=str(10**7), BENCH_LIMITS=str(int(self.limits)),
                   BENCH_TELEGRAM_API=at.telegram_api, BENCH_TELEGRAM_TOKEN=at.telegram_token,
                   BENCH_SLACK_API=at.slack_api, BENCH_SLACK_TOKEN=at.slack_token,
                   BENCH_PROFILE=self.profile or "")
        return env

    async def start(self, redis_url: str, at: Platforms) -> tuple[str, str]:
        """Our web process's and the bare one's base URLs, once both answer /healthz."""
        ours, bare = free_ports(2)
        env = self.environment(redis_url, at)
        me = [sys.executable, str(Path(__file__).resolve())]
        self.started = {
            "web": [launch([*me, "serve"], {**env, "PORT": str(ours)})],
            "worker": [launch([*me, "worker"], env) for _ in range(self.workers)],
            "bare": [launch([*me, "bare", str(bare)], env)]}
        for port in (ours, bare):
            await healthy(f"http://127.0.0.1:{port}")
        return f"http://127.0.0.1:{ours}", f"http://127.0.0.1:{bare}"

    def cpu(self) -> dict[str, float]:
        return {role: sum(cpu_s(p.pid) for p in found) for role, found in self.started.items()}

    def check(self) -> None:
        for role, found in self.started.items():
            if any(p.poll() is not None for p in found):
                raise RuntimeError(f"a {role} process died")

    def stop(self) -> None:
        for found in self.started.values():
            for process in found:
                stop(process)


async def healthy(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/healthz") as reply:
                    if reply.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{base} did not come up")


def main(argv: list[str]) -> None:
    if argv[0] == "bare":
        asyncio.run(serve_bare(int(argv[1])))
        return
    sys.exit(run_ours(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
