"""Campaign files: a malformed file is refused whole, naming the file, line and field at fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.domain.campaigns import CampaignSpec
from core.errors import InvalidCampaign, Problem
from core.service.campaign_files import read_campaign
from core.service.coordinator import Coordinator
from core.service.staging import spool_items

HEAD = """\
title: Which answer would you give a patient?
instructions: Pick the better one.
kind: pairwise
overlap: 2
"""
PAIR = '[{text: "Generally no", model: m1}, {text: "Yes", model: m2}]'


def yaml_items(count: int) -> str:
    return "items:\n" + "".join(
        f"  - id: q{i}\n    prompt: Question {i}?\n    drafts: {PAIR}\n" for i in range(count))


def jsonl_line(number: int) -> str:
    drafts = [{"text": "yes", "model": "m1"}, {"text": "no", "model": "m2"}]
    return json.dumps({"id": f"q{number}", "prompt": f"Question {number}?", "drafts": drafts})


def problems_of(tmp_path: Path, name: str, text: str,
                items_path: Path | None = None) -> list[Problem]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidCampaign) as caught:
        read_campaign(path, items_path)
    return caught.value.problems


def where(problem: Problem) -> tuple[str, int | None, str]:
    return problem.source, problem.line, problem.field()


def test_a_good_yaml_file_with_inline_items_parses(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(HEAD + yaml_items(3), encoding="utf-8")
    spec, spool = read_campaign(path)
    assert (spec.kind, spec.overlap, spec.title) == ("pairwise", 2,
                                                     "Which answer would you give a patient?")
    staged = [item for batch in spool.batches() for item in batch]
    assert [(item.id, item.n_drafts, item.line) for item in staged] == [
        ("q0", 2, 6), ("q1", 2, 9), ("q2", 2, 12)]
    assert json.loads(staged[0].json)["drafts"][0]["text"] == "Generally no"


def test_a_good_json_file_parses(tmp_path: Path) -> None:
    path = tmp_path / "good.json"
    spec_and_items = {"id": "rate-1", "title": "Rate it", "kind": "rate",
                      "scale": {"min": 1, "max": 7},
                      "pay": {"per_hour": 80, "currency": "EUR"},
                      "items": [{"id": "a", "prompt": "P", "drafts": [{"text": "t"}], "gold": 7}]}
    path.write_text(json.dumps(spec_and_items, indent=2), encoding="utf-8")
    spec, spool = read_campaign(path)
    assert spec.id == "rate-1" and spec.options().scale is not None
    assert spec.options().scale.max == 7 and spec.pay is not None and spec.pay.per_hour == 80
    assert [item.id for batch in spool.batches() for item in batch] == ["a"]


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    text = HEAD + "skills: [cardiology\n"
    (problem,) = problems_of(tmp_path, "broken.yaml", text)
    assert problem.source == "broken.yaml" and problem.line in (5, 6)
    assert str(problem).startswith(f"broken.yaml:{problem.line}: invalid YAML")


def test_json_syntax_error_names_its_line(tmp_path: Path) -> None:
    text = '{\n  "title": "T",\n  "kind": "write",\n  "overlap": 2,,\n  "items": []\n}\n'
    (problem,) = problems_of(tmp_path, "broken.json", text)
    assert (problem.source, problem.line) == ("broken.json", 4)
    assert "invalid JSON" in problem.msg


def test_unknown_kind_names_the_kind_line(tmp_path: Path) -> None:
    text = HEAD.replace("kind: pairwise", "kind: compare") + yaml_items(1)
    (problem,) = problems_of(tmp_path, "bad.yaml", text)
    assert where(problem) == ("bad.yaml", 3, "kind")
    assert "pairwise" in problem.msg


def test_pairwise_item_with_three_drafts_names_the_item_and_its_drafts(tmp_path: Path) -> None:
    third = "    drafts:\n      - {text: a}\n      - {text: b}\n      - {text: c}\n"
    text = HEAD + yaml_items(2) + "  - id: q2\n    prompt: Third?\n" + third
    (problem,) = problems_of(tmp_path, "bad.yaml", text)
    assert str(problem) == "bad.yaml:14: items.2.drafts: a pairwise item needs 2 drafts, got 3"
    assert text.splitlines()[13] == "    drafts:"


def test_missing_prompt_names_the_item(tmp_path: Path) -> None:
    text = HEAD + yaml_items(1) + f"  - id: q1\n    drafts: {PAIR}\n"
    (problem,) = problems_of(tmp_path, "bad.yaml", text)
    assert where(problem) == ("bad.yaml", 9, "items.1.prompt")
    assert "required" in problem.msg.lower()


def test_negative_overlap_names_its_line(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "bad.yaml",
                             HEAD.replace("overlap: 2", "overlap: -1") + yaml_items(1))
    assert where(problem) == ("bad.yaml", 4, "overlap")


def test_duplicate_item_ids_name_the_second(tmp_path: Path) -> None:
    text = HEAD + yaml_items(3).replace("id: q2", "id: q0")
    (problem,) = problems_of(tmp_path, "bad.yaml", text)
    assert where(problem) == ("bad.yaml", 12, "items.2.id")
    assert "'q0' appears twice" in problem.msg


def test_a_duplicate_after_another_problem_is_still_reported(tmp_path: Path) -> None:
    text = HEAD + yaml_items(3).replace("Question 0?", '""').replace("id: q2", "id: q1")
    problems = problems_of(tmp_path, "bad.yaml", text)
    assert [where(problem) for problem in problems] == [
        ("bad.yaml", 7, "items.0.prompt"), ("bad.yaml", 12, "items.2.id")]


def test_label_campaign_without_labels(tmp_path: Path) -> None:
    text = "title: Tag it\nkind: label\nitems:\n  - {id: a, prompt: P}\n"
    (problem,) = problems_of(tmp_path, "bad.yaml", text)
    assert problem.source == "bad.yaml" and problem.line is not None
    assert "needs `labels`" in problem.msg


LABEL_HEAD = "title: Tag it\nkind: label\nlabels:\n"
ONE_ITEM = "items:\n  - {id: a, prompt: P}\n"


def test_a_label_too_long_for_a_button_names_that_label(tmp_path: Path) -> None:
    """Slack shows at most 75 characters on a button; the label is refused, not cut."""
    longest, too_long = "x" * 75, "y" * 76
    text = LABEL_HEAD + f"  - ok\n  - {longest}\n  - {too_long}\n" + ONE_ITEM
    (problem,) = problems_of(tmp_path, "bad.yaml", text)
    assert where(problem) == ("bad.yaml", 6, "labels.2")
    assert "at most 75 characters; this one has 76" in problem.msg


def test_a_blank_label_is_refused(tmp_path: Path) -> None:
    text = LABEL_HEAD + "  - ok\n  - '  '\n" + ONE_ITEM
    (problem,) = problems_of(tmp_path, "bad.yaml", text)
    assert where(problem) == ("bad.yaml", 5, "labels.1")
    assert "needs some text" in problem.msg


def test_more_labels_than_a_menu_holds_names_labels(tmp_path: Path) -> None:
    text = LABEL_HEAD + "".join(f"  - label {n}\n" for n in range(101)) + ONE_ITEM
    (problem,) = problems_of(tmp_path, "bad.yaml", text)
    assert where(problem) == ("bad.yaml", 3, "labels")
    assert "at most 100 labels" in problem.msg and "got 101" in problem.msg
    hundred = LABEL_HEAD + "".join(f"  - label {n}\n" for n in range(100)) + ONE_ITEM
    (tmp_path / "good.yaml").write_text(hundred, encoding="utf-8")
    assert len(read_campaign(tmp_path / "good.yaml")[0].labels) == 100


def test_a_scale_of_more_than_a_hundred_points_names_scale(tmp_path: Path) -> None:
    """A long scale is a menu of its points; Slack's holds 100 options, and 0 to 100 is 101."""
    rate = ("title: Rate it\nkind: rate\nscale: {min: %d, max: 100}\n"
            "items:\n  - {id: a, prompt: P, drafts: [{text: t}]}\n")
    (problem,) = problems_of(tmp_path, "bad.yaml", rate % 0)
    assert where(problem) == ("bad.yaml", 3, "scale")
    assert "at most 100 points" in problem.msg and "0 to 100 is 101" in problem.msg
    (tmp_path / "good.yaml").write_text(rate % 1, encoding="utf-8")
    scale = read_campaign(tmp_path / "good.yaml")[0].scale
    assert scale is not None and (scale.min, scale.max) == (1, 100)


