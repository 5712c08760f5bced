"""The Drafts role on Redis: per campaign and model a queue of drafting jobs and the jobs
running, a draft per slot kept exactly once, and the item written whole and offered in the same
script as its last draft (scripts take_drafts, save_draft, fail_draft, redraft)."""

from __future__ import annotations

import json

from adapters.redis import keys as k
from adapters.redis.lua import OnRedis
from core.domain.drafting import DraftingStatus, ModelSpec
from core.ports import DraftJob, DraftSaving

COUNTS = ("drafting_pending", "drafting_drafted", "drafting_failed", "drafts_discarded")


class RedisDrafts(OnRedis):
    async def take_drafts(self, campaign_id: str, model: ModelSpec, now: int, lease_ms: int,
                          want: int) -> list[DraftJob]:
        rpm = model.requests_per_minute
        interval = 60_000 / rpm if rpm else 0
        flat = await self._run("take_drafts", campaign_id, [
            model.name, now, lease_ms, want, model.max_concurrency, interval])
        jobs = []
        for at in range(0, len(flat), 3):
            item, slot = str(flat[at]).split("\t")
            jobs.append(DraftJob(item, int(slot), model.name, int(float(flat[at + 1])),
                                 str(flat[at + 2])))
        return jobs

    async def save_draft(self, campaign_id: str, saving: DraftSaving) -> str:
        job = saving.job
        request: dict[str, object] = {
            "job": f"{job.item}\t{job.slot}", "model": job.model, "draft": saving.draft,
            "text_sha": saving.text_sha, "event": saving.event_body, "ready": saving.ready_body,
            "order": saving.order}
        if saving.auto_at is not None:
            request.update(auto_at=saving.auto_at, auto=saving.auto_body)
        return str(await self._run("save_draft", campaign_id, [json.dumps(request)]))

    async def fail_draft(self, campaign_id: str, job: DraftJob, event_body: str,
                         paused: str | None) -> str:
        request: dict[str, object] = {"job": f"{job.item}\t{job.slot}", "model": job.model,
                                      "event": event_body}
        if paused is not None:
            request["paused"] = paused
        return str(await self._run("fail_draft", campaign_id, [json.dumps(request)]))

    async def redraft(self, campaign_id: str, event_body: str) -> int:
        return int(await self._run("redraft", campaign_id, [event_body]))

    async def drafting_status(self, campaign_id: str) -> DraftingStatus:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(k.campaign_key(campaign_id, "counts"), list(COUNTS))
            pipe.hget(k.campaign_key(campaign_id, "meta"), "drafting_paused")
            counts, paused = await pipe.execute()
        pending, drafted, failed, discarded = (int(value or 0) for value in counts)
        return DraftingStatus(pending=pending, drafted=drafted, failed=failed,
                              discarded=discarded, paused=str(paused) if paused else None)
