"""The Uploads role on Redis: one hash per channel, image SHA-256 -> the platform's file id."""

from __future__ import annotations

from adapters.redis.keys import PREFIX
from adapters.redis.lua import OnRedis

# Only compare-and-delete needs a script: forget an id only if it is still the one kept.
FORGET = """if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0"""


def uploads_key(channel: str) -> str:
    """A channel's uploads: hash of image SHA-256 -> the platform's file id. (Here rather than
    in keys.py only because this role came with a brief that owns this module alone.)"""
    return f"{PREFIX}:uploads:{channel}"


class RedisUploads(OnRedis):
    """HSETNX keeps the first upload when two processes upload the same image at once."""

    async def uploaded(self, channel: str, sha256: str) -> str | None:
        found = await self.client.hget(uploads_key(channel), sha256)
        return str(found) if found else None

    async def keep_uploaded(self, channel: str, sha256: str, file_id: str) -> str:
        if await self.client.hsetnx(uploads_key(channel), sha256, file_id):
            return file_id
        return await self.uploaded(channel, sha256) or file_id

    async def forget_uploaded(self, channel: str, sha256: str, file_id: str) -> None:
        await self.client.eval(FORGET, 1, uploads_key(channel), sha256, file_id)
