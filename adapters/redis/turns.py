"""The Turns role on Redis: paced send slots, one-at-a-time jobs, the agreement cache."""

from __future__ import annotations

from adapters.redis import keys as k
from adapters.redis.lua import OnRedis


class RedisTurns(OnRedis):
    """Turns are keys with a lifetime, on Redis's clock, so every process agrees."""

    async def next_slot(self, name: str, interval_ms: int) -> int:
        return int(await self.scripts["pace"](keys=[k.pace_key(name)], args=[interval_ms]))

    async def take_turn(self, job: str, ttl_ms: int) -> bool:
        return bool(await self.client.set(k.turn_key(job), "1", nx=True, px=ttl_ms))

    async def agreement_seq(self, campaign_id: str) -> int:
        return int(await self.client.get(k.campaign_key(campaign_id, "agreement")) or 0)

    async def save_agreement(self, campaign_id: str, seq: int,
                             counts: dict[str, tuple[int, int]]) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for expert_id, (agreed, compared) in counts.items():
                pipe.hset(k.expert_key(expert_id), mapping={f"agreed:{campaign_id}": agreed,
                                                            f"compared:{campaign_id}": compared})
            pipe.set(k.campaign_key(campaign_id, "agreement"), seq)
            await pipe.execute()
