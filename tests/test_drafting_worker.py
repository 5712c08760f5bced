"""Drafting in real `expertloop worker` processes: two workers on one redis-server draft one
campaign against the OpenAI emulator without drafting any (item, slot) twice, and a worker
killed (SIGKILL) with requests in flight loses nothing: once its hold runs out, another worker
drafts its jobs, and every item is offered once, whole."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.redis.store import RedisStore
from core.domain.campaigns import CampaignSpec
from core.domain.drafting import DraftingStatus
from core.domain.timing import SystemClock
from core.service.coordinator import Coordinator
from core.service.staging import spool_items
from tests.emulators.openai import API_KEY, OpenAIEmulator
from tests.faults.processes import Expertloop, RedisServer, environment, wait_until

KEY_ENV = "DRAFTING_TEST_MODEL_KEY"
QUICK = {"EXPERTLOOP_DRAFTING_POLL_S": "0.05", "EXPERTLOOP_WORKER_INTERVAL": "0.2",
         "EXPERTLOOP_MODEL_BACKOFF_S": "0.05", "EXPERTLOOP_MODEL_MOST_WAIT_S": "0.5",
         KEY_ENV: API_KEY}
# A worker that holds a job for 3 s + 2 × 0.05 s backoff + 2 × 0.5 s longest wait = about 4 s
SHORT_HOLD = {**QUICK, "EXPERTLOOP_MODEL_TIMEOUT_S": "3", "EXPERTLOOP_MODEL_TRIES": "1"}
DRAFTED_S = 60.0


@pytest.fixture
def coordinator(own_store: RedisStore) -> Coordinator:
    return Coordinator(own_store.roles(), SystemClock())


@pytest.fixture
async def models() -> AsyncIterator[OpenAIEmulator]:
    server = OpenAIEmulator(latency=0.02)
    await server.start()
    yield server
    server.clear_faults()
    await server.stop()


@pytest.fixture
def spawn(own_redis: RedisServer, tmp_path: Path) -> Iterator[Callable[..., Expertloop]]:
    """`expertloop worker` processes, each in a directory of its own (its log is there)."""
    started: list[Expertloop] = []

    def worker(**settings: str) -> Expertloop:
        workdir = tmp_path / f"worker-{len(started)}"
        workdir.mkdir()
        process = Expertloop("worker", environment(own_redis.url, **settings), workdir)
        started.append(process)
        return process

    yield worker
    for process in started:
        if process.process is not None:
            process.process.kill()
            process.process.wait()


async def post(coordinator: Coordinator, models: OpenAIEmulator, names: list[str],
               items: list[dict[str, Any]]) -> str:
    drafting = {"models": [{"name": name, "base_url": models.url, "api_key_env": KEY_ENV,
                            "params": {"temperature": 0.7}, "max_concurrency": 4}
                           for name in names]}
    spec = CampaignSpec.model_validate({"id": "drafted", "title": "Drafted by workers",
                                        "kind": "pairwise", "drafting": drafting})
    spool = spool_items(spec, items)
    campaign = await coordinator.post_campaign(spec, spool)
    spool.close()
    return campaign.id


async def drafting_of(coordinator: Coordinator, campaign_id: str) -> DraftingStatus:
    status = await coordinator.status(campaign_id)
    assert status.drafting is not None
    return status.drafting


async def all_drafted(coordinator: Coordinator, campaign_id: str, items: int) -> None:
    async def done() -> bool:
        status = await drafting_of(coordinator, campaign_id)
        return status.pending == 0 and status.drafted + status.failed == items

    await wait_until(done, "the workers draft every item", within=DRAFTED_S)


async def events_of(store: RedisStore, campaign_id: str, type_: str) -> list[dict[str, Any]]:
    stored = await store.read_events(campaign_id, 0, 100_000)
    return [body for body in (json.loads(e.body) for e in stored) if body["type"] == type_]


def model_text(models: OpenAIEmulator, name: str, prompt: str) -> str:
    return models.draft_for(name, [{"role": "user", "content": prompt}], temperature=0.7)


async def test_two_worker_processes_draft_every_slot_once(
        own_store: RedisStore, coordinator: Coordinator, models: OpenAIEmulator,
        spawn: Callable[..., Expertloop]) -> None:
    workers = [spawn(**QUICK), spawn(**QUICK)]
    for worker in workers:
        await worker.start()
        await wait_until(lambda w=worker: "worker running" in w.log.read_text(),  # type: ignore[misc]
                         "the worker starts", process=worker.process)
    prompts = {f"q{n}": f"Question {n}?" for n in range(60)}
    campaign_id = await post(coordinator, models, ["model-a", "model-b"],
                             [{"id": item, "prompt": text} for item, text in prompts.items()])

    await all_drafted(coordinator, campaign_id, len(prompts))

    drafted = await events_of(own_store, campaign_id, "drafted")
    slots = Counter((e["item"], e["payload"]["slot"]) for e in drafted)
    assert set(slots) == {(item, slot) for item in prompts for slot in (0, 1)}
    assert set(slots.values()) == {1}  # no slot drafted twice
    assert len(models.answered) == len(models.calls) == 2 * len(prompts)  # none asked twice
    ready = {e["item"]: e["payload"]["item"] for e in
             await events_of(own_store, campaign_id, "item_ready")}
    assert sorted(ready) == sorted(prompts)
    for item, whole in ready.items():
        assert sorted(d["text"] for d in whole["drafts"]) == sorted(
            model_text(models, name, prompts[item]) for name in ("model-a", "model-b"))
    assert await drafting_of(coordinator, campaign_id) == DraftingStatus(
        pending=0, drafted=len(prompts), failed=0)
    for worker in workers:
        await worker.stop()
        assert worker.process is not None and worker.process.returncode == 0


async def test_a_worker_killed_mid_request_loses_nothing(
        own_store: RedisStore, coordinator: Coordinator, models: OpenAIEmulator,
        spawn: Callable[..., Expertloop]) -> None:
    prompts = {f"q{n}": f"Question {n}?" for n in range(20)}
    given = {"text": "A draft that came with the file.", "model": "given"}
    campaign_id = await post(coordinator, models, ["model-a"], [
        {"id": item, "prompt": text, "drafts": [given]} for item, text in prompts.items()])
    models.fail("slow", times=None, delay=4.0)  # longer than the doomed worker waits
    doomed = spawn(**SHORT_HOLD)
    await doomed.start()
    await wait_until(lambda: len(in_flight(models)) == 4, "the worker sends 4 requests",
                     process=doomed.process)
    cut = sorted(in_flight(models))

    await doomed.kill()
    models.clear_faults()
    survivor = spawn(**QUICK)
    await survivor.start()
    await all_drafted(coordinator, campaign_id, len(prompts))

    drafted = await events_of(own_store, campaign_id, "drafted")
    assert Counter(e["item"] for e in drafted) == Counter(list(prompts))  # each once, none lost
    assert sorted(e["item"] for e in await events_of(own_store, campaign_id, "item_ready")) \
        == sorted(prompts)
    asked = Counter(prompt_of(call.body) for call in models.calls)
    assert sorted(text for text, n in asked.items() if n == 2) == cut  # the cut ones, again
    assert await drafting_of(coordinator, campaign_id) == DraftingStatus(
        pending=0, drafted=len(prompts), failed=0)
    ready = {e["item"]: e["payload"]["item"] for e in
             await events_of(own_store, campaign_id, "item_ready")}
    assert all(sorted(d["text"] for d in ready[item]["drafts"]) == sorted(
        [given["text"], model_text(models, "model-a", text)]) for item, text in prompts.items())


def in_flight(models: OpenAIEmulator) -> list[str]:
    return [prompt_of(call.body) for call in models.calls if call.status == 0 and call.body]


def prompt_of(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


async def test_a_worker_stopped_mid_request_exits_cleanly_and_its_jobs_are_drafted_later(
        own_store: RedisStore, coordinator: Coordinator, models: OpenAIEmulator,
        spawn: Callable[..., Expertloop]) -> None:
    """SIGTERM (a process runner's stop) must not wait for replies that take minutes: the
    worker gives them a grace, then cuts them off; another worker drafts them after the hold."""
    prompts = {f"q{n}": f"Question {n}?" for n in range(6)}
    campaign_id = await post(coordinator, models, ["model-a"], [
        {"id": item, "prompt": text, "drafts": [{"text": "Given."}]}
        for item, text in prompts.items()])
    # Replies slower than the worker's 5 s grace after a stop, and a timeout that cannot run
    # out within it either, with room for a busy machine to be late with the stop
    models.fail("slow", times=None, delay=30.0)
    stopped = spawn(**{**SHORT_HOLD, "EXPERTLOOP_MODEL_TIMEOUT_S": "15"})
    await stopped.start()
    await wait_until(lambda: len(in_flight(models)) == 4, "the worker sends 4 requests",
                     process=stopped.process)

    await stopped.stop()  # SIGTERM; SIGKILL only after 10 s
    assert stopped.process is not None and stopped.process.returncode == 0
    assert "drafting stopped with requests in flight" in stopped.log.read_text()
    models.clear_faults()
    await spawn(**QUICK).start()
    await all_drafted(coordinator, campaign_id, len(prompts))
    drafted = await events_of(own_store, campaign_id, "drafted")
    assert Counter(e["item"] for e in drafted) == Counter(list(prompts))
