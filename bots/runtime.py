"""Wiring: one Redis connection (the embedded server when REDIS_URL is absent), the store, and
the core objects every process shares. Each process opens exactly one Runtime."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters.archive.chains import SegmentChains
from adapters.archive.files import open_segment_files
from adapters.history.duckdb import DuckHistory
from adapters.media.checker import PillowChecker
from adapters.media.fetch import GuardedFetcher
from adapters.media.store import media_from
from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.replicas import ReplicaAcks
from adapters.redis.store import RedisStore
from bots.settings import Settings
from core.domain.media import Media
from core.domain.timing import SystemClock
from core.ports import Clock, History
from core.provenance.ledger import Ledger
from core.reports.history import PlainHistory
from core.service.coordinator import Coordinator
from core.service.images import ImageImport
from core.service.service import Service


@dataclass
class Runtime:
    settings: Settings
    client: aioredis.Redis | RedisCluster
    store: RedisStore
    service: Service
    coordinator: Coordinator
    ledger: Ledger
    # Image bytes by SHA-256 (EXPERTLOOP_MEDIA); left out, the settings' location.
    media: Media = None  # type: ignore[assignment]
    # What reports read the log through; left out, the plain reader of the ledger.
    history: History = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.media is None:
            self.media = media_from(self.settings.media_location())
        if self.history is None:
            self.history = PlainHistory(self.ledger)


@asynccontextmanager
async def open_runtime(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Runtime]:
    embedded = None
    url = settings.redis_url
    if not url:
        embedded = EmbeddedRedis(settings.data_dir)
        await embedded.start()
        url = embedded.url()
    client = connect(url)
    try:
        # Fail fast on a wrong REDIS_URL, and hold a connection: the embedded server stays up
        # while any process is connected to it.
        await client.ping()
        files = open_segment_files(settings.archive_location())  # opens nothing yet
        store = RedisStore(client, replica_acks=replica_acks(client, settings),
                           files=files)  # every role
        service = Service(store.roles(), clock or SystemClock())
        media = media_from(settings.media_location())
        coordinator = Coordinator(store.roles(), service.clock, service.catalog,
                                  image_import(settings, media))
        history = DuckHistory(store, store, store, settings.archive_location())
        yield Runtime(settings, client, store, service, coordinator,
                      Ledger(store, store, files, SegmentChains(files)), media, history)
    finally:
        await client.aclose()
        if embedded is not None:
            await embedded.stop()


def image_import(settings: Settings, media: Media) -> ImageImport:
    """How import reads images: Pillow decodes, a guarded fetcher fetches URLs once."""
    return ImageImport(media, PillowChecker(),
                       GuardedFetcher(settings.allowed_fetch_hosts(), settings.fetch_timeout_s),
                       settings.media_max_bytes())


def replica_acks(client: aioredis.Redis | RedisCluster, settings: Settings) -> ReplicaAcks | None:
    """EXPERTLOOP_REPLICA_ACKS=N: an answer is acknowledged once N replicas hold it."""
    if not settings.replica_acks:
        return None
    return ReplicaAcks(client, settings.replica_acks, settings.replica_ack_ms)


REDIS_CONNECTIONS = 100  # per process
REDIS_CONNECTION_WAIT_S = 5.0
CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}


def connect(url: str) -> aioredis.Redis | RedisCluster:
    """`redis://`, `rediss://` and `unix://` name one server; `redis+cluster://host:port` (or
    `rediss+cluster://`) names any node of a Redis Cluster, whose other nodes the client finds
    itself. Every key of a campaign shares one hash tag, so a campaign lives in one slot."""
    for scheme, plain in CLUSTER_SCHEMES.items():
        if url.startswith(scheme):
            return RedisCluster.from_url(plain + url[len(scheme):], decode_responses=True)
    # redis-py's default pool raises "Too many connections" past 100 commands in flight, which
    # failed answers under a burst of webhooks; this pool makes the 101st wait for a connection.
    # After a Redis restart every pooled connection is dead: a command that fails on one is
    # sent once more on a fresh connection instead of failing one request per dead connection.
    # A reply lost after the server ran the command re-runs it; answers are idempotent per lease.
    return aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, health_check_interval=30,
        max_connections=REDIS_CONNECTIONS, timeout=REDIS_CONNECTION_WAIT_S,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2,
                    supported_errors=(RedisConnectionError,))))


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, so long-running commands shut down cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def channel_off(channel: str, why: str, args: argparse.Namespace) -> int:
    """A channel whose tokens are absent is simply off: an error when asked for by hand, a
    quiet wait under a process runner (`--idle-when-off`), which stops every process when one
    exits."""
    if not getattr(args, "idle_when_off", False):
        print(f"error: {why}", file=sys.stderr)
        return 1
    print(f"{channel} is off ({why}); waiting", flush=True)
    await stop_on_signals().wait()
    return 0
