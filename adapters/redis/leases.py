"""The Leases role on Redis: claim and record each run in one Lua script, pipelined with the
expert reads or writes they need, so an answer and the next task cost one round trip (two with
replica acknowledgements on: adapters/redis/replicas.py)."""

from __future__ import annotations

import json
import string
from typing import Any

from adapters.redis import keys as k
from adapters.redis.experts import add_credit, read_routing, routing_from
from adapters.redis.log import RedisLog
from adapters.redis.replicas import ReplicaAcks
from core.domain.answers import Lease
from core.ports import Claim, Claimed, LeaseView, Recorded, Routing, Submission
from core.provenance.chain import CHAIN_FIELDS
from core.provenance.events import Event, iso_ms


class RedisLeases(RedisLog):
    """Leases live in their campaign's slot, so each script touches one slot. The log's reads
    find the body of a finished item whose event was archived (Redis no longer keeps it)."""

    replica_acks: ReplicaAcks | None = None  # EXPERTLOOP_REPLICA_ACKS; off: Redis's async copy

    async def claim(self, claim: Claim) -> Claimed | str:
        keys = k.script_keys(claim.campaign, k.seen_key(claim.campaign, claim.expert))
        extra = []
        credit = claim.credit
        if credit is not None:  # rides along: no round trip of its own
            extra.append(lambda pipe: add_credit(pipe, claim.expert, credit))
        async with self.client.pipeline(transaction=False) as pipe:
            replies = await self.scripts.in_pipeline(pipe, "claim", keys, [_claim_request(claim)],
                                                     *extra)
        reply, *item_body = replies[0]
        result = json.loads(reply)
        if result["status"] != "lease":
            return str(result.get("state") or result["status"])
        lease = Lease.model_validate(result["lease"])
        body = item_body[0] if item_body and item_body[0] else await self._shown_again(lease)
        median = result.get("estimate_s")
        prior = tuple(int(answer.split(":")[0]) for answer in
                      str(result.get("prior") or "").split(",") if answer)
        return Claimed(lease, body, float(median) if median is not None else None,
                       int(result.get("estimate_n") or 0), prior)

    async def _archived_body(self, campaign_id: str, item_seq: int) -> str:
        """A finished item's body, from the archive: its event left Redis with its segment."""
        found = await self.read_events_at(campaign_id, [item_seq])
        if not found:
            raise LookupError(f"item event {item_seq} of {campaign_id} is in no segment")
        return found[0].body

    async def _shown_again(self, lease: Lease) -> str:
        """A finished item handed out again (a coordinator sent it to adjudication): its body
        is kept in Redis again while it is in play, so later claims read it there."""
        body = await self._archived_body(lease.campaign, lease.item_seq)
        await self.client.hsetnx(k.archived_items_key(lease.campaign), str(lease.item_seq), body)
        return body

    async def to_adjudication(self, campaign_id: str, item: str, now: int,
                              event_body: str) -> int:
        return int(await self._run("to_adjudication", campaign_id, [item, now, event_body]))

    async def lease_view(self, campaign_id: str, token: str) -> LeaseView | None:
        found = await self._run("view", campaign_id, [token])
        if not found:
            return None
        lease_json, state, outcome, delivered, opened, *item_body = found
        lease = Lease.model_validate_json(lease_json).model_copy(update={
            "state": state, "delivered_at": int(delivered) if delivered else None,
            "opened_at": int(opened) if opened else None})
        body = item_body[0] if item_body and item_body[0] else await self._archived_body(
            campaign_id, lease.item_seq)
        return LeaseView(lease, body, outcome or None)

    async def record(self, record: Submission) -> tuple[Recorded, Routing]:
        """Record atomically, and read what the expert's next task needs in the same trip.
        With replica acknowledgements on, a stored answer (new or repeated) is returned only
        once enough replicas hold it; otherwise NotReplicated, and nothing is acknowledged."""
        keys = k.script_keys(record.campaign)
        async with self.client.pipeline(transaction=False) as pipe:
            result, *routing = await self.scripts.in_pipeline(
                pipe, "record", keys, [_record_request(record)],
                lambda p: read_routing(p, record.expert, record.route_days))
        recorded = _recorded(json.loads(result))
        if self.replica_acks is not None and recorded.status in ("recorded", "duplicate"):
            await self.replica_acks.confirm(record.campaign)
        return recorded, routing_from(record.route_days, *routing)

    async def mark(self, campaign_id: str, token: str, what: str, at: int,
                   event_body: str, expert_id: str = "") -> bool:
        return bool(await self._run("mark", campaign_id,
                                    [token, what, at, event_body, expert_id]))

    async def expire_due(self, campaign_id: str, now: int) -> int:
        return int(await self._run("expire", campaign_id, [now, iso_ms(now), campaign_id, 500]))

    async def give_back(self, campaign_id: str, token: str, event_body: str) -> bool:
        return bool(await self._run("give_back", campaign_id, [token, event_body]))

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


def _by_number(member: str) -> tuple[int, str]:
    """Message ids in the order they were sent (numbers, stored as text)."""
    return (int(member), member) if member.isdigit() else (0, member)


def _event_fields(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude=CHAIN_FIELDS, exclude_none=True)


def _claim_request(claim: Claim) -> str:
    """claim.lua's one argument: named fields, read there as `req.<name>`; the shuffle as
    letters (A = 0), which the script reads without parsing numbers."""
    fields = {"expert": claim.expert, "token": claim.token, "now": claim.now,
              "expires_at": claim.expires_at, "day": claim.day,
              "shuffle": "".join(map(string.ascii_uppercase.__getitem__, claim.shuffle)),
              "want_gold": claim.want_gold, "overlap": claim.overlap,
              "event": _event_fields(claim.event)}
    if claim.adjudicator:
        fields["adjudicator"] = True
    if claim.escalated_after is not None:
        fields["escalated_after"] = claim.escalated_after
    return _request(fields)


def _record_request(record: Submission) -> str:
    """record.lua's one argument; a field left out reads as nil there (JSON null would not)."""
    fields = {"token": record.token, "expert": record.expert, "now": record.now,
              "effect": record.effect, "decision": record.decision, "overlap": record.overlap,
              "time_limit_s": record.time_limit_s, "expect_drafts": record.expect_drafts,
              "event": _event_fields(record.event)}
    if record.opened_at is not None:
        fields["opened_at"] = record.opened_at
    if record.reason_if_escalated:
        fields["reason_if_escalated"] = True
    if record.judging is not None:
        fields["judging"] = {name: value for name, value in record.judging._asdict().items()
                             if value is not None}
    return _request(fields)


def _request(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _recorded(result: dict[str, Any]) -> Recorded:
    """record.lua's answer, by name; `active` comes as text, as the event has it."""
    active = result.get("active")
    return Recorded(result["status"], result.get("seq"), result.get("answered_at"),
                    float(active) if active is not None else None, result.get("decision"),
                    result.get("day") or None, result.get("drafts"), bool(result.get("late")))
