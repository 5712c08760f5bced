"""The AskStore role on Redis: live asks, their offers and answers, and the queues of cards to
push, cards to update and callbacks to send. Every key is under the `asks` log's hash tag, so
each script touches one Cluster slot, and the log itself is the one `RedisLog` reads."""

from __future__ import annotations

import json
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

from adapters.redis import keys as k
from adapters.redis.lua import SCRIPTS, OnRedis
from core.domain.asks import ASKS_LOG, AskTo
from core.domain.experts import Expert
from core.ports import (
    AskAnswering,
    AskChange,
    AskJob,
    AskOffer,
    AskPosting,
    AskRecorded,
    AskRetry,
    HeldAsk,
    StoredAsk,
)

# Key names, all `el:{asks}:<name>` (keys.campaign_key of the asks log). Per ask:
# `ask:<id>` (hash: spec, callback, status, created_at, expires_at, stage, seqs, later,
# waiting, decided_at, decision, comment, by), `ask:<id>:answers` (expert -> AskAnswer JSON),
# `ask:<id>:offers` (expert -> token). Shared: `tokens` (token -> "<ask> <expert> <accounts>"),
# `x:<expert>` (zset: the expert's open offers by ask age; absent for most experts),
# `pending` (zset: ask -> deadline), `later` (asks with experts left to offer), `all` (zset:
# ask -> created), `call:<caller>:<call_id>` ("<ask> <body sha>", expiring), `marks` (hash:
# offered:/delivered:/opened:/rationale:<token> -> ms; pushing:<token> while a worker pushes
# it, or `next <channel> <ms>` while an answer's next card shows it), `cbretry` (zset:
# callback JSON -> when), and the streams `deliveries`, `notices` and `callbacks`, read by
# the group GROUP. The skill index: `skill:<skill>` (set of expert ids, added to whenever
# an expert is saved, removed at erasure) and `skills` ("1" once every expert saved before
# the index existed was put in it).
META = k.campaign_key(ASKS_LOG, "meta")
QUEUES = ("deliveries", "notices", "callbacks")
GROUP = "workers"
STALE_MS = 60_000  # an entry a consumer took this long ago and never finished is reclaimed
ASK_FIELDS = ("status", "spec", "created_at", "expires_at", "stage", "decided_at", "decision",
              "comment", "by", "waiting", "seqs", "later")


def ask_key(name: str) -> str:
    return k.campaign_key(ASKS_LOG, name)


def skill_key(skill: str) -> str:
    """Experts saved with `skill` (adapters/redis/experts.py adds them, erasure removes them).
    A superset: one who dropped the skill stays (the rules read each profile)."""
    return ask_key(f"skill:{skill}")


SKILLS_INDEXED = ask_key("skills")


def open_asks_key(expert_id: str) -> str:
    """The expert's open offers; the routing read checks it exists (adapters/redis/experts.py)."""
    return ask_key(f"x:{expert_id}")


