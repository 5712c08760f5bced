"""Real processes for the fault suite: a redis-server of the test's own (AOF `everysec`, as
docs/deploy.md tells a deployment to run it) that can be stopped with any signal and started
again on the same port and data, and `expertloop` processes (serve, worker, one-shot commands)
pointed at it with REDIS_URL. Every wait is async: the emulators live in the test's event loop,
and the processes call them (PTB asks getMe before the web process listens)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from adapters.redis.embedded import server_binary
from tests.cluster import free_ports

BIN = Path(sys.executable).parent
READY_S = 30.0


async def wait_until(ready: object, what: str, within: float = READY_S,
                     process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `ready()` (sync or async) until it is true; fail if `process` died meanwhile."""
    deadline = time.monotonic() + within
    while True:
        found = ready()  # type: ignore[operator]
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


def spawn_process(argv: list[str], workdir: Path, env: dict[str, str] | None = None,
                  log: Path | None = None) -> subprocess.Popen[bytes]:
    """In its own session, so a signal to the test's terminal does not reach it."""
    with open(log or os.devnull, "wb") as out:
        return subprocess.Popen(argv, cwd=workdir, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def reap(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Send `sig`, wait for the exit, SIGKILL after 10 s."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class RedisServer:
    """One redis-server on 127.0.0.1; `stop` and `start` again keep its port and its AOF."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.port,) = free_ports(1)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = spawn_process(
            [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "everysec",
             "--save", "", "--maxmemory-policy", "noeviction",
             "--logfile", str(self.data_dir / "redis.log")], self.data_dir)
        await wait_until(self._pong, "redis-server answers PING", process=self.process)

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: Redis writes and fsyncs its AOF and exits. SIGKILL: a crash."""
        if self.process is not None:
            await asyncio.to_thread(reap, self.process, sig)

    async def _pong(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            return await reader.readline() == b"+PONG\r\n"  # not -LOADING while it reads the AOF
        finally:
            writer.close()


def environment(redis_url: str, **extra: str) -> dict[str, str]:
    """This environment without any expertloop, chat or Redis setting, plus the given ones."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SLACK_", "TELEGRAM_", "EXPERTLOOP_", "REDIS_"))}
    env.update(REDIS_URL=redis_url, PYTHONUNBUFFERED="1",
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra)
    return env


class Expertloop:
    """One long-running `expertloop` process (`serve` or `worker`), its output in a log file."""

    def __init__(self, command: str, env: dict[str, str], workdir: Path) -> None:
        self.command, self.env, self.workdir = command, env, workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.port = int(env["PORT"]) if "PORT" in env else None

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.command}.{self.starts}.log"

    async def start(self) -> None:
        self.starts += 1
        self.process = spawn_process([str(BIN / "expertloop"), self.command], self.workdir,
                                     self.env, self.log)
        if self.command == "serve":
            await wait_until(self.healthy, f"expertloop serve answers /healthz; see {self.log}",
                             process=self.process)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def healthy(self) -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=3)) as reply:
                return reply.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def kill(self) -> None:
        """kill -9: no cleanup, no goodbye, whatever was in flight is cut."""
        if self.process is not None:
            await asyncio.to_thread(reap, self.process, signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is not None:
            await asyncio.to_thread(reap, self.process)


def web_environment(redis_url: str, **extra: str) -> dict[str, str]:
    (port,) = free_ports(1)
    return environment(redis_url, PORT=str(port), **extra)


async def run_command(env: dict[str, str], workdir: Path, *args: str
                      ) -> subprocess.CompletedProcess[str]:
    """A one-shot `expertloop` command (e.g. `provenance verify ID`), run off the event loop."""
    return await asyncio.to_thread(
        subprocess.run, [str(BIN / "expertloop"), *args], cwd=workdir, env=env,
        capture_output=True, text=True, timeout=60)
