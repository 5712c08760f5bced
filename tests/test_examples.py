"""The example campaign files in examples/ parse, pass every check, and hold what they promise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from core.domain.kinds import Kind
from core.ports import StagedItem
from core.service.campaign_files import read_campaign
from core.service.coordinator import Coordinator
from core.service.staging import ItemSpool

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PAIRWISE_JSONL = EXAMPLES / "items-pairwise.jsonl"
KINDS = [kind.value for kind in Kind if kind != Kind.approve]  # approve: live asks only


def inline_count(path: Path) -> int:
    return len(yaml.safe_load(path.read_text(encoding="utf-8"))["items"])


def staged(spool: ItemSpool) -> list[StagedItem]:
    return [item for batch in spool.batches() for item in batch]


def test_there_is_one_example_per_kind() -> None:
    names = {path.name for path in EXAMPLES.iterdir()}
    assert {f"{kind}.yaml" for kind in KINDS} | {"items-pairwise.jsonl", "README.md"} <= names


@pytest.mark.parametrize("kind", KINDS)
def test_each_example_reads_and_matches_its_file_name(kind: str) -> None:
    path = EXAMPLES / f"{kind}.yaml"
    spec, spool = read_campaign(path)
    try:
        assert spec.kind == kind
        assert spec.id == f"demo-{kind}"
        assert 4 <= spool.count <= 8
        assert spool.count == inline_count(path)
        items = staged(spool)
        assert len({item.id for item in items}) == len(items)
        assert any(item.n_drafts for item in items)
        assert any(item.gold for item in items), "every kind supports gold; show it"
    finally:
        spool.close()


@pytest.mark.parametrize("kind", KINDS)
def test_each_example_has_the_documented_header_and_rich_items(kind: str) -> None:
    path = EXAMPLES / f"{kind}.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#")
    assert f"expertloop campaign post examples/{kind}.yaml" in text
    header = text.split("\nid:", 1)[0]
    for key in ("overlap", "skills", "pay", "time_limit_s", "gold_rate"):
        assert key in header
    items = yaml.safe_load(text)["items"]
    assert all(item.get("meta") for item in items)
    drafts = [draft for item in items for draft in item.get("drafts", [])]
    assert all(draft.get("model") and draft.get("model_version") and draft.get("params")
               for draft in drafts)
    assert 2 <= len({draft["model"] for draft in drafts}) <= 3


def test_pairwise_with_its_json_lines_items() -> None:
    path = EXAMPLES / "pairwise.yaml"
    spec, spool = read_campaign(path, items_path=PAIRWISE_JSONL)
    try:
        lines = PAIRWISE_JSONL.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 20
        assert spec.kind == Kind.pairwise
        assert spool.count == inline_count(path) + 20
        ids = [item.id for item in staged(spool)]
        assert len(set(ids)) == len(ids)
        assert ids[-20:] == [json.loads(line)["id"] for line in lines]
    finally:
        spool.close()


async def test_the_drafting_example_posts_with_local_models_ready_to_draft(
        coordinator: Coordinator) -> None:
    """examples/drafting.yaml, the file the README points a local vLLM or Ollama user at."""
    spec, spool = read_campaign(EXAMPLES / "drafting.yaml")
    items = staged(spool)
    try:
        assert spec.drafting is not None and spec.drafting.when == "missing"
        urls = {model.base_url for model in spec.drafting.models}
        assert urls == {"http://localhost:8000/v1", "http://localhost:11434/v1"}
        assert all(model.params and model.requests_per_minute for model in spec.drafting.models)
        assert any(model.price for model in spec.drafting.models)
        assert {item.conversation for item in items} == {True, False}  # both kinds of prompt
        assert all(item.plan for item in items)  # every item waits for a model draft
        campaign = await coordinator.post_campaign(spec, spool)
    finally:
        spool.close()
    status = await coordinator.status(campaign.id)
    assert status.drafting is not None and status.drafting.pending == len(items)
    assert status.conversations == 2
