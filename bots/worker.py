"""The worker: returns abandoned tasks to the pool, seals the provenance log, moves its sealed
history to the archive (core/service/archiving.py), asks campaigns' models for the drafts their
items lack (core/service/drafting.py), and runs each chat channel's delivery loop
(core/service/delivery.py: the requests its webhook kept, what it owes, cards for idle
experts). Any number of workers may run side by side; every job is idempotent and every step
is atomic in Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from adapters.models.openai_drafter import OpenAIDrafter
from adapters.signing.notes import NoteFiles
from bots.asks_delivery import push_asks
from bots.asks_jobs import run_ask_jobs
from bots.channels import delivery_loops
from bots.checkpointing import checkpoint_loop, sign_checkpoint, signing
from bots.runtime import Runtime
from core.ports import Signer
from core.provenance.chain import ChainBroken
from core.provenance.segments import SegmentError
from core.reports.quality import keep_agreement, preload
from core.service.archiving import Archiver
from core.service.drafting import DraftingLoop

log = logging.getLogger("expertloop.worker")

# After a stop, drafts in flight get this long to come back before they are cut off: a lane
# takes the model's next job while there is one, so a long queue would hold a stop for ever.
# A job cut off is not lost: its hold runs out and another worker drafts it.
DRAFTING_GRACE_S = 5.0
# One worker archives a campaign per turn; another taking over mid-way is harmless (the file is
# kept once and trim_archived refuses the second trim), only wasted work.
ARCHIVE_TURN_MS = 10_000


async def tick(runtime: Runtime) -> tuple[int, int]:
    """One pass over every campaign: (leases expired, events sealed). A campaign whose log was
    tampered with stays unsealed past the damage and is reported; the others go on."""
    expired = sealed = 0
    for campaign_id in [*await runtime.store.list_campaigns(), "asks"]:  # + live asks' log
        expired += await runtime.service.expire_leases(campaign_id)
        try:
            sealed += await runtime.ledger.seal(campaign_id)
        except ChainBroken as exc:
            log.error("campaign %s: the log cannot be sealed: %s", campaign_id, exc)
    return expired, sealed


async def keep_agreements(runtime: Runtime) -> int:
    """Experts' agreement with their peers, for their stats: each campaign at most once per
    interval across all workers, and only when its log has grown. Returns campaigns updated."""
    every_ms = int(runtime.settings.agreement_interval_s * 1000)
    kept = 0
    for campaign_id in await runtime.store.list_campaigns():
        if await runtime.store.take_turn(f"agreement:{campaign_id}", every_ms):
            campaign = await runtime.service.catalog.campaign(campaign_id)
            kept += await keep_agreement(runtime.ledger, runtime.store, campaign,
                                         history=runtime.history)
    return kept


async def run_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    interval = runtime.settings.worker_interval_s
    loops = delivery_loops(runtime)  # one per chat channel that is on
    agreements = asyncio.create_task(agreement_loop(runtime, stop))  # long reads: beside ticks
    drafting = asyncio.create_task(drafting_loop(runtime, stop))
    checkpoints = asyncio.create_task(checkpoint_loop(runtime, stop))
    archiving = asyncio.create_task(archive_loop(runtime, stop))
    inboxes = [asyncio.create_task(loop.handle_kept(stop)) for loop in loops]
    inboxes.append(asyncio.create_task(push_asks(runtime, loops, stop)))  # live asks, at once
    inboxes.append(asyncio.create_task(run_ask_jobs(runtime, stop)))  # asks' deadlines, callbacks
    while not stop.is_set():
        try:
            expired, sealed = await tick(runtime)
            pushing = await runtime.store.take_turn("push-pass", round(interval * 1000))
            for loop in loops:  # the outbox, then, one pass per tick across workers, pushes
                await loop.tick(pushing)
            if expired:
                log.info("%d abandoned tasks went back to the pool", expired)
            log.debug("sealed %d events", sealed)
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, retrying: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    # side by side: drafts in flight get their grace while the other loops wind down
    await asyncio.gather(finish_drafting(drafting), agreements, checkpoints, archiving, *inboxes)
    for loop in loops:
        await loop.close()


async def archive_pass(runtime: Runtime, archiver: Archiver,
                       signed: tuple[Signer, NoteFiles] | None,
                       stop: asyncio.Event | None = None) -> int:
    """Each campaign whose turn it is: archive the segments due, then (with a signing key) sign
    a checkpoint at once, so every archived segment is covered by one. Returns segments."""
    archived = 0
    for campaign_id in await runtime.store.list_campaigns():
        if not await runtime.store.take_turn(f"archive:{campaign_id}", ARCHIVE_TURN_MS):
            continue
        try:
            done = await archiver.archive(campaign_id, stop)
        except SegmentError as exc:
            log.error("campaign %s: a segment was not archived: %s", campaign_id, exc)
            continue
        for segment in done:
            log.info("campaign %s: archived %s", campaign_id, segment.name)
        if done and signed is not None:
            await sign_checkpoint(runtime, *signed, campaign_id)
        archived += len(done)
    return archived


async def archive_loop(runtime: Runtime, stop: asyncio.Event) -> None:
    """Beside the ticks, as a segment's write may take seconds."""
    files = runtime.store.files
    if files is None:
        log.info("archiving is off: the store has no archive")
        return
    archiver = Archiver(runtime.store, runtime.store, files, runtime.service.clock,
                        runtime.settings.archiving(), history=runtime.history)
    signed = signing(runtime.settings, quiet=True)
    while not stop.is_set():
        try:
            await archive_pass(runtime, archiver, signed, stop)
        except (RedisError, OSError) as exc:
            log.warning("nothing archived this time: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=runtime.settings.worker_interval_s)


async def drafting_loop(runtime: Runtime, stop: asyncio.Event) -> None:
    """Drafts for every campaign with a `drafting` block until stopped; one openai client per
    endpoint for the worker's life, closed at the end."""
    drafter = OpenAIDrafter()
    stores = runtime.store.roles()
    drafting = DraftingLoop(stores.campaigns, stores.drafts, drafter, runtime.service.clock,
                            runtime.settings.drafting(), runtime.service.catalog,
                            media=runtime.media)
    try:
        await drafting.run(stop)
    finally:
        await drafter.close()


async def finish_drafting(drafting: asyncio.Task[None]) -> None:
    """Wait for the drafts in flight, up to DRAFTING_GRACE_S, then cut off the rest."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(drafting), DRAFTING_GRACE_S)
    if not drafting.done():
        log.info("drafting stopped with requests in flight: their jobs go to another worker")
        drafting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await drafting


async def agreement_loop(runtime: Runtime, stop: asyncio.Event) -> None:
    await asyncio.to_thread(preload)  # seconds of imports, off the loop the ticks run on
    while not stop.is_set():
        try:
            await keep_agreements(runtime)
        except (RedisError, OSError) as exc:
            log.warning("agreement not kept this time: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=runtime.settings.worker_interval_s)
