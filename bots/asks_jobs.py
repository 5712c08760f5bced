"""The worker's share of live asks: deadlines and re-offers once a second (`AskService.tick`,
idempotent across workers), and the signed callbacks from the Redis outbox (a consumer group,
so several workers share it and a crashed one's callbacks are taken over)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from redis.exceptions import RedisError

from adapters.callbacks.guard import CallbackGuard, GuardSettings
from adapters.callbacks.sender import CallbackSender
from bots.runtime import Runtime
from bots.settings import Settings
from core.ports import Clock
from core.service.ask_queues import CallbackJob
from core.service.asks import AskService

log = logging.getLogger("expertloop.asks")
BATCH = 32  # callbacks taken at once; sent side by side
BLOCK_MS = 1000  # how long one read waits for a callback (and how soon a stop is seen)
FIRST_RETRY_S, RETRY_FACTOR, LONGEST_RETRY_S = 2.0, 4.0, 3600.0


def callback_guard(settings: Settings) -> CallbackGuard:
    """The one rule for callback URLs, for the API (when posted) and the worker (when sent)."""
    return CallbackGuard(GuardSettings(
        allowed_hosts=settings.allowed_callback_hosts(), public_url=settings.public_url(),
        listen_host=settings.host, listen_port=settings.port))


async def run_ask_jobs(runtime: Runtime, stop: asyncio.Event) -> None:
    """Both loops until stopped; without EXPERTLOOP_CALLBACK_SECRET no ask has a callback."""
    jobs = [ask_ticks(runtime, stop)]
    secret = runtime.settings.callback_secret
    if secret is not None:
        sender = CallbackSender(secret.get_secret_value(), callback_guard(runtime.settings),
                                runtime.settings.callback_timeout_s)
        jobs.append(callback_loop(runtime.service.asks, sender, runtime.service.clock, stop))
    await asyncio.gather(*jobs)


async def ask_ticks(runtime: Runtime, stop: asyncio.Event) -> None:
    interval = runtime.settings.worker_interval_s
    while not stop.is_set():
        try:
            await runtime.service.asks.tick()
        except (RedisError, OSError) as exc:
            log.warning("asks not ticked this time: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


async def callback_loop(asks: AskService, sender: CallbackSender, clock: Clock,
                        stop: asyncio.Event) -> None:
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    async with sender:
        while not stop.is_set():
            try:
                await send_callbacks(asks, sender, clock, consumer)
            except (RedisError, OSError) as exc:
                log.warning("callbacks not read this time: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1)


async def send_callbacks(asks: AskService, sender: CallbackSender, clock: Clock,
                         consumer: str, block_ms: int = BLOCK_MS) -> int:
    """One read of the outbox: each callback taken is sent, then marked done or put back for a
    later try (exponential backoff; the service gives up after its last). Returns how many."""
    jobs = await asks.take_callbacks(consumer, BATCH, block_ms)
    failures = await asyncio.gather(*(sender.send(job.url, job.body, job.delivery)
                                      for job in jobs))
    await asks.callback_done(*(job for job, failure in zip(jobs, failures, strict=True)
                               if failure is None))
    for job, failure in zip(jobs, failures, strict=True):
        if failure is not None:
            await _retry(asks, clock, job, failure)
    return len(jobs)


async def _retry(asks: AskService, clock: Clock, job: CallbackJob, failure: str) -> None:
    later = clock.now_ms() + retry_ms(job.tries)
    if await asks.callback_retry(job, failure, later):
        log.info("callback for %s failed (%s): try %d later", job.ask_id, failure, job.tries + 2)
    else:
        log.warning("callback for %s given up after %d tries: %s", job.ask_id, job.tries + 1,
                    failure)


def retry_ms(failed_before: int) -> int:
    """2 s after the first failure, then four times longer each time, at most an hour."""
    return round(min(FIRST_RETRY_S * RETRY_FACTOR ** failed_before, LONGEST_RETRY_S) * 1000)
