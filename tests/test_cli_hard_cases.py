"""The coordinator's hard-case commands as typed: expert level, roles and update, campaign
adjudicate, status counts, and export --format labels with --include-model."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import run

CAMPAIGN = """\
id: hard
title: Which answer is better?
kind: pairwise
overlap: {min: 2, max: 3}
adjudicate: true
items:
  - {id: q1, prompt: "Q1?", drafts: [{text: "One.", model: a}, {text: "Two.", model: b}]}
  - {id: q2, prompt: "Q2?", drafts: [{text: "Three.", model: a}, {text: "Four.", model: b}]}
"""


def test_expert_add_with_level_and_roles_then_update(tmp_path: Path) -> None:
    var = tmp_path / "var"
    added = run(var, "expert", "add", "dr-lee", "--name", "Dr. Lee", "--level", "senior",
                "--roles", "adjudicator")
    assert added.returncode == 0, added.stderr
    assert "level senior, roles adjudicator" in added.stdout

    updated = run(var, "expert", "update", "dr-lee", "--level", "junior", "--skills", "cardio")

    assert updated.returncode == 0, updated.stderr
    shown = json.loads(run(var, "expert", "show", "dr-lee").stdout)
    assert (shown["level"], shown["roles"], shown["skills"], shown["name"]) == (
        "junior", ["adjudicator"], ["cardio"], "Dr. Lee")
    cleared = run(var, "expert", "update", "dr-lee", "--roles", "")
    assert cleared.returncode == 0 and json.loads(
        run(var, "expert", "show", "dr-lee").stdout)["roles"] == []
    bad = run(var, "expert", "update", "dr-lee", "--roles", "boss")
    assert bad.returncode == 1 and bad.stderr.startswith("error: roles.0")
    nothing = run(var, "expert", "update", "dr-lee")
    assert nothing.returncode == 1 and "nothing to update" in nothing.stderr
    unknown = run(var, "expert", "update", "nobody", "--level", "senior")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "error: no expert 'nobody'"


def test_adjudicate_status_and_labels(tmp_path: Path) -> None:
    var = tmp_path / "var"
    (tmp_path / "c.yaml").write_text(CAMPAIGN)
    assert run(var, "campaign", "post", str(tmp_path / "c.yaml")).returncode == 0

    sent = run(var, "campaign", "adjudicate", "hard", "q1")
    again = run(var, "campaign", "adjudicate", "hard", "q1")

    assert sent.returncode == 0 and "sent to adjudication" in sent.stdout
    assert again.returncode == 0 and "already waits" in again.stdout
    status = run(var, "campaign", "status", "hard").stdout
    assert "awaiting adjudication 1  adjudicated 0" in status
    missing = run(var, "campaign", "adjudicate", "hard", "zz")
    assert missing.returncode == 1 and "no item 'zz'" in missing.stderr
    assert run(var, "campaign", "adjudicate", "nope", "q1").stderr.strip() == (
        "error: no campaign 'nope'")
    out = tmp_path / "labels.jsonl"
    exported = run(var, "campaign", "export", "hard", "--format", "labels", "-o", str(out),
                   "--include-model")
    assert exported.returncode == 0, exported.stderr
    rows = {r["item"]: r["state"] for r in map(json.loads, out.read_text().splitlines())}
    assert rows == {"q1": "awaiting_adjudication", "q2": "unanswered"}
    assert "states: 1 awaiting_adjudication, 1 unanswered" in exported.stdout
