"""A shared flood limiter for every Bot API call: about 30 messages a second overall and one a
second per chat (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this),
waiting `retry_after` and resending on 429 (up to `max_retry_after_s`), and retrying a 5xx a
few times; what still fails is the caller's to owe (adapters/telegram/outbox.py)."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import BaseRateLimiter

from core.ports import Turns

log = logging.getLogger(__name__)
UNLIMITED = {"getUpdates", "getMe", "setWebhook", "deleteWebhook", "answerCallbackQuery"}
LIFTED = 1e6  # a rate at or above this is no limit at all (bench/load_processes.py's NO_FLOOD)


class Limits(BaseModel):
    """Rates at or above LIFTED are not paced: no shared slot (a Redis round trip on every
    call, ~15% of a worker's CPU under bench/asks.py) and no per-chat bucket."""

    per_second: float = 30.0
    per_chat_per_second: float = 1.0
    chat_burst: int = 3  # a card, its outcome and the next card go out together
    server_error_tries: int = 3
    max_retry_after_s: float = 60.0


class Bucket:
    """A token bucket; `take` waits until a token is free."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        async with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens < 1:
                await asyncio.sleep((1 - self.tokens) / self.rate)
                self.tokens, self.stamp = 1.0, time.monotonic()
            self.tokens -= 1


class SharedPace:
    """The bot's overall rate across every process (web processes, poller, workers): the next
    free slot lives in Redis (`Turns.next_slot`), on Redis's clock. No burst: a full bucket of
    30 let ~60 go out in one second after a pause, and a platform counting 30 a second answered
    429 (bench/delivery.py: 20 msg/s, not 29)."""

    def __init__(self, store: Turns, per_second: float) -> None:
        self.store = store
        self.interval_ms = max(1, round(1000 / per_second))

    async def take(self) -> None:
        delay_ms = await self.store.next_slot("telegram:bot", self.interval_ms)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)


class FloodLimiter(BaseRateLimiter[int]):
    """Per chat, a bucket in this process: an expert's chat is served by one process at a
    time (their update, or a worker's push), so sharing it would cost a round trip a send."""

    def __init__(self, store: Turns, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.overall = SharedPace(store, self.limits.per_second) \
            if self.limits.per_second < LIFTED else None
        self.per_chat = self.limits.per_chat_per_second < LIFTED
        self.chats: dict[str, Bucket] = {}

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def process_request(
        self, callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any]
                                                 | list[dict[str, Any]]]],
        args: Any, kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if endpoint not in UNLIMITED:
            if self.overall is not None:
                await self.overall.take()
            if self.per_chat and "chat_id" in data:
                await self._chat(str(data["chat_id"])).take()
        tries = 0
        while True:
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                wait = _seconds(exc)
                if wait > self.limits.max_retry_after_s:
                    raise  # too long to hold the request: the caller owes it to the outbox
                log.info("telegram %s: 429, resending in %.1f s", endpoint, wait)
                await asyncio.sleep(wait)
            except (TimedOut, BadRequest):
                raise  # the request may have landed; resending could show it twice
            except NetworkError:
                tries += 1
                if endpoint == "getUpdates" or tries >= self.limits.server_error_tries:
                    raise
                await asyncio.sleep(0.2 * 2 ** tries)

    def _chat(self, chat: str) -> Bucket:
        if chat not in self.chats:
            if len(self.chats) > 10_000:
                self.chats.clear()
            self.chats[chat] = Bucket(self.limits.per_chat_per_second, self.limits.chat_burst)
        return self.chats[chat]


def _seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22.2 deprecates the int form; accept both
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
