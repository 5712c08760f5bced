"""Drafting: the worker asks each campaign's models for the drafts its items still need, and
records every request, reply, usage and cost in the log before the item reaches an expert.

Any number of workers draft side by side: jobs come from per-model queues in the store, which
also holds each model's concurrency and request rate across workers. A worker killed
mid-request loses nothing: its job is handed out again when its hold runs out, and the store
keeps one draft per slot, so a second reply is discarded and counted.

An item's images are read from the media store (a `Media` handed in: core reads no files) and
sent inline as data URLs; an image the store lacks sets the item aside, never drafts it blind."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from contextlib import suppress
from typing import Any

from pydantic import BaseModel, Field

from core.domain.campaigns import Campaign, CampaignState
from core.domain.drafting import DraftPlan, ModelSpec, data_url, text_sha
from core.domain.items import Draft, Item
from core.domain.media import Media
from core.errors import ModelError, NotFound
from core.ports import (
    Campaigns,
    Clock,
    Drafter,
    DraftJob,
    Drafts,
    DraftSaving,
    ModelCall,
    ModelReply,
)
from core.provenance.events import Actor, Event, body_json, canonical, iso_ms, open_body
from core.service.catalog import Catalog

log = logging.getLogger("expertloop.drafting")


class ImageUnavailable(Exception):
    """An item's image cannot be read: the item is set aside, not drafted without it."""


class DraftingSettings(BaseModel):
    """How patient drafting is with an endpoint."""

    timeout_s: float = Field(default=120.0, gt=0)  # one request, as the openai client counts it
    tries: int = Field(default=3, ge=1)  # for a 5xx, a timeout or a dropped connection
    backoff_s: float = Field(default=1.0, ge=0)  # doubling between those tries
    most_wait_s: float = Field(default=60.0, gt=0)  # the longest Retry-After waited out
    most_waits: int = Field(default=10, ge=0)  # 429s waited out before the item is set aside
    poll_s: float = Field(default=0.5, gt=0)  # how often an idle worker looks for new jobs

    def lease_ms(self) -> int:
        """How long a worker holds a job before another may take it: every try and wait."""
        one = self.timeout_s + self.backoff_s * (1 << self.tries)
        return round((one * self.tries + self.most_wait_s * 2) * 1000)


class Attempt:
    """One job's way through an endpoint's moods: what to ask next and what went wrong."""

    def __init__(self, spec: ModelSpec, messages: list[dict[str, Any]], logprobs: bool) -> None:
        self.spec, self.messages, self.logprobs = spec, messages, logprobs
        self.params = dict(spec.params)
        self.tries = self.waits = 0
        self.reseeded = False

    def call(self, timeout_s: float) -> ModelCall:
        return ModelCall(self.spec.base_url, self.spec.api_key_env, self.spec.endpoint_model,
                         self.messages, self.params, self.logprobs, timeout_s)

    def request_sha(self) -> str:
        """The exact request, as the record names it: {model, messages, params}; an image's
        bytes are in its data URL, so the hash covers the pixels sent."""
        request = {"model": self.spec.endpoint_model, "messages": self.messages,
                   "params": self.params}
        return hashlib.sha256(canonical(request)).hexdigest()

    def reseed(self) -> None:
        """Ask once more, differently: an identical pair of drafts teaches nothing."""
        seed = self.params.get("seed")
        self.params["seed"] = seed + 1 if isinstance(seed, int) else 1
        self.reseeded = True


