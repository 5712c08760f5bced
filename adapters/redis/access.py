"""The Access role on Redis: web chat tokens, chat invites, the CSRF secret, and erasure."""

from __future__ import annotations

import secrets

from adapters.redis import keys as k
from adapters.redis.asks import skill_key
from adapters.redis.lua import OnRedis
from core.domain.experts import Expert
from core.ports import Erasure, ExpertTokens


class RedisAccess(OnRedis):
    """Only hashes of tokens are kept, never the tokens."""

    async def set_web_token(self, expert_id: str, token_hash: str | None) -> None:
        """One web chat link per expert: a new one revokes the old; None revokes it."""
        key = k.expert_key(expert_id)
        old = await self.client.hget(key, "web")
        async with self.client.pipeline(transaction=False) as pipe:
            if old:
                pipe.hdel(k.WEB_TOKENS, old)
            if token_hash:
                pipe.hset(k.WEB_TOKENS, token_hash, expert_id)
                pipe.hset(key, "web", token_hash)
            else:
                pipe.hdel(key, "web")
            await pipe.execute()

    async def expert_for_web_token(self, token_hash: str) -> str | None:
        found = await self.client.hget(k.WEB_TOKENS, token_hash)
        return str(found) if found else None

    async def expert_tokens(self, expert_id: str) -> ExpertTokens:
        key = k.expert_key(expert_id)
        web = await self.client.hget(key, "web")
        invites = [str(h) for h in await self.client.smembers(k.invites_of_key(expert_id))]
        async with self.client.pipeline(transaction=False) as pipe:
            for token_hash in invites:
                pipe.pttl(k.invite_key(token_hash))
            left = await pipe.execute()
        return ExpertTokens(str(web) if web else None,
                            {h: int(ms) for h, ms in zip(invites, left, strict=True) if ms > 0})

    async def shared_secret(self) -> str:
        """A random secret every process shares (for CSRF tokens), made once."""
        await self.client.set(k.SECRET, secrets.token_hex(32), nx=True)
        return str(await self.client.get(k.SECRET))

    async def save_invite(self, token_hash: str, expert_id: str, ttl_ms: int) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(k.invite_key(token_hash), expert_id, px=ttl_ms)
            pipe.sadd(k.invites_of_key(expert_id), token_hash)
            pipe.pexpire(k.invites_of_key(expert_id), ttl_ms)  # invites share one lifetime
            await pipe.execute()

    async def take_invite(self, token_hash: str) -> str | None:
        """GETDEL: two chats racing for one invite, only one gets the expert."""
        found = await self.client.getdel(k.invite_key(token_hash))
        if found:
            await self.client.srem(k.invites_of_key(str(found)), token_hash)
        return str(found) if found else None

    async def erase_expert(self, erasure: Erasure) -> str:
        """The pseudonym first (HSETNX: a racing erasure keeps the first), then the links, then
        the profile: a run cut short leaves the profile, so running it again finishes it."""
        field = f"e:{erasure.id_digest}"
        await self.client.hsetnx(k.ERASED, field, erasure.pseudonym)
        pseudonym = str(await self.client.hget(k.ERASED, field))
        tokens = await self.expert_tokens(erasure.expert_id)
        skills = await self._skills(erasure.expert_id)
        async with self.client.pipeline(transaction=False) as pipe:
            for skill in skills:  # out of the asks' skill index now, not at an ask's read
                pipe.srem(skill_key(skill), erasure.expert_id)
            for handle in erasure.handle_digests:
                pipe.hset(k.ERASED, f"h:{handle}", pseudonym)
            for identity in erasure.identities:
                pipe.hdel(k.IDENTITIES, identity)
            if tokens.web:
                pipe.hdel(k.WEB_TOKENS, tokens.web)
            for token_hash in tokens.invites:
                pipe.delete(k.invite_key(token_hash))
            pipe.delete(k.invites_of_key(erasure.expert_id))
            pipe.zrem(k.EXPERTS, erasure.expert_id)
            await pipe.execute()
        await self.client.delete(k.expert_key(erasure.expert_id))
        return pseudonym

    async def _skills(self, expert_id: str) -> list[str]:
        """The skills their profile holds (read before it goes: a rerun still finds it)."""
        raw = await self.client.hget(k.expert_key(expert_id), "profile")
        return Expert.model_validate_json(raw).skills if raw else []
