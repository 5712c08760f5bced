"""The Log role on Redis: a campaign's events in a stream, their seals in a hash, the head, and
the pseudonyms of erased experts the log is shown through."""

from __future__ import annotations

from typing import Any

from adapters.redis import keys as k
from adapters.redis.lua import OnRedis
from core.ports import LastCheckpoint
from core.privacy.pseudonyms import Erasures
from core.provenance.chain import START, ChainHead, Seal, StoredEvent


class RedisLog(OnRedis):
    """Events are appended by the Lua scripts that change state; reads are plain commands."""

    async def append_event(self, campaign_id: str, event_body: str) -> int:
        return int(await self._run("append", campaign_id, [event_body]))

    async def add_rationale(self, campaign_id: str, answer_seq: int, rationale: str,
                            event_body: str) -> bool:
        return bool(await self._run("add_rationale", campaign_id,
                                    [answer_seq, rationale, event_body]))

    async def late_rationales(self, campaign_id: str) -> dict[int, str]:
        found = await self.client.hgetall(k.campaign_key(campaign_id, "rationales"))
        return {int(seq): str(text) for seq, text in found.items()}

    async def read_events(self, campaign_id: str, after: int, count: int) -> list[StoredEvent]:
        entries = await self.client.xrange(k.campaign_key(campaign_id, "log"),
                                           min=f"0-{after + 1}", max="+", count=count)
        return [StoredEvent(int(entry_id.split("-")[1]), fields["e"])
                for entry_id, fields in entries]

    async def read_events_at(self, campaign_id: str, seqs: list[int]) -> list[StoredEvent]:
        log = k.campaign_key(campaign_id, "log")
        async with self.client.pipeline(transaction=False) as pipe:
            for seq in seqs:
                pipe.xrange(log, min=f"0-{seq}", max=f"0-{seq}", count=1)
            found = await pipe.execute()
        return [StoredEvent(seq, entries[0][1]["e"])
                for seq, entries in zip(seqs, found, strict=True) if entries]

    async def chain_head(self, campaign_id: str) -> ChainHead:
        raw = await self.client.get(k.campaign_key(campaign_id, "head"))
        if not raw:
            return START
        seq, digest = raw.split(" ")
        return ChainHead(int(seq), digest)

    async def last_seq(self, campaign_id: str) -> int:
        return int(await self.client.get(k.campaign_key(campaign_id, "seq")) or 0)

    async def save_seals(self, campaign_id: str, seals: list[Seal]) -> None:
        if not seals:
            return
        args: list[Any] = [seals[-1].seq, seals[-1].hash]
        for seal in seals:
            args += [seal.seq, seal.hash]
        await self._run("seal", campaign_id, args)

    async def read_seals(self, campaign_id: str, seqs: list[int]) -> dict[int, str]:
        if not seqs:
            return {}
        found = await self.client.hmget(k.campaign_key(campaign_id, "hashes"), seqs)
        return {seq: str(h) for seq, h in zip(seqs, found, strict=True) if h}

    async def erasures(self) -> Erasures:
        found = await self.client.hgetall(k.ERASED)
        return Erasures({f[2:]: str(p) for f, p in found.items() if f.startswith("e:")},
                        {f[2:]: str(p) for f, p in found.items() if f.startswith("h:")})

    async def save_checkpoint(self, campaign_id: str, last: LastCheckpoint) -> None:
        """Only ever forward: a slower worker's older checkpoint does not move it back."""
        key = k.campaign_key(campaign_id, "checkpoint")
        await self.client.eval(KEEP_LARGER, 1, key, last.size, last.at)

    async def last_checkpoint(self, campaign_id: str) -> LastCheckpoint | None:
        raw = await self.client.get(k.campaign_key(campaign_id, "checkpoint"))
        if not raw:
            return None
        size, at = raw.split(" ")
        return LastCheckpoint(int(size), int(at))


KEEP_LARGER = """
local old = redis.call('GET', KEYS[1])
if old and tonumber(string.match(old, '^%d+')) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2])
return 1
"""