class DraftingLoop:
    """Drafts for every campaign with a `drafting` block, a few jobs at a time per model."""

    def __init__(self, campaigns: Campaigns, drafts: Drafts, drafter: Drafter, clock: Clock,
                 settings: DraftingSettings | None = None, catalog: Catalog | None = None,
                 *, media: Media | None = None) -> None:
        self.campaigns, self.drafts, self.drafter = campaigns, drafts, drafter
        self.clock = clock
        self.media = media  # where items' images are read from; None: such items wait aside
        self.settings = settings or DraftingSettings()
        self.catalog = catalog or Catalog(campaigns)
        self._lanes: dict[tuple[str, str], set[asyncio.Task[None]]] = {}
        self._no_logprobs: set[tuple[str, str]] = set()  # endpoints that refused them once
        self._stopping = False  # a lane finishes its job but takes no next one

    async def run(self, stop: asyncio.Event) -> None:
        """Look for work every `poll_s` until stopped; lanes finish their job first."""
        while not stop.is_set():
            try:
                await self.start_lanes()
            except Exception as exc:  # the store is down, say: look again at the next poll
                log.warning("drafting: cannot look for work, retrying: %s", exc)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.poll_s)
        self._stopping = True
        await self.settle()

    async def run_until_idle(self) -> None:
        """Draft until nothing is queued and nothing runs (what a test or `demo` waits for)."""
        while await self.start_lanes() or self._running():
            await self.settle()

    async def settle(self) -> None:
        lanes = [lane for running in self._lanes.values() for lane in running]
        if lanes:
            await asyncio.gather(*lanes, return_exceptions=True)

    def _running(self) -> bool:
        return any(self._lanes.values())

    async def start_lanes(self) -> int:
        """Take what every model has room for and start a lane per job; returns lanes started."""
        started = 0
        for campaign in await self._drafting_campaigns():
            assert campaign.spec.drafting is not None
            for spec in campaign.spec.drafting.models:
                started += await self._fill(campaign, spec)
        return started

    async def _drafting_campaigns(self) -> list[Campaign]:
        found = []
        for campaign_id in await self.campaigns.list_campaigns():
            try:
                campaign = await self.catalog.campaign(campaign_id)
            except NotFound:
                continue
            if campaign.spec.drafting is None:
                continue
            state = await self.campaigns.campaign_state(campaign_id)
            if state is not None and state != CampaignState.closed:
                found.append(campaign)
        return found

    async def _fill(self, campaign: Campaign, spec: ModelSpec) -> int:
        lanes = self._lanes.setdefault((campaign.id, spec.name), set())
        room = spec.max_concurrency - len(lanes)
        if room <= 0:
            return 0
        jobs = await self.drafts.take_drafts(campaign.id, spec, self.clock.now_ms(),
                                             self.settings.lease_ms(), room)
        for job in jobs:
            lane = asyncio.create_task(self._lane(campaign, job))
            lanes.add(lane)
            lane.add_done_callback(lanes.discard)
        return len(jobs)

    async def _lane(self, campaign: Campaign, first: DraftJob) -> None:
        """Draft one job, then take the model's next while there is one: a freed slot is used
        at once rather than at the next poll."""
        assert campaign.spec.drafting is not None
        spec = campaign.spec.drafting.model(first.model)
        job = first
        while True:
            try:
                await self.draft(campaign, job)
            except Exception:  # the store went away, say: the job's hold runs out, it is redone
                log.exception("drafting %s/%s failed", campaign.id, job.item)
                return
            if self._stopping:
                return
            taken = await self.drafts.take_drafts(campaign.id, spec, self.clock.now_ms(),
                                                  self.settings.lease_ms(), 1)
            if not taken:
                return
            job = taken[0]

    async def draft(self, campaign: Campaign, job: DraftJob) -> str:
        """Ask the job's model until it drafts, or the failure is recorded; returns what the
        store made of it (recorded, ready, duplicate, aside, paused)."""
        drafting = campaign.spec.drafting
        assert drafting is not None
        spec = drafting.model(job.model)
        item = Item.model_validate_json(DraftPlan.model_validate_json(job.plan).base)
        try:
            images = await self._image_urls(item)
        except ImageUnavailable as exc:
            unsent = Attempt(spec, drafting.messages(item), False)
            return await self._fail(campaign.id, job, unsent, "image_unavailable", str(exc))
        attempt = Attempt(spec, drafting.messages(item, images),
                          (campaign.id, spec.name) not in self._no_logprobs)
        await self._until(job.not_before)
        while True:
            try:
                reply = await self.drafter.complete(attempt.call(self.settings.timeout_s))
            except ModelError as exc:
                if await self._again(campaign.id, attempt, exc):
                    continue
                return await self._fail(campaign.id, job, attempt, exc.kind, str(exc))
            if not reply.text.strip() or reply.finish_reason == "length":
                why = "cut off at the token limit" if reply.text.strip() else "empty"
                return await self._fail(campaign.id, job, attempt, "unfinished",
                                        f"the draft came back {why}", reply)
            outcome = await self.drafts.save_draft(
                campaign.id, self._saving(campaign, job, attempt, reply))
            if outcome != "identical":
                return outcome
            if attempt.reseeded:
                return await self._fail(campaign.id, job, attempt, "identical",
                                        "identical to another draft of the item, twice", reply)
            attempt.reseed()

    async def _image_urls(self, item: Item) -> list[str]:
        """The item's images as data URLs, read off the event loop (a store may be a disk or
        a bucket)."""
        if item.images and self.media is None:
            raise ImageUnavailable("the item has images and this worker has no media store")
        urls = []
        for index, image in enumerate(item.images, 1):
            assert self.media is not None and image.sha256 is not None and image.type
            try:
                data = await asyncio.to_thread(self.media.read, image.sha256)
            except FileNotFoundError:
                raise ImageUnavailable(f"image {index} ({image.sha256}) is not in the media "
                                       "store") from None
            urls.append(data_url(image.type, data))
        return urls

    async def _again(self, campaign_id: str, attempt: Attempt, exc: ModelError) -> bool:
        """Whether to ask again, after waiting as long as the failure asks."""
        settings = self.settings
        if exc.kind == "no_logprobs" and attempt.logprobs:
            attempt.logprobs = False
            self._no_logprobs.add((campaign_id, attempt.spec.name))
            return True
        if exc.kind == "rate_limited" and attempt.waits < settings.most_waits:
            attempt.waits += 1
            await asyncio.sleep(min(exc.retry_after or settings.backoff_s, settings.most_wait_s))
            return True
        if exc.kind == "unavailable" and attempt.tries < settings.tries - 1:
            attempt.tries += 1
            await asyncio.sleep(settings.backoff_s * (1 << (attempt.tries - 1)))
            return True
        return False

    async def _until(self, not_before: int) -> None:
        wait_ms = not_before - self.clock.now_ms()
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)

    def _saving(self, campaign: Campaign, job: DraftJob, attempt: Attempt,
                reply: ModelReply) -> DraftSaving:
        spec = attempt.spec
        version = f"{reply.model}@{reply.system_fingerprint}" if reply.system_fingerprint \
            else reply.model
        draft = Draft(text=reply.text, model=spec.name, model_version=version,
                      params=attempt.params, confidence=reply.confidence)
        payload = {"slot": job.slot, "draft": draft.model_dump(mode="json"),
                   "endpoint_model": spec.endpoint_model,
                   "system_fingerprint": reply.system_fingerprint, **_reply_facts(attempt, reply)}
        event = self._event(campaign.id, "drafted", "model", spec.name, job.item, payload)
        now = self.clock.now_ms()
        ready = open_body(campaign.id, "item_ready", now, "system", item=job.item)
        route = campaign.spec.route
        auto = route.auto_accept
        return DraftSaving(
            job, draft.model_dump_json(), text_sha(reply.text), body_json(event), ready,
            order=route.order, auto_at=auto.confidence_at_least if auto else None,
            auto_body=open_body(campaign.id, "auto_accepted", now, "model", actor_id=spec.name,
                                item=job.item) if auto else "")

    async def _fail(self, campaign_id: str, job: DraftJob, attempt: Attempt, kind: str,
                    reason: str, reply: ModelReply | None = None) -> str:
        """Record why no draft came: the item is set aside, or for an endpoint that refuses
        us (key, URL, model name), drafting for the campaign waits for the coordinator."""
        paused = f"{attempt.spec.name}: {reason}" if kind in ("unauthorized", "not_found") \
            else None
        payload: dict[str, object] = {"model": attempt.spec.name, "slot": job.slot,
                                      "kind": kind, "reason": reason,
                                      "tries": attempt.tries + 1, "waits": attempt.waits,
                                      "request_sha256": attempt.request_sha()}
        if reply is not None:
            payload.update(_reply_facts(attempt, reply), text=reply.text)
        event = self._event(campaign_id, "drafting_paused" if paused else "draft_failed",
                            "system", None, job.item, payload)
        log.log(logging.ERROR if paused else logging.WARNING, "drafting %s/%s by %s: %s",
                campaign_id, job.item, attempt.spec.name, reason)
        return await self.drafts.fail_draft(campaign_id, job, body_json(event), paused)

    def _event(self, campaign_id: str, type_: str, actor: Actor, actor_id: str | None,
               item: str, payload: dict[str, object]) -> Event:
        return Event(campaign=campaign_id, type=type_, at=iso_ms(self.clock.now_ms()),
                     actor=actor, actor_id=actor_id, item=item,
                     payload=payload)


def _reply_facts(attempt: Attempt, reply: ModelReply) -> dict[str, object]:
    """What the record keeps of every reply: the request's hash, timing, usage and cost."""
    facts: dict[str, object] = {
        "request_sha256": attempt.request_sha(), "response_model": reply.model,
        "tries": attempt.tries + 1, "waits": attempt.waits,
        "latency_ms": reply.latency_ms, "finish_reason": reply.finish_reason,
        "usage": {"prompt_tokens": reply.prompt_tokens,
                  "completion_tokens": reply.completion_tokens}}
    price = attempt.spec.price
    if price is not None:
        facts["cost"] = {"amount": price.cost(reply.prompt_tokens, reply.completion_tokens),
                         "currency": price.currency}
    return facts
