"""The worker's signing job: a signed checkpoint of each campaign whose log grew, at most once per
EXPERTLOOP_CHECKPOINT_MINUTES across every worker, appended to the campaign's checkpoints file."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from adapters.signing.ed25519 import Ed25519Signer, KeyFileError
from adapters.signing.notes import NoteFiles
from bots.runtime import Runtime
from core.ports import LastCheckpoint, Signer
from core.provenance.chain import ChainBroken
from core.provenance.checkpoints import CheckpointError
from core.provenance.proofs import new_checkpoint

log = logging.getLogger("expertloop.checkpoints")


async def sign_checkpoints(runtime: Runtime, signer: Signer, files: NoteFiles) -> int:
    """Seal, then sign each campaign whose turn it is and whose sealed log grew. The file is
    written before Redis learns the size: a crash between signs the same size again (Ed25519 is
    deterministic, so the same note) rather than leaving a size no file holds."""
    every_ms = round(runtime.settings.checkpoint_minutes * 60_000)
    signed = 0
    for campaign_id in await runtime.store.list_campaigns():
        if not await runtime.store.take_turn(f"checkpoint:{campaign_id}", every_ms):
            continue
        try:
            await runtime.ledger.seal(campaign_id)
            last = await runtime.store.last_checkpoint(campaign_id)
            made = await new_checkpoint(runtime.store, campaign_id, signer, last)
        except (ChainBroken, CheckpointError) as exc:
            log.error("campaign %s: no checkpoint signed: %s", campaign_id, exc)
            continue
        if made is not None:
            size, note = made
            path = files.append(campaign_id, note)
            now = runtime.service.clock.now_ms()
            await runtime.store.save_checkpoint(campaign_id, LastCheckpoint(size, now))
            log.info("campaign %s: signed checkpoint of size %d in %s", campaign_id, size, path)
            signed += 1
    return signed


async def checkpoint_loop(runtime: Runtime, stop: asyncio.Event) -> None:
    """Off, said once, without EXPERTLOOP_SIGNING_KEY; a bad key file is said once too."""
    path = runtime.settings.signing_key
    if path is None:
        log.info("checkpoint signing is off: EXPERTLOOP_SIGNING_KEY is not set")
        return
    try:
        signer = Ed25519Signer.from_pem(path)
    except KeyFileError as exc:
        log.error("checkpoint signing is off: %s", exc)
        return
    files = NoteFiles(runtime.settings.checkpoints_dir())
    while not stop.is_set():
        try:
            await sign_checkpoints(runtime, signer, files)
        except (RedisError, OSError) as exc:
            log.warning("no checkpoint this time: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=runtime.settings.worker_interval_s)
