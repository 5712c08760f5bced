"""The Outbox role on Redis: one hash per channel of what it owes experts."""

from __future__ import annotations

import secrets

from adapters.redis import keys as k
from adapters.redis.lua import OnRedis
from core.ports import Owed


class RedisOutbox(OnRedis):
    """Each entry carries a random version, so a drain never deletes a newer putting."""

    async def outbox_put(self, channel: str, key: str, entry: str) -> None:
        """Stored as `<random version> <entry>`, so a drain tells a new putting from the one
        it sent even when both say the same thing."""
        await self.client.hset(k.outbox_key(channel), key, f"{secrets.token_hex(6)} {entry}")

    async def outbox_items(self, channel: str, limit: int) -> dict[str, Owed]:
        found: dict[str, Owed] = {}
        async for key, stored in self.client.hscan_iter(k.outbox_key(channel), count=limit):
            found[str(key)] = Owed(entry=str(stored).split(" ", 1)[1], version=str(stored))
            if len(found) >= limit:
                break
        return found

    async def outbox_done(self, channel: str, key: str, owed: Owed) -> bool:
        return bool(await self.scripts["outbox_done"](keys=[k.outbox_key(channel)],
                                                      args=[key, owed.version]))
