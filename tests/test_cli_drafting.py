"""`expertloop campaign status` and `campaign redraft` for a campaign whose models draft, as a
coordinator types them: what was drafted, what was set aside or paused, and drafting again."""

from __future__ import annotations

import json
from pathlib import Path

import redis.asyncio as aioredis
import yaml

from adapters.models.openai_drafter import OpenAIDrafter
from adapters.redis.store import RedisStore
from core.domain.timing import SystemClock
from core.service.drafting import DraftingLoop, DraftingSettings
from tests.conftest import KEY_ENV
from tests.emulators.openai import API_KEY, OpenAIEmulator
from tests.test_cli import CAMPAIGN, data_dir, run  # noqa: F401  (data_dir: a fixture)

ONE_TRY = DraftingSettings(tries=1, backoff_s=0.01, most_wait_s=0.05, poll_s=0.01)


def drafted_campaign(path: Path, models: OpenAIEmulator, items: int) -> Path:
    spec = yaml.safe_load(CAMPAIGN)
    spec["drafting"] = {"models": [{"name": "model-a", "base_url": models.url,
                                    "api_key_env": KEY_ENV}]}
    spec["items"] = [{"id": f"q{n}", "prompt": f"Question {n}?",
                      "drafts": [{"text": f"Given answer {n}.", "model": "given"}]}
                     for n in range(items)]
    path.write_text(yaml.safe_dump(spec))
    return path


async def draft_all(client: aioredis.Redis) -> None:
    """What a worker does, in this process: the real loop and openai client on the same Redis."""
    store, drafter = RedisStore(client), OpenAIDrafter()
    await DraftingLoop(store, store, drafter, SystemClock(), ONE_TRY).run_until_idle()
    await drafter.close()


async def test_status_shows_drafting_and_redraft_queues_what_was_set_aside(
        data_dir, tmp_path: Path, models: OpenAIEmulator) -> None:  # noqa: F811
    var, client = data_dir
    posted = run(var, "campaign", "post", str(drafted_campaign(tmp_path / "c.yaml", models, 3)))
    assert posted.returncode == 0, posted.stderr
    models.fail("server_error", times=1)  # one item's only try fails: it is set aside
    await draft_all(client)

    shown = run(var, "campaign", "status", "cli-demo")
    assert shown.returncode == 0, shown.stderr
    assert "drafting  pending 0  drafted 2  failed 1" in shown.stdout
    assert "expertloop campaign redraft cli-demo" in shown.stdout
    as_json = json.loads(run(var, "campaign", "status", "cli-demo", "--json").stdout)
    assert (as_json["drafting"]["pending"], as_json["drafting"]["failed"]) == (0, 1)

    again = run(var, "campaign", "redraft", "cli-demo")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "cli-demo: 1 item queued for drafting again"
    await draft_all(client)
    after = run(var, "campaign", "status", "cli-demo")
    assert "drafting  pending 0  drafted 3  failed 0" in after.stdout
    assert "redraft" not in after.stdout  # nothing left to do
    events = [json.loads(line) for line in run(var, "provenance", "events", "cli-demo",
                                               "--limit", "100").stdout.splitlines()]
    redraft = [e for e in events if e["type"] == "redraft"]
    assert len(redraft) == 1 and redraft[0]["actor_id"].startswith("cli")


async def test_status_shows_a_paused_endpoint_until_redraft(
        data_dir, tmp_path: Path, models: OpenAIEmulator) -> None:  # noqa: F811
    var, client = data_dir
    run(var, "campaign", "post", str(drafted_campaign(tmp_path / "c.yaml", models, 2)))
    models.fail("unauthorized", times=None)  # a revoked key: drafting waits for the coordinator
    await draft_all(client)

    paused = run(var, "campaign", "status", "cli-demo").stdout
    assert "drafting paused: model-a: 401" in paused
    assert "Incorrect API key provided: ***" in paused
    assert API_KEY not in paused and "sk-revoked-key" not in paused
    assert "expertloop campaign redraft cli-demo" in paused

    models.clear_faults()  # the coordinator fixed the key
    again = run(var, "campaign", "redraft", "cli-demo")
    assert again.returncode == 0, again.stderr
    await draft_all(client)
    status = json.loads(run(var, "campaign", "status", "cli-demo", "--json").stdout)
    assert status["drafting"]["drafted"] == 2 and status["drafting"]["paused"] is None


def test_redraft_of_a_campaign_without_models_is_a_one_line_error(
        data_dir, tmp_path: Path) -> None:  # noqa: F811
    var, _ = data_dir
    (tmp_path / "c.yaml").write_text(CAMPAIGN + "items:\n  - id: q1\n    prompt: Why?\n"
                                     "    drafts: [{text: one}, {text: two}]\n")
    assert run(var, "campaign", "post", str(tmp_path / "c.yaml")).returncode == 0

    refused = run(var, "campaign", "redraft", "cli-demo")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: campaign 'cli-demo' has no models drafting for it"
    plain = run(var, "campaign", "status", "cli-demo").stdout
    assert "drafting" not in plain  # no drafting block: no drafting line
    unknown = run(var, "campaign", "redraft", "nope")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "error: no campaign 'nope'"