class RedisAsks(OnRedis):
    """Each change is one script over the asks' slot; reads are pipelines."""

    _ask_scripts: dict[str, AsyncScript] | None = None

    def _ask_script(self, name: str) -> AsyncScript:
        """The ask scripts share helpers of their own (ask_common.lua) after common.lua."""
        if self._ask_scripts is None:
            self._ask_scripts = {}
        script = self._ask_scripts.get(name)
        if script is None:
            text = "\n".join((SCRIPTS / f"{part}.lua").read_text()
                             for part in ("common", "ask_common", name))
            script = self._ask_scripts[name] = self.client.register_script(text)
        return script

    async def _ask_run(self, name: str, args: list[Any]) -> Any:
        return await self._ask_script(name)(keys=[META], args=args)

    async def ask_experts(self) -> list[Expert]:
        return await self._profiles(await self.client.zrange(k.EXPERTS, 0, -1))

    async def _profiles(self, ids: list[str]) -> list[Expert]:
        async with self.client.pipeline(transaction=False) as pipe:
            for expert_id in ids:
                pipe.hget(k.expert_key(expert_id), "profile")
            found = await pipe.execute()
        return [Expert.model_validate_json(raw) for raw in found if raw]

    async def ask_audience(self, to: AskTo) -> list[Expert]:
        """The named experts, or the skills' holders through the index; everyone when `to`
        names neither."""
        if to.experts:
            return await self._profiles(sorted(set(to.experts)))
        if not to.skills:
            return await self.ask_experts()
        members = await self._holders(sorted(set(to.skills)))
        experts = await self._profiles(sorted(set().union(*members.values())))
        await self._drop_gone(members, experts)
        return experts

    async def _holders(self, skills: list[str]) -> dict[str, set[str]]:
        """Skill -> the ids in its set, once the index holds every expert."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(SKILLS_INDEXED)
            for skill in skills:
                pipe.smembers(skill_key(skill))
            indexed, *members = await pipe.execute()
        if not indexed:
            await self._index_skills()
            return await self._holders(skills)
        return dict(zip(skills, members, strict=True))

    async def _index_skills(self) -> None:
        """Experts saved before the index existed, put in it once (any process may do it too:
        SADD is idempotent)."""
        experts = await self.ask_experts()
        async with self.client.pipeline(transaction=False) as pipe:
            for expert in experts:
                for skill in expert.skills:
                    pipe.sadd(skill_key(skill), expert.id)
            pipe.set(SKILLS_INDEXED, "1")
            await pipe.execute()

    async def _drop_gone(self, members: dict[str, set[str]], experts: list[Expert]) -> None:
        """Out of each skill's set: ids whose profile is gone (erased; an erased id is never
        used again). One who merely dropped the skill stays: a save racing this read could
        add it back, and the rules check every profile's skills anyway."""
        found = {e.id for e in experts}
        gone = {skill: ids - found for skill, ids in members.items()}
        if any(gone.values()):
            async with self.client.pipeline(transaction=False) as pipe:
                for skill, ids in gone.items():
                    if ids:
                        pipe.srem(skill_key(skill), *ids)
                await pipe.execute()

    async def create_ask(self, posting: AskPosting) -> tuple[str, str]:
        request = {"id": posting.id, "call": posting.call, "sha": posting.body_sha,
                   "ttl_ms": posting.call_ttl_ms, "spec": posting.spec,
                   "callback": posting.callback, "created_at": posting.created_at,
                   "expires_at": posting.expires_at, "offers": _offers(posting.offers),
                   "later": json.dumps(list(posting.later)), "waiting": posting.waiting,
                   "body": posting.event_body}
        status, ask_id = await self._ask_run("ask_post", [json.dumps(request)])
        return str(status), str(ask_id)

    async def load_ask(self, ask_id: str) -> StoredAsk | None:
        found = await self._load([ask_id])
        return found[0] if found else None

    async def load_asks(self, ask_ids: list[str]) -> list[StoredAsk]:
        return await self._load(ask_ids) if ask_ids else []

    async def _load(self, ids: list[str]) -> list[StoredAsk]:
        async with self.client.pipeline(transaction=False) as pipe:
            for ask_id in ids:
                pipe.hmget(ask_key(f"ask:{ask_id}"), ASK_FIELDS)
                pipe.hvals(ask_key(f"ask:{ask_id}:answers"))
                pipe.hgetall(ask_key(f"ask:{ask_id}:offers"))
            found = await pipe.execute()
        asks = [_stored(ask_id, dict(zip(ASK_FIELDS, found[3 * i], strict=True)),
                        found[3 * i + 1], found[3 * i + 2]) for i, ask_id in enumerate(ids)]
        return [ask for ask in asks if ask is not None]

    async def list_asks(self, limit: int, status: str | None) -> list[StoredAsk]:
        found: list[StoredAsk] = []
        start, page = 0, max(limit, 100)
        while len(found) < limit:
            ids = await self.client.zrevrange(ask_key("all"), start, start + page - 1)
            if not ids:
                break
            found += [ask for ask in await self._load(ids)
                      if status is None or ask.status == status]
            start += page
        return found[:limit]

    async def held_asks(self, expert_id: str) -> list[HeldAsk]:
        return _held(await self._ask_run("ask_held", ["expert", expert_id, *ASK_FIELDS]))

    async def next_asks(self, expert_id: str, channel: str, now: int) -> list[HeldAsk]:
        return _held(await self._ask_run("ask_held", ["next", expert_id, f"{channel} {now}",
                                                      *ASK_FIELDS]))

    async def token_ask(self, token: str) -> HeldAsk | None:
        rows = await self._ask_run("ask_held", ["token", token, *ASK_FIELDS])
        if not rows:
            return None
        row = _held(rows)
        return row[0] if row else None

    async def offers_to_push(self, pairs: list[tuple[str, str]], now: int
                             ) -> dict[tuple[str, str], HeldAsk]:
        if not pairs:
            return {}
        rows = await self._ask_run("ask_push", [now, len(ASK_FIELDS), *ASK_FIELDS,
                                                *(part for pair in pairs for part in pair)])
        found = {}
        for channel, *row in rows:
            held = _held_row(row)
            if held is not None:
                found[held.token, channel] = held
        return found

    async def answer_ask(self, answering: AskAnswering) -> AskRecorded:
        return _recorded(await self._ask_run("ask_answer", [_answer_arg(answering)]))

    async def answer_ask_reading(self, answering: AskAnswering
                                 ) -> tuple[AskRecorded, Expert | None]:
        """The script by its SHA with the expert's profile read beside it: one round trip
        (the profile lives in the expert's own slot, so it cannot be read in the script)."""
        script, arg = self._ask_script("ask_answer"), _answer_arg(answering)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.execute_command("EVALSHA", script.sha, 1, META, arg)
            pipe.hget(k.expert_key(answering.expert), "profile")
            reply, profile = await pipe.execute(raise_on_error=False)
        if isinstance(reply, NoScriptError):  # the server restarted: load it, then run it
            reply = await script(keys=[META], args=[arg])
        if isinstance(reply, Exception):
            raise reply
        if isinstance(profile, Exception):
            raise profile
        return _recorded(reply), Expert.model_validate_json(profile) if profile else None

    async def change_ask(self, change: AskChange) -> str:
        request = {"ask": change.ask, "mode": change.mode, "now": change.now,
                   "stage": change.stage, "body": change.event_body, "comment": change.comment,
                   "new_stage": change.new_stage, "expires_at": change.expires_at,
                   "offers": _offers(change.offers), "waiting": change.waiting or "",
                   "later": None if change.later is None else json.dumps(list(change.later))}
        return str(await self._ask_run("ask_change", [json.dumps(request)]))

    async def due_asks(self, now: int, count: int) -> tuple[list[str], list[str]]:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(ask_key("pending"), "-inf", now, start=0, num=count)
            pipe.zrange(ask_key("later"), 0, count - 1)  # the longest unseen first
            due, later = await pipe.execute()
        return list(due), list(later)

    async def mark_ask(self, token: str, what: str, at: int, event_body: str, expert_id: str,
                       channel: str) -> bool:
        return bool(await self._ask_run("ask_mark",
                                        [token, what, at, event_body, expert_id, channel]))

    async def take_ask_jobs(self, queue: str, consumer: str, count: int, block_ms: int,
                            now: int) -> list[AskJob]:
        stream = ask_key(_queue(queue))
        if queue == "callbacks":
            await self._ask_run("ask_jobs", [now, count])
        try:
            return await self._take(stream, consumer, count, block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        await _make_group(self, stream)  # the first read ever: entries already queued count
        return await self._take(stream, consumer, count, block_ms)

    async def _take(self, stream: str, consumer: str, count: int, block_ms: int
                    ) -> list[AskJob]:
        reclaimed = await self.client.xautoclaim(stream, GROUP, consumer, STALE_MS, count=count)
        jobs = [AskJob(e, f) for e, f in reclaimed[1] if e and f]  # nil: deleted meanwhile
        if len(jobs) < count:
            block = block_ms if block_ms > 0 and not jobs else None  # BLOCK 0 waits for ever
            read = await self.client.xreadgroup(GROUP, consumer, {stream: ">"},
                                                count=count - len(jobs), block=block)
            jobs += [AskJob(e, f) for e, f in (read[0][1] if read else [])]
        return jobs

    async def finish_ask_jobs(self, queue: str, entries: list[str]) -> None:
        if not entries:
            return
        stream = ask_key(_queue(queue))
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xack(stream, GROUP, *entries)
            pipe.xdel(stream, *entries)
            await pipe.execute()

    async def finish_ask_job(self, queue: str, entry: str, again: AskRetry | None = None
                             ) -> bool:
        args: list[Any] = [_queue(queue), GROUP, entry]
        if again is not None:
            args += [json.dumps(again.fields), again.at, again.give_up_body, again.ask]
        return bool(await self._ask_run("ask_done", args))


async def _make_group(store: RedisAsks, stream: str) -> None:
    """The group reads from the stream's start, so entries queued before any worker came are
    delivered too; another process may make it first."""
    try:
        await store.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _queue(queue: str) -> str:
    if queue not in QUEUES:
        raise ValueError(f"no ask queue {queue!r}")
    return queue


def _offers(offers: tuple[AskOffer, ...]) -> list[dict[str, object]]:
    return [{"expert": o.expert, "token": o.token, "ids": list(o.identities)} for o in offers]


def _answer_arg(answering: AskAnswering) -> str:
    request = dict(answering._asdict())
    request["body"] = request.pop("event_body")
    request["comment"] = answering.comment or ""  # cjson reads null as a truthy userdata
    return json.dumps(request)


def _recorded(raw: str) -> AskRecorded:
    reply = json.loads(raw)
    return AskRecorded(status=reply["status"], ask=reply.get("ask"), seq=reply.get("seq"),
                       at=reply.get("at"), after_withdrawal=bool(reply.get("after_withdrawal")),
                       decided=reply.get("decided"), started=reply.get("started"))


def _ms(value: str | None) -> int | None:
    return int(value) if value else None


def _stored(ask_id: str, fields: dict[str, str | None], answers: list[str],
            offers: dict[str, str]) -> StoredAsk | None:
    if not fields.get("status"):
        return None
    return StoredAsk(
        id=ask_id, spec=fields["spec"] or "{}", status=str(fields["status"]),
        created_at=int(fields["created_at"] or 0), expires_at=int(fields["expires_at"] or 0),
        stage=int(fields["stage"] or 0), decided_at=_ms(fields["decided_at"]),
        decision=fields["decision"] or None, comment=fields["comment"] or None,
        by=json.loads(fields["by"]) if fields["by"] else [],
        answers=sorted(answers, key=lambda a: int(json.loads(a)["seq"])),
        waiting=fields["waiting"] or None,
        seqs=[int(s) for s in (fields["seqs"] or "").split(",") if s],
        offered=dict(offers), later=json.loads(fields["later"] or "[]"))


def _held(rows: list[list[str]]) -> list[HeldAsk]:
    return [held for held in map(_held_row, rows) if held is not None]


def _held_row(row: list[str]) -> HeldAsk | None:
    """ask_common.lua's held_row."""
    token, ask_id, expert, answered, offered, delivered, opened, *values = row
    ask = _stored(ask_id, dict(zip(ASK_FIELDS, values, strict=True)), [], {})
    if ask is None:
        return None
    return HeldAsk(token=token, expert=expert, ask=ask, offered_at=int(offered or 0),
                   delivered_at=_ms(delivered), opened_at=_ms(opened),
                   answered=bool(int(answered)))
