"""Telegram's flood limiter with the pacing lifted (as bench/asks.py runs it) sends without
taking the bot's shared slot in Redis; with the pacing kept, every call takes it."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from adapters.redis import keys as k
from adapters.redis.store import RedisStore
from adapters.telegram.limits import FloodLimiter, Limits

LIFTED = Limits(per_second=1e9, per_chat_per_second=1e9, chat_burst=10**9)


async def send(limiter: FloodLimiter) -> Any:
    async def call() -> dict[str, Any]:
        return {"message_id": 1}

    return await limiter.process_request(call, (), {}, "sendMessage", {"chat_id": 5}, None)


async def test_lifted_pacing_sends_without_the_shared_slot(
        store: RedisStore, client: aioredis.Redis) -> None:
    assert await send(FloodLimiter(store, LIFTED)) == {"message_id": 1}
    assert not await client.exists(k.pace_key("telegram:bot"))


async def test_kept_pacing_takes_the_shared_slot_on_every_send(
        store: RedisStore, client: aioredis.Redis) -> None:
    assert await send(FloodLimiter(store, Limits())) == {"message_id": 1}
    assert await client.exists(k.pace_key("telegram:bot"))
