"""RedisStore: the core's Store port on Redis. Each method is one round trip; every change to a
campaign and the event that records it happen in one Lua script, so they cannot come apart."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from adapters.redis import keys as k
from adapters.redis.lua import Scripts
from core.answers import Lease
from core.campaigns import Campaign, CampaignState, CampaignStatus
from core.events import Event, iso_ms
from core.experts import Expert
from core.health import ChannelHealth, State
from core.ports import (
    Claim,
    Claimed,
    Credit,
    Erasure,
    ExpertTokens,
    Inboxed,
    LeaseView,
    Owed,
    Record,
    Recorded,
    Route,
    Routing,
    StagedItem,
)
from core.provenance import CHAIN_FIELDS, START, ChainHead, Seal, StoredEvent
from core.pseudonyms import Erasures, digest

INBOX_GROUP = "handlers"
COUNT_FIELDS = ("items", "answers", "done", "skipped", "flagged", "none_acceptable", "expired",
                "dead_requests")


class RedisStore:
    """Built from a client handed in; opens nothing itself."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.scripts = Scripts(client)

    async def _run(self, script: str, campaign_id: str, args: list[Any]) -> Any:
        return await self.scripts[script](keys=k.script_keys(campaign_id), args=args)

    # campaigns

    async def next_code(self) -> str:
        return _base36(int(await self.client.incr(k.CODE_COUNTER)))

    async def create_campaign(self, campaign: Campaign, event_body: str) -> bool:
        created = await self._run("meta", campaign.id,
                                  ["create", campaign.model_dump_json(), campaign.code, event_body])
        if not created:
            return False
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(k.CAMPAIGNS, {campaign.id: campaign.created_at})
            pipe.hset(k.CODES, campaign.code, campaign.id)
            await pipe.execute()
        return True

    async def load_campaign(self, campaign_id: str) -> Campaign | None:
        raw = await self.client.hget(k.campaign_key(campaign_id, "meta"), "campaign")
        return Campaign.model_validate_json(raw) if raw else None

    async def campaign_for_code(self, code: str) -> str | None:
        found = await self.client.hget(k.CODES, code)
        return str(found) if found else None

    async def list_campaigns(self) -> list[str]:
        return [str(c) for c in await self.client.zrange(k.CAMPAIGNS, 0, -1)]

    async def campaign_state(self, campaign_id: str) -> CampaignState | None:
        raw = await self.client.hget(k.campaign_key(campaign_id, "meta"), "state")
        return CampaignState(raw) if raw and raw != "importing" else None

    async def set_state(self, campaign_id: str, state: CampaignState, route: Route | None,
                        event_body: str) -> None:
        await self._run("meta", campaign_id, ["state", state.value, "", event_body])
        if route is not None:
            await self.client.hset(k.ROUTING, campaign_id, route.model_dump_json())
        else:
            await self.client.hdel(k.ROUTING, campaign_id)

    async def existing_items(self, campaign_id: str, ids: list[str]) -> set[str]:
        found = await self.client.hmget(k.campaign_key(campaign_id, "items"), ids)
        return {item for item, hit in zip(ids, found, strict=True) if hit is not None}

    async def append_items(self, campaign_id: str, items: list[StagedItem],
                           event_prefix: str) -> int:
        args: list[Any] = [len(items)]
        for item in items:
            body = f'{event_prefix},"item":{json.dumps(item.id)},"payload":{{"item":{item.json}}}}}'
            args += [item.id, item.n_drafts, int(item.gold), body]
        result = await self._run("append_items", campaign_id, args)
        if result[0] == "exists":
            raise KeyError(result[1])
        return int(result[1])

    async def status(self, campaign: Campaign, state: CampaignState) -> CampaignStatus:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(k.campaign_key(campaign.id, "counts"), list(COUNT_FIELDS))
            pipe.zcard(k.campaign_key(campaign.id, "expiry"))
            counts, live = await pipe.execute()
        values = {name: int(v or 0) for name, v in zip(COUNT_FIELDS, counts, strict=True)}
        return CampaignStatus(id=campaign.id, title=campaign.spec.title, kind=campaign.spec.kind,
                              state=state, in_progress=int(live), **values)

    # experts

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
            await pipe.execute()
        return True

    async def load_expert(self, expert_id: str) -> Expert | None:
        raw = await self.client.hget(k.expert_key(expert_id), "profile")
        return Expert.model_validate_json(raw) if raw else None

    async def expert_for_identity(self, identity: str) -> str | None:
        found = await self.client.hget(k.IDENTITIES, identity)
        return str(found) if found else None

    async def routing(self, expert_id: str, days: list[str]) -> Routing:
        async with self.client.pipeline(transaction=False) as pipe:
            self._read_routing(pipe, expert_id, days)
            return _routing(days, *await pipe.execute())

    def _read_routing(self, pipe: Pipeline, expert_id: str, days: list[str]) -> None:
        """Two commands: the profile and the day counts are fields of one hash."""
        pipe.hmget(k.expert_key(expert_id), ["profile", *(f"day:{day}" for day in days)])
        pipe.hvals(k.ROUTING)

    async def credit(self, expert_id: str, credit: Credit) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            self._credit(pipe, expert_id, credit)
            await pipe.execute()

    def _credit(self, pipe: Pipeline, expert_id: str, credit: Credit) -> None:
        """Tallies beside the profile: answers per day (the daily cap), in all, time, pay."""
        key = k.expert_key(expert_id)
        pipe.hincrby(key, f"day:{credit.day}", 1)
        pipe.hincrby(key, "answers", 1)
        pipe.hincrbyfloat(key, "seconds", credit.seconds)
        if credit.currency:
            pipe.hincrbyfloat(key, f"earned:{credit.currency}", credit.pay)

    async def expert_tallies(self, expert_id: str) -> dict[str, float]:
        found = await self.client.hgetall(k.expert_key(expert_id))
        return {name: float(value) for name, value in found.items()
                if name not in ("profile", "web")}

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

    async def erasures(self) -> Erasures:
        found = await self.client.hgetall(k.ERASED)
        return Erasures({f[2:]: str(p) for f, p in found.items() if f.startswith("e:")},
                        {f[2:]: str(p) for f, p in found.items() if f.startswith("h:")})

    async def erase_expert(self, erasure: Erasure) -> str:
        """The pseudonym first (HSETNX: a racing erasure keeps the first), then the links, then
        the profile: a run cut short leaves the profile, so running it again finishes it."""
        field = f"e:{erasure.id_digest}"
        await self.client.hsetnx(k.ERASED, field, erasure.pseudonym)
        pseudonym = str(await self.client.hget(k.ERASED, field))
        tokens = await self.expert_tokens(erasure.expert_id)
        async with self.client.pipeline(transaction=False) as pipe:
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

    # inboxes: platform requests kept until handled (a stream with one consumer group)

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

    async def note_channel(self, channel: str, state: State, reason: str) -> None:
        await self.client.hset(k.health_key(channel), mapping={"state": state, "reason": reason})

    async def count_trouble(self, channel: str, what: str, campaign_id: str | None) -> None:
        await self.client.hincrby(k.health_key(channel), what, 1)
        if campaign_id is not None:
            await self.client.hincrby(k.campaign_key(campaign_id, "counts"), what, 1)

    async def channel_health(self, channel: str) -> ChannelHealth:
        found = await self.client.hgetall(k.health_key(channel))
        return ChannelHealth.model_validate(found)

    async def identities_on(self, channel: str) -> dict[str, str]:
        found: dict[str, str] = {}
        async for identity, expert_id in self.client.hscan_iter(k.IDENTITIES,
                                                                 match=f"{channel}:*"):
            found[str(identity).split(":", 1)[1]] = str(expert_id)
        return found

    async def held_leases(self, expert_id: str, campaign_ids: list[str], now: int) -> list[str]:
        """Two round trips: each campaign's live lease of the expert, then when each runs out."""
        async with self.client.pipeline(transaction=False) as pipe:
            for campaign_id in campaign_ids:
                pipe.hget(k.campaign_key(campaign_id, "active"), expert_id)
            tokens = await pipe.execute()
        held = [(c, str(t)) for c, t in zip(campaign_ids, tokens, strict=True) if t]
        if not held:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for campaign_id, token in held:
                pipe.zscore(k.campaign_key(campaign_id, "expiry"), token)
            ends = await pipe.execute()
        return [token for (_, token), end in zip(held, ends, strict=True)
                if end is not None and end > now]

    async def swap_showings(self, campaign_id: str, token: str, showing: str | None,
                            ttl_ms: int) -> list[str]:
        key = k.showings_key(campaign_id, token)
        async with self.client.pipeline(transaction=True) as pipe:  # one step: MULTI/EXEC
            pipe.smembers(key)
            pipe.delete(key)
            if showing is not None:
                pipe.sadd(key, showing)
                pipe.pexpire(key, ttl_ms)
            replaced = (await pipe.execute())[0]
        return sorted((str(m) for m in replaced if m != showing), key=_by_number)

    async def showings(self, campaign_id: str, token: str) -> list[str]:
        found = await self.client.smembers(k.showings_key(campaign_id, token))
        return sorted((str(m) for m in found), key=_by_number)

    async def next_slot(self, name: str, interval_ms: int) -> int:
        return int(await self.scripts["pace"](keys=[k.pace_key(name)], args=[interval_ms]))

    # leases and answers

    async def claim(self, claim: Claim) -> Claimed | str:
        keys = k.script_keys(claim.campaign, k.seen_key(claim.campaign, claim.expert))
        extra = []
        credit = claim.credit
        if credit is not None:  # rides along: no round trip of its own
            extra.append(lambda pipe: self._credit(pipe, claim.expert, credit))
        async with self.client.pipeline(transaction=False) as pipe:
            replies = await self.scripts.in_pipeline(pipe, "claim", keys, [_claim_request(claim)],
                                                     *extra)
        reply, *item_body = replies[0]
        result = json.loads(reply)
        if result["status"] != "lease":
            return str(result.get("state") or result["status"])
        median = result.get("estimate_s")
        return Claimed(Lease.model_validate(result["lease"]), item_body[0],
                       float(median) if median is not None else None,
                       int(result.get("estimate_n") or 0))

    async def lease_view(self, campaign_id: str, token: str) -> LeaseView | None:
        found = await self._run("view", campaign_id, [token])
        if not found:
            return None
        lease_json, state, outcome, delivered, opened, item_body = found
        lease = Lease.model_validate_json(lease_json).model_copy(update={
            "state": state, "delivered_at": int(delivered) if delivered else None,
            "opened_at": int(opened) if opened else None})
        return LeaseView(lease, item_body, outcome or None)

    async def record(self, record: Record) -> tuple[Recorded, Routing]:
        """Record atomically, and read what the expert's next task needs in the same trip."""
        keys = k.script_keys(record.campaign)
        async with self.client.pipeline(transaction=False) as pipe:
            result, *routing = await self.scripts.in_pipeline(
                pipe, "record", keys, [_record_request(record)],
                lambda p: self._read_routing(p, record.expert, record.route_days))
        return _recorded(json.loads(result)), _routing(record.route_days, *routing)

    async def mark(self, campaign_id: str, token: str, what: str, at: int,
                   event_body: str, expert_id: str = "") -> bool:
        return bool(await self._run("mark", campaign_id,
                                    [token, what, at, event_body, expert_id]))

    async def expire_due(self, campaign_id: str, now: int) -> int:
        return int(await self._run("expire", campaign_id, [now, iso_ms(now), campaign_id, 500]))

    async def give_back(self, campaign_id: str, token: str, event_body: str) -> bool:
        return bool(await self._run("give_back", campaign_id, [token, event_body]))

    # the provenance log

    async def append_event(self, campaign_id: str, event_body: str) -> int:
        return int(await self._run("append", campaign_id, [event_body]))

    async def read_events(self, campaign_id: str, after: int, count: int) -> list[StoredEvent]:
        entries = await self.client.xrange(k.campaign_key(campaign_id, "log"),
                                           min=f"0-{after + 1}", max="+", count=count)
        return [StoredEvent(int(entry_id.split("-")[1]), fields["e"])
                for entry_id, fields in entries]

    async def chain_head(self, campaign_id: str) -> ChainHead:
        raw = await self.client.get(k.campaign_key(campaign_id, "head"))
        if not raw:
            return START
        seq, digest = raw.split(" ")
        return ChainHead(int(seq), digest)

    async def take_turn(self, job: str, ttl_ms: int) -> bool:
        return bool(await self.client.set(k.turn_key(job), "1", nx=True, px=ttl_ms))

    async def take_delivery(self, channel: str, event_id: str, ttl_ms: int) -> bool:
        return bool(await self.client.set(k.delivery_key(channel, event_id), "1", nx=True,
                                          px=ttl_ms))

    async def forget_delivery(self, channel: str, event_id: str) -> None:
        await self.client.delete(k.delivery_key(channel, event_id))

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

    async def read_events_at(self, campaign_id: str, seqs: list[int]) -> list[StoredEvent]:
        log = k.campaign_key(campaign_id, "log")
        async with self.client.pipeline(transaction=False) as pipe:
            for seq in seqs:
                pipe.xrange(log, min=f"0-{seq}", max=f"0-{seq}", count=1)
            found = await pipe.execute()
        return [StoredEvent(seq, entries[0][1]["e"])
                for seq, entries in zip(seqs, found, strict=True) if entries]


