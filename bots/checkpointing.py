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
from bots.settings import Settings
from core.domain.asks import ASKS_LOG
from core.ports import LastCheckpoint, Signer
from core.provenance.chain import ChainBroken
from core.provenance.checkpoints import CheckpointError
from core.provenance.proofs import new_checkpoint

log = logging.getLogger("expertloop.checkpoints")


async def sign_checkpoints(runtime: Runtime, signer: Signer, files: NoteFiles) -> int:
    """Seal, then sign each campaign whose turn it is and whose sealed log grew, and the live
    asks' log the same way."""
    every_ms = round(runtime.settings.checkpoint_minutes * 60_000)
    signed = 0
    for campaign_id in [*await runtime.store.list_campaigns(), ASKS_LOG]:
        if await runtime.store.take_turn(f"checkpoint:{campaign_id}", every_ms):
            signed += await sign_checkpoint(runtime, signer, files, campaign_id)
    return signed


async def sign_checkpoint(runtime: Runtime, signer: Signer, files: NoteFiles,
                          campaign_id: str) -> bool:
    """Seal one campaign and sign its log if it grew since its last checkpoint: on the loop's
    turn, and at once after a segment was archived (issue 18: "at each archived segment").
    The file is written before Redis learns the size: a crash between signs the same size
    again (Ed25519 is deterministic, so the same note) rather than leaving a size no file
    holds."""
    try:
        await runtime.ledger.seal(campaign_id)
        last = await runtime.store.last_checkpoint(campaign_id)
        made = await new_checkpoint(runtime.store, campaign_id, signer, last)
    except (ChainBroken, CheckpointError) as exc:
        log.error("campaign %s: no checkpoint signed: %s", campaign_id, exc)
        return False
    if made is None:
        return False
    size, note = made
    path = files.append(campaign_id, note)
    await runtime.store.save_checkpoint(campaign_id,
                                        LastCheckpoint(size, runtime.service.clock.now_ms()))
    log.info("campaign %s: signed checkpoint of size %d in %s", campaign_id, size, path)
    return True


def signing(settings: Settings, quiet: bool = False) -> tuple[Signer, NoteFiles] | None:
    """The signer and the checkpoints' files, or None when signing is off (said unless
    `quiet`: the checkpoint loop says it, the archive loop need not say it again)."""
    path = settings.signing_key
    if path is None:
        if not quiet:
            log.info("checkpoint signing is off: EXPERTLOOP_SIGNING_KEY is not set")
        return None
    try:
        signer = Ed25519Signer.from_pem(path)
    except KeyFileError as exc:
        if not quiet:
            log.error("checkpoint signing is off: %s", exc)
        return None
    return signer, NoteFiles(settings.checkpoints_dir())


async def checkpoint_loop(runtime: Runtime, stop: asyncio.Event) -> None:
    """Off, said once, without EXPERTLOOP_SIGNING_KEY; a bad key file is said once too."""
    found = signing(runtime.settings)
    if found is None:
        return
    signer, files = found
    while not stop.is_set():
        try:
            await sign_checkpoints(runtime, signer, files)
        except (RedisError, OSError) as exc:
            log.warning("no checkpoint this time: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=runtime.settings.worker_interval_s)
