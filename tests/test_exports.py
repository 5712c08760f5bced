"""Every export format loads as its consumer expects: `datasets` reads each file, and the rows
have the column and message shapes TRL's and OpenAI's dataset documentation define."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.redis.embedded import EmbeddedRedis
from adapters.redis.store import RedisStore
from core.domain.campaigns import Campaign
from core.domain.cards import Card
from core.domain.kinds import Choose, Correct, Decision, NoneAcceptable, Rank, Rate, Verify, Write
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.reports.exports import Export, ExportSummary, UnknownFormat, edit_distance
from core.reports.trainers import ExportOptions
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.campaign_play import add_expert, draft_index, post_items, work

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
FORBIDDEN = {"images", "tools", "input_ids"}


async def export(ledger: Ledger, campaign: Campaign, fmt: str, path: Path,
                 **options: Any) -> ExportSummary:
    run = Export(ledger, campaign, fmt, ExportOptions(**options))
    with path.open("w", encoding="utf-8") as out:
        async for line in run.lines():
            out.write(line)
    return run.summary


def load(path: Path, tmp_path: Path) -> Any:
    from datasets import load_dataset
    return load_dataset("json", data_files=str(path), split="train",
                        cache_dir=str(tmp_path / "hf"))


def scripted(*decisions: Decision | None) -> Any:
    queue = list(decisions)
    return lambda card: queue.pop(0)


def assert_trl_strings(rows: list[dict[str, Any]], *completions: str) -> None:
    for row in rows:
        assert isinstance(row["prompt"], str) and row["prompt"]
        for name in completions:
            assert isinstance(row[name], str) and row[name][:1] in (" ", "\n")
        assert not FORBIDDEN & set(row)


def assert_conversation(prompt: Any, *replies: Any) -> None:
    assert prompt[-1]["role"] == "user" and {m["role"] for m in prompt} <= {"system", "user"}
    for reply in replies:
        assert [m["role"] for m in reply] == ["assistant"]


async def pairwise_campaign(service: Service, coordinator: Coordinator,
                            clock: SetClock) -> Campaign:
    items = [{"id": f"q{n}", "prompt": f"Question {n}?",
              "drafts": [{"text": f"Good answer {n}.", "model": "good", "model_version": "v2"},
                         {"text": f"Poor answer {n}.", "model": "poor"}]} for n in range(4)]
    items.append({"id": "same", "prompt": "Same?", "drafts": [{"text": "Same.", "model": "a"},
                                                             {"text": "Same.", "model": "b"}]})
    campaign = await post_items(coordinator, items, kind="pairwise")
    await add_expert(coordinator, "ann")

    def decide(card: Card) -> Decision:
        if card.item == "q2":
            return Choose(choice="tie")
        if card.item == "q3":
            return NoneAcceptable()
        if card.item == "same":
            return Choose(choice="A")
        return Choose(choice=draft_index(card, f"Good answer {card.item[1:]}."))  # type: ignore

    await work(service, clock, "ann", decide)
    return campaign


async def test_preference_rows_load_in_trl_standard_form(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    campaign = await pairwise_campaign(service, coordinator, clock)
    path = tmp_path / "pref.jsonl"

    summary = await export(ledger, campaign, "preference", path)

    data = load(path, tmp_path)
    assert {"prompt", "chosen", "rejected"} <= set(data.column_names)
    rows = list(data)
    assert_trl_strings(rows, "chosen", "rejected")
    assert [r["chosen"] for r in rows] == [" Good answer 0.", " Good answer 1."]
    assert {r["chosen_model"] for r in rows} == {"good@v2"} and rows[0]["rejected_model"] == "poor"
    assert all(r["answer_hash"] and r["expert"] == "ann" for r in rows)
    assert summary.rows == 2 and summary.tasks == 5
    assert summary.excluded == {"tie": 1, "none_acceptable": 1, "identical": 1}


async def test_preference_rows_in_conversational_form(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    campaign = await pairwise_campaign(service, coordinator, clock)
    path = tmp_path / "pref.jsonl"

    await export(ledger, campaign, "preference", path, conversational=True)

    rows = list(load(path, tmp_path))
    assert len(rows) == 2
    for row in rows:
        assert_conversation(row["prompt"], row["chosen"], row["rejected"])
        assert row["chosen"][0]["content"] != row["rejected"][0]["content"]


async def test_openai_dpo_lines_have_exactly_openais_keys(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    campaign = await pairwise_campaign(service, coordinator, clock)
    path = tmp_path / "dpo.jsonl"

    summary = await export(ledger, campaign, "openai-dpo", path)

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == summary.rows == 2
    for line in lines:
        assert set(line) == {"input", "preferred_output", "non_preferred_output"}
        assert line["input"]["messages"][-1]["role"] == "user"
        assert_conversation(line["input"]["messages"], line["preferred_output"],
                            line["non_preferred_output"])
    assert lines[0]["preferred_output"][0]["content"] == "Good answer 0."
    assert len(load(path, tmp_path)) == 2


async def test_rank_gives_every_implied_pair_or_best_over_worst(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    drafts = [{"text": f"Draft {n}.", "model": f"m{n}"} for n in range(3)]
    campaign = await post_items(coordinator, [{"id": "q", "prompt": "Rank?", "drafts": drafts}],
                                kind="rank")
    await add_expert(coordinator, "ann")
    await work(service, clock, "ann", lambda card: Rank(order=[
        draft_index(card, f"Draft {n}.") for n in range(3)]))

    await export(ledger, campaign, "preference", tmp_path / "all.jsonl")
    await export(ledger, campaign, "preference", tmp_path / "bw.jsonl", pairs="best_worst")

    pairs = [(r["chosen_model"], r["rejected_model"]) for r in load(tmp_path / "all.jsonl",
                                                                      tmp_path)]
    assert pairs == [("m0", "m1"), ("m0", "m2"), ("m1", "m2")]
    best = list(load(tmp_path / "bw.jsonl", tmp_path))
    assert [(r["chosen"], r["rejected"]) for r in best] == [(" Draft 0.", " Draft 2.")]


async def correct_campaign(service: Service, coordinator: Coordinator,
                           clock: SetClock) -> Campaign:
    items = [{"id": f"q{n}", "prompt": f"Fix {n}", "drafts": [{"text": "The dose is 50 mg.",
                                                               "model": "gpt-x"}]}
             for n in range(2)]
    campaign = await post_items(coordinator, items, kind="correct")
    await add_expert(coordinator, "ann")
    await work(service, clock, "ann", scripted(Correct(text="The dose is 5 mg daily."),
                                               Correct(text="The dose is 50 mg.")))
    return campaign


async def test_corrections_are_preferred_over_their_draft_and_feed_sft(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    campaign = await correct_campaign(service, coordinator, clock)

    pref = await export(ledger, campaign, "preference", tmp_path / "p.jsonl")
    sft = await export(ledger, campaign, "sft", tmp_path / "s.jsonl")
    pc = await export(ledger, campaign, "sft", tmp_path / "pc.jsonl",
                      sft_shape="prompt_completion")

    (row,) = list(load(tmp_path / "p.jsonl", tmp_path))
    assert (row["chosen"], row["rejected"]) == (" The dose is 5 mg daily.", " The dose is 50 mg.")
    assert row["chosen_model"] == "expert" and pref.excluded == {"identical": 1}
    messages = [r["messages"] for r in load(tmp_path / "s.jsonl", tmp_path)]
    assert sft.rows == 2 and [m["role"] for m in messages[0]] == ["user", "assistant"]
    assert messages[0][1]["content"] == "The dose is 5 mg daily."
    rows = list(load(tmp_path / "pc.jsonl", tmp_path))
    assert pc.rows == 2 and set(rows[0]) >= {"prompt", "completion"}
    assert_trl_strings(rows, "completion")


async def test_kto_labels_are_booleans_accept_and_override(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    items = [{"id": f"q{n}", "prompt": f"Check {n}", "drafts": [{"text": f"Claim {n}.",
                                                                 "model": "m"}]}
             for n in range(3)]
    campaign = await post_items(coordinator, items, kind="verify")
    await add_expert(coordinator, "ann")
    await work(service, clock, "ann", scripted(
        Verify(verdict="accept"), Verify(verdict="override", text="Better claim.",
                                         reason="wrong"), None))

    summary = await export(ledger, campaign, "kto", tmp_path / "k.jsonl")
    sft = await export(ledger, campaign, "sft", tmp_path / "s.jsonl")

    raw = [json.loads(line) for line in (tmp_path / "k.jsonl").read_text().splitlines()]
    assert [r["label"] for r in raw] == [True, False, True]
    assert [r["completion"] for r in raw] == [" Claim 0.", " Claim 1.", " Better claim."]
    data = load(tmp_path / "k.jsonl", tmp_path)
    assert str(data.features["label"].dtype) == "bool"
    assert_trl_strings(list(data), "completion")
    assert summary.labels == {"true": 2, "false": 1} and summary.notes == []
    assert summary.excluded == {"skipped": 1}
    assert sft.rows == 1 and sft.excluded == {"accepted_draft": 1, "skipped": 1}


async def test_kto_summary_says_when_one_class_only(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    items = [{"id": "q", "prompt": "Check", "drafts": [{"text": "Fine.", "model": "m"}]}]
    campaign = await post_items(coordinator, items, kind="verify")
    await add_expert(coordinator, "ann")
    await work(service, clock, "ann", lambda card: Verify(verdict="accept"))

    summary = await export(ledger, campaign, "kto", tmp_path / "k.jsonl")

    assert summary.rows == 1 and "one class only" in summary.line()


async def test_written_answers_feed_sft_and_nothing_else(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    campaign = await post_items(coordinator, [{"id": "q", "prompt": "Explain."}], kind="write")
    await add_expert(coordinator, "ann")
    await work(service, clock, "ann", lambda card: Write(text="\nBecause."))

    sft = await export(ledger, campaign, "sft", tmp_path / "s.jsonl",
                       sft_shape="prompt_completion")
    pref = await export(ledger, campaign, "preference", tmp_path / "p.jsonl")

    (row,) = list(load(tmp_path / "s.jsonl", tmp_path))
    assert row["completion"] == "\nBecause." and sft.sources == {"write": 1}
    assert pref.rows == 0 and "no preference rows" in pref.line()


async def test_trail_shows_drafts_as_shown_the_edit_and_the_chain(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    campaign = await correct_campaign(service, coordinator, clock)
    path = tmp_path / "t.jsonl"

    summary = await export(ledger, campaign, "trail", path)

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert summary.rows == 2 == len(rows) and len(load(path, tmp_path)) == 2
    first = rows[0]
    assert first["drafts"] == [{"label": "A", "index": 0, "text": "The dose is 50 mg.",
                                "model": "gpt-x", "model_version": "", "params": {}}]
    assert first["decision"] == {"type": "correct", "text": "The dose is 5 mg daily."}
    assert "-The dose is 50 mg." in first["diff"] and first["edit_distance"] == 7
    assert first["timing"]["active_seconds"] == 30.0 and first["channel"] == "web"
    events = first["events"]
    assert events["answer"]["hash"] and events["assigned"]["hash"] and events["item"]["hash"]
    assert events["item"]["seq"] < events["assigned"]["seq"] < events["answer"]["seq"]
    page = await ledger.events(campaign.id, events["answer"]["seq"] - 1, 1)
    assert page[0]["hash"] == events["answer"]["hash"]
    assert rows[1]["edit_distance"] == 0 and rows[1]["diff"] == ""


async def test_csv_has_one_row_per_task(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    campaign = await pairwise_campaign(service, coordinator, clock)
    path = tmp_path / "a.csv"

    summary = await export(ledger, campaign, "csv", path)

    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows) == summary.rows == 5
    assert [r["value"] for r in rows] == ["0", "0", "tie", "none_acceptable", rows[4]["value"]]
    assert rows[0]["models"] in ("good,poor", "poor,good") and rows[0]["hash"]


async def test_unknown_format_is_refused(coordinator: Coordinator, ledger: Ledger) -> None:
    campaign = await post_items(coordinator, [{"id": "q", "prompt": "Explain."}], kind="write")
    with pytest.raises(UnknownFormat):
        Export(ledger, campaign, "parquet")


def test_edit_distance_is_levenshtein() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("same", "same") == 0
    assert edit_distance("The dose is 50 mg.", "The dose is 5 mg daily.") == 7


# the command line


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXPERTLOOP_DATA_DIR": str(data_dir)}
    env.pop("REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "bots.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120)


async def test_cli_exports_and_reports_a_campaign(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    server = EmbeddedRedis(data_dir)
    await server.start()
    client = aioredis.from_url(server.url(), decode_responses=True)
    try:
        store, clock = RedisStore(client), SetClock(1_795_000_000_000)
        service = Service(store.roles(), clock)
        coordinator = Coordinator(store.roles(), clock, service.catalog)
        await pairwise_campaign(service, coordinator, clock)

        done = cli(data_dir, "campaign", "export", "c1", "--format", "preference",
                   "-o", str(tmp_path / "p.jsonl"))
        quality = cli(data_dir, "campaign", "quality", "c1", "--json", "--resamples", "20")
        pay = cli(data_dir, "campaign", "pay", "c1", "--csv", str(tmp_path / "pay.csv"))
        bad = cli(data_dir, "campaign", "export", "nope", "--format", "kto", "-o", "-")
    finally:
        await client.aclose()
        await server.stop()

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2 rows (preference) from 5 tasks; left out: 1 identical")
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 2
    assert quality.returncode == 0 and json.loads(quality.stdout)["answers"] == 5
    assert json.loads(quality.stdout)["leaderboard"][0]["model"] == "good@v2"
    assert pay.returncode == 0 and pay.stdout.startswith("expert")
    assert (tmp_path / "pay.csv").read_text().startswith("campaign,expert,currency")
    assert bad.returncode == 1 and "no campaign 'nope'" in bad.stderr


async def test_ratings_of_drafts_of_one_prompt_become_pairs_with_a_margin(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    drafts = {"q-good": ("Rest and fluids.", "m1", 5, 4), "q-bad": ("Antibiotics.", "m2", 2, 1),
              "q-same": ("Fluids and rest.", "m3", 2, 1), "q-alone": ("Yes.", "m1", 3, 3)}
    items = [{"id": item_id, "prompt": "Flu?" if item_id != "q-alone" else "Other?",
              "drafts": [{"text": text, "model": model}]}
             for item_id, (text, model, _, _) in drafts.items()]
    campaign = await post_items(coordinator, items, kind="rate", overlap=2)
    for expert, which in (("ann", 2), ("bob", 3)):
        await add_expert(coordinator, expert)
        await work(service, clock, expert, lambda card, n=which: Rate(score=next(
            d[n] for d in drafts.values() if d[0] == card.drafts[0].text)))

    summary = await export(ledger, campaign, "preference", tmp_path / "p.jsonl")

    rows = sorted(load(tmp_path / "p.jsonl", tmp_path), key=lambda r: r["rejected_item"])
    assert [(r["item"], r["rejected_item"], r["margin"]) for r in rows] == [
        ("q-good", "q-bad", 3.0), ("q-good", "q-same", 3.0)]
    assert rows[0]["chosen"] == " Rest and fluids." and rows[0]["rejected_model"] == "m2"
    assert_trl_strings(rows, "chosen", "rejected")
    assert summary.sources == {"rate": 2} and summary.excluded == {"equal_ratings": 1}


async def test_trail_and_csv_carry_draft_models_edit_ratio_decided_in_s_and_conversations(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    talk = [{"role": "user", "content": "I take warfarin."},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "Ibuprofen?"}]
    items = [{"id": "fix", "prompt": talk, "drafts": [
                 {"text": "abcdefghij", "model": "m", "model_version": "v1"}]},
             {"id": "keep", "prompt": "Keep?", "drafts": [{"text": "Fine.", "model": "m"}]}]
    campaign = await post_items(coordinator, items, kind="correct")
    await add_expert(coordinator, "ann")
    await work(service, clock, "ann", lambda card: Correct(
        text="abcdefghXY" if card.item == "fix" else "Fine."), seconds=42.0)

    await export(ledger, campaign, "trail", tmp_path / "t.jsonl")
    await export(ledger, campaign, "csv", tmp_path / "t.csv")

    trail = {r["item"]: r for r in map(json.loads, (tmp_path / "t.jsonl").open())}
    assert trail["fix"]["prompt"] == talk and trail["keep"]["prompt"] == "Keep?"
    assert trail["fix"]["draft_models"] == ["m@v1"] and trail["keep"]["draft_models"] == ["m"]
    assert trail["fix"]["edit_ratio"] == 0.2 and trail["keep"]["edit_ratio"] == 0.0
    assert trail["fix"]["decided_in_s"] == 42.0
    with (tmp_path / "t.csv").open(encoding="utf-8") as file:
        header, *rows = list(csv.reader(file))
    assert header[-7:] == ["late", "draft_models", "edit_ratio", "decided_in_s", "prompt",
                           "decided_by", "rationale"]
    fix = next(dict(zip(header, r, strict=True)) for r in rows if r[1] == "fix")
    assert (fix["draft_models"], fix["edit_ratio"], fix["decided_in_s"]) == ("m@v1", "0.2", "42.0")
    assert fix["prompt"] == "user: I take warfarin.\n\nassistant: Noted.\n\nuser: Ibuprofen?"


async def test_every_format_says_who_decided_and_why(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        tmp_path: Path) -> None:
    from tests.test_labels_export import disputed_pairwise
    campaign = await disputed_pairwise(service, coordinator, clock)

    for fmt in ("trail", "preference", "sft", "kto"):
        summary = await export(ledger, campaign, fmt, tmp_path / f"{fmt}.jsonl")
        rows = [json.loads(line) for line in (tmp_path / f"{fmt}.jsonl").read_text().splitlines()]
        assert all(r["decided_by"] in ("expert", "adjudicator") for r in rows), fmt
        assert set(summary.decided_by) <= {"expert", "adjudicator"}
    trail = [json.loads(line) for line in (tmp_path / "trail.jsonl").read_text().splitlines()]
    (call,) = [r for r in trail if r["event"] == "adjudicated"]
    assert (call["decided_by"], call["expert"], call["rationale"]) == (
        "adjudicator", "judge", "Only Good names the interaction")
    pref = [json.loads(line) for line in (tmp_path / "preference.jsonl").read_text().splitlines()]
    assert {(r["item"], r["decided_by"]) for r in pref} >= {("p1", "expert"),
                                                            ("p3", "adjudicator")}
    assert {(r["item"], r["expert"], r["rationale"]) for r in pref if r["rationale"]} == {
        ("p1", "ann", "cites the dose"), ("p3", "judge", "Only Good names the interaction")}
    await export(ledger, campaign, "csv", tmp_path / "t.csv")
    with (tmp_path / "t.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert {(r["item"], r["decided_by"], r["rationale"]) for r in rows
            if r["rationale"]} == {("p1", "expert", "cites the dose"),
                                   ("p3", "adjudicator", "Only Good names the interaction")}
    dpo = await export(ledger, campaign, "openai-dpo", tmp_path / "dpo.jsonl")
    assert dpo.decided_by == {"expert": 8, "adjudicator": 1}  # OpenAI takes no extra keys


async def test_model_rows_are_left_out_of_every_format_unless_included(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
        store: RedisStore, tmp_path: Path) -> None:
    from tests.test_labels_export import auto_accepted
    campaign = await auto_accepted(service, coordinator, clock, store)

    for fmt in ("trail", "kto", "csv", "labels"):
        plain = await export(ledger, campaign, fmt, tmp_path / "plain")
        assert "model" not in plain.decided_by and plain.excluded.get("decided_by_model") == 1
        marked = await export(ledger, campaign, fmt, tmp_path / "marked", include_model=True)
        assert marked.decided_by.get("model") == 1, fmt
    trail = await export(ledger, campaign, "trail", tmp_path / "t.jsonl", include_model=True)
    rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    (model_row,) = [r for r in rows if r["decided_by"] == "model"]
    assert (model_row["item"], model_row["expert"], model_row["model"]) == ("v2", "", "gpt-x")
    assert trail.decided_by == {"expert": 2, "model": 1}  # the override, the skip of v2
    await export(ledger, campaign, "kto", tmp_path / "k.jsonl", include_model=True)
    kto = [json.loads(line) for line in (tmp_path / "k.jsonl").read_text().splitlines()]
    assert [(r["item"], r["label"]) for r in kto if r["decided_by"] == "model"] == [("v2", True)]