def test_pay_with_both_bases_names_pay(tmp_path: Path) -> None:
    text = HEAD + "pay:\n  per_task: 1.5\n  per_hour: 80\n" + yaml_items(1)
    (problem,) = problems_of(tmp_path, "bad.yaml", text)
    assert where(problem) == ("bad.yaml", 5, "pay")
    assert "exactly one of per_task or per_hour" in problem.msg


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = HEAD.replace("overlap: 2", "overlap: 0") + "time_limit_s: 1\n" + yaml_items(1)
    problems = problems_of(tmp_path, "bad.yaml", text)
    assert [where(problem) for problem in problems] == [
        ("bad.yaml", 4, "overlap"), ("bad.yaml", 5, "time_limit_s")]


def test_bad_last_line_of_a_long_jsonl_file_names_that_line(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    lines = [jsonl_line(number) for number in range(1, 40_001)]
    lines.append(json.dumps({"id": "q40001", "drafts": []}))
    items.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (problem,) = problems_of(tmp_path, "spec.yaml", HEAD, items_path=items)
    assert where(problem) == ("items.jsonl", 40_001, "prompt")
    assert str(problem).startswith("items.jsonl:40001: prompt: ")


def test_unparseable_jsonl_line_names_that_line(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text(jsonl_line(1) + "\n\n" + jsonl_line(2)[:-1] + "\n", encoding="utf-8")
    (problem,) = problems_of(tmp_path, "spec.yaml", HEAD, items_path=items)
    assert (problem.source, problem.line) == ("items.jsonl", 3)


def test_a_long_jsonl_file_spools_every_item_in_order(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("".join(jsonl_line(n) + "\n" for n in range(10_000)), encoding="utf-8")
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(HEAD, encoding="utf-8")
    _, spool = read_campaign(spec_path, items)
    staged = [item for batch in spool.batches() for item in batch]
    assert [item.id for item in staged] == [f"q{n}" for n in range(10_000)]
    assert [item.line for item in staged[:2]] == [1, 2] and staged[-1].line == 10_000
    assert spool.count == 10_000


async def test_a_refused_file_stores_nothing(tmp_path: Path, coordinator: Coordinator) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD + yaml_items(2) + "  - {id: q1, prompt: again, drafts: " + PAIR + "}\n",
                    encoding="utf-8")
    with pytest.raises(InvalidCampaign):
        read_campaign(path)
    assert await coordinator.list_campaigns() == []


async def test_posting_a_spool_with_problems_stores_nothing(coordinator: Coordinator) -> None:
    """The API builds its spool without reading a file; posting must still refuse it whole."""
    spec = CampaignSpec(id="c1", title="T", kind="pairwise")
    good = {"id": "q0", "prompt": "P", "drafts": [{"text": "a"}, {"text": "b"}]}
    spool = spool_items(spec, [good, {**good, "id": "q1", "drafts": [{"text": "a"}]}])
    with pytest.raises(InvalidCampaign) as caught:
        await coordinator.post_campaign(spec, spool)
    assert caught.value.problems[0].field() == "items.1.drafts"
    assert await coordinator.list_campaigns() == []


def test_approve_and_the_asks_id_belong_to_live_asks_and_are_refused_by_line(
        tmp_path: Path) -> None:
    text = HEAD.replace("kind: pairwise", "kind: approve") + yaml_items(1)
    (problem,) = problems_of(tmp_path, "bad.yaml", text)
    assert where(problem) == ("bad.yaml", 3, "kind") and "live asks" in problem.msg
    (problem,) = problems_of(tmp_path, "bad.yaml", "id: asks\n" + HEAD + yaml_items(1))
    assert where(problem) == ("bad.yaml", 1, "id") and "live asks' log" in problem.msg
