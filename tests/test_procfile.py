"""The Procfile runs as a Procfile runner runs it: `honcho start` against an outside
redis-server, and against a Redis Cluster (REDIS_URL=redis+cluster://...), with no chat
tokens. The web process answers /healthz, the chat processes wait quietly, and stopping honcho
leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.redis.embedded import server_binary
from tests.cluster import free_ports

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HONCHO = BIN / "honcho"
READY_S = 30.0



def descendants(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    children = {int(p) for p in found.stdout.split()}
    return children.union(*(descendants(child) for child in children))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie left for its parent to reap is gone for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][:1] != "Z"


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


@pytest.fixture
def outside_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of our own on a loopback port, as a deployment would have."""
    (port,) = free_ports(1)
    data = tmp_path / "redis"
    data.mkdir()
    server = subprocess.Popen(
        [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
         "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
         "--maxmemory-policy", "noeviction"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli = Path(server_binary()).with_name("redis-cli")
    try:
        deadline = time.monotonic() + READY_S
        while subprocess.run([cli, "-p", str(port), "ping"], capture_output=True,
                             text=True).stdout.strip() != "PONG":
            assert server.poll() is None and time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(server)
        assert not alive(server.pid)


@pytest.fixture(params=["redis", "redis-cluster"])
def redis_url(request: pytest.FixtureRequest) -> str:
    """One outside redis-server, or the session's 3-master cluster (tests/cluster.py)."""
    if request.param == "redis":
        return str(request.getfixturevalue("outside_redis"))
    return str(request.getfixturevalue("redis_cluster").url())


def test_the_procfile_runs_under_honcho_against_an_outside_redis(
        redis_url: str, tmp_path: Path) -> None:
    (port,) = free_ports(1)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SLACK_", "TELEGRAM_", "EXPERTLOOP_", "REDIS_"))}
    env.update(REDIS_URL=redis_url, PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
               PYTHONUNBUFFERED="1")
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    log = tmp_path / "honcho.log"
    with log.open("wb") as out:
        honcho = subprocess.Popen(
            [str(HONCHO), "start", "-f", str(ROOT / "Procfile"), "-d", str(tmp_path),
             "-e", str(empty_env), "-p", str(port), "--no-colour"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    children: set[int] = set()
    try:
        health = wait_for_health(port, honcho, log)
        assert health["ok"] is True and health["backlog"] == {"telegram": 0, "slack": 0}
        assert {name: c["state"] for name, c in health["channels"].items()} == {
            "telegram": "off", "slack": "off"}  # no tokens in the empty env
        children = descendants(honcho.pid)
        wait_for_lines(log, honcho, ["telegram is off", "slack is off"])  # idle, not exited
        assert honcho.poll() is None, log.read_text()
    finally:
        children |= descendants(honcho.pid)
        stop(honcho)
    text = log.read_text()
    for name in ("web.1", "worker.1", "telegram.1", "slack.1"):
        assert name in text, text
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if alive(pid)], text


def wait_for_health(port: int, honcho: subprocess.Popen[bytes], log: Path) -> object:
    deadline = time.monotonic() + READY_S
    while True:
        assert honcho.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                return json.loads(reply.read())
        except OSError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)


def wait_for_lines(log: Path, honcho: subprocess.Popen[bytes], lines: list[str]) -> None:
    deadline = time.monotonic() + READY_S
    while not all(line in log.read_text().lower() for line in lines):
        assert honcho.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
