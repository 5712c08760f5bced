"""Worker processes that check segment files' chains (adapters/archive/chains.py `chain_end`):
`python -m adapters.archive.chain_workers`, fed one segment at a time on stdin (its meta as a
JSON line, its size, its bytes) and answering one line (the hash it chains to, or `-`).

A plain child process rather than a multiprocessing pool: a spawned or forkserver worker
imports the parent's whole program first (the `expertloop` command, a bench), seconds that
a verify of a few million events cannot spare, and forking a process whose event loop has
threads is unsafe. This one imports the chain check and nothing else."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import BinaryIO

from core.provenance.segments import SegmentMeta

ROOT = str(Path(__file__).resolve().parents[2])  # where `adapters` is, for the child's imports
NONE = b"-"


class ChainWorker:
    """One worker process; asked one segment at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> ChainWorker:
        path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adapters.archive.chain_workers",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": path})
        return cls(process)

    async def chain_end(self, data: bytes, segment: SegmentMeta) -> str | None:
        """The worker's answer; None where it has none (it died, or was stopped)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(segment.model_dump_json().encode() + b"\n"
                                     + f"{len(data)}\n".encode() + data)
            await self.process.stdin.drain()
            line = (await self.process.stdout.readline()).strip()
        except (ConnectionError, OSError):
            return None
        return None if line in (b"", NONE) else line.decode()

    async def stop(self) -> None:
        """Ends the worker, at once if it is still busy (a verify that stopped early)."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


def serve(inbox: BinaryIO, outbox: BinaryIO) -> None:
    from adapters.archive.chains import chain_end

    while header := inbox.readline():
        segment = SegmentMeta.model_validate_json(header)
        data = inbox.read(int(inbox.readline()))
        outbox.write((chain_end(data, segment) or NONE.decode()).encode() + b"\n")
        outbox.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
