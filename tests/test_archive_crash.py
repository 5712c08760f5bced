"""An archiver killed (SIGKILL) at each step: while its file is half written, once the file is
written but before the trim, and right after the trim. The next run finishes the job: every
event is readable exactly once, each range is archived once, and the files are the manifest's.

The child runs the archiver's own steps (next_segment, write, trim) and kills itself between
them; mid-write it kills itself where write_local would rename its fsynced temp file (it
replaces `os.replace` in its own process), so only the temp file is on disk."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.archive.files import LocalSegmentFiles
from adapters.redis import keys as k
from adapters.redis.store import RedisStore
from core.domain.timing import SystemClock
from core.provenance.events import iso_ms
from core.provenance.ledger import Ledger
from core.service.archiving import Archiver, ArchiveSettings
from tests.faults.processes import RedisServer

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ArchiveSettings(segment_events=50, segment_seconds=3600, hot_tail=20)

CHILD = f"""
import asyncio, os, signal, sys
from pathlib import Path

import redis.asyncio as aioredis

from adapters.archive.files import LocalSegmentFiles
from adapters.redis.store import RedisStore
from core.domain.timing import SystemClock
from core.service.archiving import Archiver, ArchiveSettings

url, root, point = sys.argv[1:4]


def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)


async def main():
    files = LocalSegmentFiles(Path(root))
    store = RedisStore(aioredis.from_url(url, decode_responses=True), files=files)
    archiver = Archiver(store, store, files, SystemClock(),
                        ArchiveSettings.model_validate_json({SETTINGS.model_dump_json()!r}))
    segment = await archiver.next_segment("c1")
    if point == "writing":
        os.replace = die  # write_local's temp file is written and fsynced, not yet renamed
    written = await archiver.write(segment)
    if point == "written":
        die()
    await archiver.trim("c1", segment, written)
    die()


asyncio.run(main())
"""


def note(i: int) -> str:
    return json.dumps({"actor": "system", "at": iso_ms(int(time.time() * 1000)),
                       "campaign": "c1", "type": "note", "payload": {"i": i}})


def killed_at(point: str, url: str, root: Path) -> None:
    child = subprocess.run([sys.executable, "-c", CHILD, url, str(root), point], cwd=ROOT,
                           capture_output=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]


async def left_behind(store: RedisStore, folder: Path) -> tuple[int, list[str], list[str]]:
    """After the kill: events in the stream, segments in the manifest, names in the folder."""
    return (await store.client.xlen(k.campaign_key("c1", "log")),
            [s.name for s in await store.segments("c1")],
            sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [])


FIRST = "000000000001-000000000050.parquet"
AFTER_KILL = {
    "writing": (130, [], [f".{FIRST}.writing"]),
    "written": (130, [], [FIRST]),
    "trimmed": (80, [FIRST], [FIRST]),
}


@pytest.mark.parametrize("point", sorted(AFTER_KILL))
async def test_an_archiver_killed_at_any_step_loses_nothing_and_archives_nothing_twice(
        own_redis: RedisServer, own_store: RedisStore, tmp_path: Path, point: str) -> None:
    files = LocalSegmentFiles(tmp_path / "archive")
    store = RedisStore(own_store.client, files=files)
    for i in range(130):
        await store.append_event("c1", note(i))
    ledger = Ledger(store, store, files)
    await ledger.seal("c1")
    whole = await store.read_events("c1", 0, 1000)
    folder = files.root / "c1"

    killed_at(point, own_redis.url, files.root)
    assert await left_behind(store, folder) == AFTER_KILL[point]
    first = (folder / FIRST).read_bytes() if (folder / FIRST).exists() else None
    await Archiver(store, store, files, SystemClock(), SETTINGS).archive("c1")

    segments = await store.segments("c1")
    assert [(s.first_seq, s.last_seq) for s in segments] == [(1, 50), (51, 100)]
    assert sorted(p.name for p in folder.iterdir()) == [s.name for s in segments]
    assert first is None or (folder / FIRST).read_bytes() == first  # kept, not rewritten
    assert await store.read_events("c1", 0, 1000) == whole  # every seq, once, in order
    assert await store.client.xlen(k.campaign_key("c1", "log")) == 30
    assert (await ledger.verify("c1")).ok
