"""The Experts role on Redis: profiles, linked accounts, and the tallies beside the profile
(one hash per expert), with the pipeline steps the lease paths borrow to stay one round trip."""

from __future__ import annotations

from redis.asyncio.client import Pipeline

from adapters.redis import keys as k
from adapters.redis.asks import open_asks_key, skill_key
from adapters.redis.lua import OnRedis
from core.domain.experts import Expert
from core.ports import Credit, Route, Routing
from core.privacy.pseudonyms import digest


class RedisExperts(OnRedis):
    """Experts, each in the slot of their own hash."""

    async def save_expert(self, expert: Expert, *, create: bool) -> bool:
        key, profile = k.expert_key(expert.id), expert.model_dump_json()
        if create and await self.client.hexists(k.ERASED, f"e:{digest(expert.id)}"):
            return False  # an erased id is never reused: the log shows its events pseudonymised
        if create:
            saved = await self.client.hsetnx(key, "profile", profile)
        else:
            await self.client.hset(key, "profile", profile)
            saved = True
        if not saved:
            return False
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(k.EXPERTS, {expert.id: 0}, nx=True)
            for identity in expert.identities:
                pipe.hset(k.IDENTITIES, identity, expert.id)
            for skill in expert.skills:  # live asks read only the skills' holders
                pipe.sadd(skill_key(skill), expert.id)
            await pipe.execute()
        return True

    async def load_expert(self, expert_id: str) -> Expert | None:
        raw = await self.client.hget(k.expert_key(expert_id), "profile")
        return Expert.model_validate_json(raw) if raw else None

    async def expert_for_identity(self, identity: str) -> str | None:
        found = await self.client.hget(k.IDENTITIES, identity)
        return str(found) if found else None

    async def identities_on(self, channel: str) -> dict[str, str]:
        found: dict[str, str] = {}
        async for identity, expert_id in self.client.hscan_iter(k.IDENTITIES,
                                                                 match=f"{channel}:*"):
            found[str(identity).split(":", 1)[1]] = str(expert_id)
        return found

    async def routing(self, expert_id: str, days: list[str]) -> Routing:
        async with self.client.pipeline(transaction=False) as pipe:
            read_routing(pipe, expert_id, days)
            return routing_from(days, *await pipe.execute())

    async def credit(self, expert_id: str, credit: Credit) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            add_credit(pipe, expert_id, credit)
            await pipe.execute()

    async def expert_tallies(self, expert_id: str) -> dict[str, float]:
        found = await self.client.hgetall(k.expert_key(expert_id))
        return {name: float(value) for name, value in found.items()
                if name not in ("profile", "web")}


def read_routing(pipe: Pipeline, expert_id: str, days: list[str]) -> None:
    """Three commands: the profile and the day counts are fields of one hash; then the
    active campaigns, and whether the expert holds an open live ask (a key absent for most)."""
    pipe.hmget(k.expert_key(expert_id), ["profile", *(f"day:{day}" for day in days)])
    pipe.hvals(k.ROUTING)
    pipe.exists(open_asks_key(expert_id))


def add_credit(pipe: Pipeline, expert_id: str, credit: Credit) -> None:
    """Tallies beside the profile: answers per day (the daily cap), in all, time, pay."""
    key = k.expert_key(expert_id)
    pipe.hincrby(key, f"day:{credit.day}", 1)
    pipe.hincrby(key, "answers", 1)
    pipe.hincrbyfloat(key, "seconds", credit.seconds)
    if credit.currency:
        pipe.hincrbyfloat(key, f"earned:{credit.currency}", credit.pay)


def routing_from(days: list[str], expert_keys: list[str | None], routes: list[str],
                 open_asks: int = 0) -> Routing:
    profile, *counts = expert_keys
    return Routing(Expert.model_validate_json(profile) if profile else None,
                   {day: int(n or 0) for day, n in zip(days, counts, strict=True)},
                   [Route.model_validate_json(r) for r in routes], bool(open_asks))
