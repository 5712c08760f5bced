"""The Inbox role on Redis: platform requests kept in a stream with one consumer group until
handled, and markers that drop a platform's resends."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from adapters.redis import keys as k
from adapters.redis.lua import OnRedis
from core.ports import Inboxed

INBOX_GROUP = "handlers"


class RedisInbox(OnRedis):
    """One stream per channel, its keys under one hash tag."""

    async def inbox_put(self, channel: str, request_id: str, lane: str, body: str,
                        ttl_ms: int, at: int) -> bool:
        keys = [k.inbox_key(channel, "stream"), k.inbox_key(channel, f"seen:{request_id}")]
        return bool(await self.scripts["inbox_put"](keys=keys, args=[ttl_ms, lane, body, at]))

    async def inbox_take(self, channel: str, consumer: str, count: int,
                         block_ms: int) -> list[Inboxed]:
        stream = k.inbox_key(channel, "stream")
        try:
            read = await self.client.xreadgroup(INBOX_GROUP, consumer, {stream: ">"},
                                                count=count, block=block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._inbox_group(stream)
            return []
        return _inboxed(read[0][1] if read else [])

    async def inbox_reclaim(self, channel: str, consumer: str, count: int,
                            stale_ms: int) -> list[Inboxed]:
        stream = k.inbox_key(channel, "stream")
        try:
            claimed = await self.client.xautoclaim(stream, INBOX_GROUP, consumer, stale_ms,
                                                   count=count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._inbox_group(stream)
            return []
        return _inboxed([entry for entry in claimed[1] if entry and entry[1]])  # nil: deleted

    async def _inbox_group(self, stream: str) -> None:
        try:
            await self.client.xgroup_create(stream, INBOX_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # another process made it first
                raise

    async def inbox_done(self, channel: str, entry_id: str) -> None:
        stream = k.inbox_key(channel, "stream")
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(stream, INBOX_GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def inbox_retry(self, channel: str, entry: Inboxed, max_attempts: int) -> bool:
        keys = [k.inbox_key(channel, "stream"), k.inbox_key(channel, "dead")]
        args = [INBOX_GROUP, entry.id, entry.lane, entry.body, entry.attempts + 1, max_attempts,
                entry.kept_at]
        return bool(await self.scripts["inbox_retry"](keys=keys, args=args))

    async def inbox_size(self, channel: str) -> int:
        return int(await self.client.xlen(k.inbox_key(channel, "stream")))

    async def take_delivery(self, channel: str, event_id: str, ttl_ms: int) -> bool:
        return bool(await self.client.set(k.delivery_key(channel, event_id), "1", nx=True,
                                          px=ttl_ms))

    async def forget_delivery(self, channel: str, event_id: str) -> None:
        await self.client.delete(k.delivery_key(channel, event_id))


def _inboxed(entries: list[Any]) -> list[Inboxed]:
    return [Inboxed(id=entry_id, lane=fields["l"], body=fields["b"], attempts=int(fields["a"]),
                    kept_at=int(fields["t"])) for entry_id, fields in entries]
