"""The worker: returns abandoned tasks to the pool and seals the provenance log. Any number of
workers may run side by side; both jobs are idempotent and every step is atomic in Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from bots.runtime import Runtime
from bots.slack_socket import drainer
from core.provenance import ChainBroken

log = logging.getLogger("expertloop.worker")


async def tick(runtime: Runtime) -> tuple[int, int]:
    """One pass over every campaign: (leases expired, events sealed). A campaign whose log was
    tampered with stays unsealed past the damage and is reported; the others go on."""
    expired = sealed = 0
    for campaign_id in await runtime.store.list_campaigns():
        expired += await runtime.service.expire_leases(campaign_id)
        try:
            sealed += await runtime.ledger.seal(campaign_id)
        except ChainBroken as exc:
            log.error("campaign %s: the log cannot be sealed: %s", campaign_id, exc)
    return expired, sealed


async def run_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    interval = runtime.settings.worker_interval_s
    slack = drainer(runtime)  # resends what Slack refused (the Slack outbox), when Slack is on
    while not stop.is_set():
        try:
            expired, sealed = await tick(runtime)
            if slack is not None:
                await slack.drain()
            if expired:
                log.info("%d abandoned tasks went back to the pool", expired)
            log.debug("sealed %d events", sealed)
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, retrying: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
