"""The Health role on Redis: each channel's noted state and trouble counts."""

from __future__ import annotations

from adapters.redis import keys as k
from adapters.redis.lua import OnRedis
from core.service.health import ChannelHealth, State


class RedisHealth(OnRedis):
    """One hash per channel, written by whichever process tried the platform last."""

    async def note_channel(self, channel: str, state: State, reason: str) -> None:
        await self.client.hset(k.health_key(channel), mapping={"state": state, "reason": reason})

    async def count_trouble(self, channel: str, what: str, campaign_id: str | None) -> None:
        await self.client.hincrby(k.health_key(channel), what, 1)
        if campaign_id is not None:
            await self.client.hincrby(k.campaign_key(campaign_id, "counts"), what, 1)

    async def channel_health(self, channel: str) -> ChannelHealth:
        found = await self.client.hgetall(k.health_key(channel))
        return ChannelHealth.model_validate(found)