def _by_number(member: str) -> tuple[int, str]:
    """Message ids in the order they were sent (numbers, stored as text)."""
    return (int(member), member) if member.isdigit() else (0, member)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _routing(days: list[str], expert_keys: list[str | None], routes: list[str]) -> Routing:
    profile, *counts = expert_keys
    return Routing(Expert.model_validate_json(profile) if profile else None,
                   {day: int(n or 0) for day, n in zip(days, counts, strict=True)},
                   [Route.model_validate_json(r) for r in routes])


def _event_fields(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude=CHAIN_FIELDS, exclude_none=True)


def _claim_request(claim: Claim) -> str:
    """claim.lua's one argument: named fields, read there as `req.<name>`; the shuffle as
    letters (A = 0), which the script reads without parsing numbers."""
    return _request({"expert": claim.expert, "token": claim.token, "now": claim.now,
                     "expires_at": claim.expires_at, "day": claim.day,
                     "shuffle": "".join(map(string.ascii_uppercase.__getitem__, claim.shuffle)),
                     "want_gold": claim.want_gold, "overlap": claim.overlap,
                     "event": _event_fields(claim.event)})


def _record_request(record: Record) -> str:
    """record.lua's one argument; a field left out reads as nil there (JSON null would not)."""
    fields = {"token": record.token, "expert": record.expert, "now": record.now,
              "effect": record.effect, "decision": record.decision, "overlap": record.overlap,
              "time_limit_s": record.time_limit_s, "expect_drafts": record.expect_drafts,
              "event": _event_fields(record.event)}
    if record.opened_at is not None:
        fields["opened_at"] = record.opened_at
    return _request(fields)


def _request(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _recorded(result: dict[str, Any]) -> Recorded:
    """record.lua's answer, by name; `active` comes as text, as the event has it."""
    active = result.get("active")
    return Recorded(result["status"], result.get("seq"), result.get("answered_at"),
                    float(active) if active is not None else None, result.get("decision"),
                    result.get("day") or None, result.get("drafts"), bool(result.get("late")))


def _inboxed(entries: list[Any]) -> list[Inboxed]:
    return [Inboxed(id=entry_id, lane=fields["l"], body=fields["b"], attempts=int(fields["a"]),
                    kept_at=int(fields["t"])) for entry_id, fields in entries]
