"""The `expertloop` command as a coordinator types it: real processes on the embedded Redis."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from adapters.redis.embedded import EmbeddedRedis

CAMPAIGN = """\
id: cli-demo
title: Which answer is better?
instructions: Pick the clearer, correct answer.
kind: pairwise
overlap: 2
"""


def run(data_dir: Path, *args: str, redis_url: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXPERTLOOP_DATA_DIR": str(data_dir)}
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return subprocess.run([sys.executable, "-m", "bots.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)


def write_items(path: Path, count: int) -> None:
    with path.open("w") as out:
        for n in range(count):
            drafts = [{"text": f"Answer {n} from one.", "model": "m1"},
                      {"text": f"Answer {n} from two.", "model": "m2"}]
            out.write(json.dumps({"id": f"q{n}", "prompt": f"Question {n}?", "drafts": drafts}))
            out.write("\n")


@pytest.fixture
async def data_dir(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A data dir whose embedded server the test keeps alive, so it can look inside between
    commands; each command finds the running server and leaves it running."""
    server = EmbeddedRedis(tmp_path / "var")
    await server.start()
    client = aioredis.from_url(server.url(), decode_responses=True)
    await client.ping()  # a connected client keeps the shared server up between commands
    yield tmp_path / "var", client
    await client.aclose()
    await server.stop()


async def test_post_10k_items_then_verify_then_detect_one_changed_byte(data_dir, tmp_path):
    var, client = data_dir
    (tmp_path / "c.yaml").write_text(CAMPAIGN)
    write_items(tmp_path / "items.jsonl", 10_000)

    posted = run(var, "campaign", "post", str(tmp_path / "c.yaml"), "--items",
                 str(tmp_path / "items.jsonl"))
    assert posted.returncode == 0, posted.stderr
    assert "posted cli-demo: 10000 items" in posted.stdout
    status = json.loads(run(var, "campaign", "status", "cli-demo", "--json").stdout)
    assert (status["items"], status["state"], status["answers"]) == (10_000, "active", 0)
    verified = run(var, "provenance", "verify", "cli-demo")
    assert verified.returncode == 0 and "chain verified, 10002 events" in verified.stdout

    await change_one_byte(client, "el:{cli-demo}:log", seq=5000)
    broken = run(var, "provenance", "verify", "cli-demo")
    assert broken.returncode != 0
    assert "seq 5000" in broken.stderr and "changed" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1


async def change_one_byte(client: aioredis.Redis, log: str, seq: int) -> None:
    """Streams are append-only, so a tamperer rewrites the whole stream with one entry edited."""
    entries = await client.xrange(log)
    await client.delete(log)
    async with client.pipeline(transaction=False) as pipe:
        for entry_id, fields in entries:
            body = fields["e"]
            if entry_id == f"0-{seq}":
                body = body.replace("Answer", "Answes", 1)
            pipe.xadd(log, {"e": body}, id=entry_id)
        await pipe.execute()


async def test_redis_url_selects_an_outside_server_and_leaves_it_running(data_dir, tmp_path):
    var, client = data_dir
    url = f"unix://{var / 'redis.sock'}"
    (tmp_path / "c.yaml").write_text(CAMPAIGN)
    write_items(tmp_path / "items.jsonl", 3)
    elsewhere = tmp_path / "unused"

    posted = run(elsewhere, "campaign", "post", str(tmp_path / "c.yaml"), "--items",
                 str(tmp_path / "items.jsonl"), redis_url=url)

    assert posted.returncode == 0, posted.stderr
    assert await client.hget("el:{cli-demo}:counts", "items") == "3"
    assert not elsewhere.exists()  # no embedded server was started for it
    events = run(elsewhere, "provenance", "events", "cli-demo", redis_url=url)
    rows = [json.loads(line) for line in events.stdout.splitlines()]
    assert [row["seq"] for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["type"] == "campaign_posted" and rows[0]["actor_id"].startswith("cli")
    assert rows[1]["payload"]["item"]["prompt"] == "Question 0?"
    assert rows[0]["hash"] is None  # nothing sealed it yet: no worker ran
    run(elsewhere, "provenance", "verify", "cli-demo", redis_url=url)
    sealed = [json.loads(line) for line in
              run(elsewhere, "provenance", "events", "cli-demo", redis_url=url).stdout.splitlines()]
    assert all(row["prev"] == before["hash"]
               for before, row in zip(sealed, sealed[1:], strict=False))
    assert sealed[0]["prev"] == "0" * 64


def test_malformed_file_is_refused_whole_with_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CAMPAIGN)
    write_items(tmp_path / "items.jsonl", 50)
    with (tmp_path / "items.jsonl").open("a") as out:
        out.write(json.dumps({"id": "bad", "drafts": [{"text": "x"}, {"text": "y"}]}) + "\n")

    result = run(tmp_path / "var", "campaign", "post", str(tmp_path / "c.yaml"), "--items",
                 str(tmp_path / "items.jsonl"))

    assert result.returncode != 0
    assert "items.jsonl:51: prompt: Field required" in result.stderr
    listed = run(tmp_path / "var", "campaign", "list")
    assert "no campaigns yet" in listed.stdout
    assert json.loads(run(tmp_path / "var", "campaign", "list", "--json").stdout) == []


def test_unknown_campaign_is_a_one_line_error(tmp_path: Path) -> None:
    result = run(tmp_path / "var", "campaign", "status", "nope")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no campaign 'nope'"


def test_expert_add_show_and_link(tmp_path: Path) -> None:
    var = tmp_path / "var"
    added = run(var, "expert", "add", "dr-lee", "--name", "Dr. Lee", "--skills",
                "cardiology,triage", "--time-zone", "Europe/Berlin", "--quiet-hours",
                "22:00-07:00")
    assert added.returncode == 0, added.stderr
    assert run(var, "expert", "link", "dr-lee", "slack:U123").returncode == 0
    shown = json.loads(run(var, "expert", "show", "dr-lee").stdout)
    assert shown["skills"] == ["cardiology", "triage"]
    assert shown["identities"] == ["slack:U123"]
    clash = run(var, "expert", "add", "dr-lee", "--name", "Again")
    assert clash.returncode == 1 and "already exists" in clash.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_serves_health_and_loads_samples(tmp_path: Path) -> None:
    """What `make run` starts: the URLs it prints must answer."""
    port = free_port()
    env = {**os.environ, "EXPERTLOOP_DATA_DIR": str(tmp_path / "var"), "PORT": str(port)}
    env.pop("REDIS_URL", None)
    demo = subprocess.Popen([sys.executable, "-m", "bots.cli", "demo"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = wait_for_line(demo, "Press Ctrl-C")
        health_url = next(line.split()[-1] for line in lines if "/healthz" in line)
        with urllib.request.urlopen(health_url, timeout=5) as response:
            health = json.load(response)
        assert health["ok"] is True and health["backlog"] == {"telegram": 0, "slack": 0}
        assert {name: c["state"] for name, c in health["channels"].items()} == {
            "telegram": "off", "slack": "off"}  # no tokens: off, and still healthy
        chat_urls = [line.split()[-1] for line in lines if "/chat/" in line]
        assert len(chat_urls) == 2
        for url in chat_urls:
            with urllib.request.urlopen(url, timeout=5) as response:
                assert 'id="card"' in response.read().decode()
        dashboard = next(line.split()[-1] for line in lines if "dashboard" in line)
        with urllib.request.urlopen(dashboard, timeout=30) as response:
            assert "coordinator dashboard" in response.read().decode()
        listed = run(tmp_path / "var", "campaign", "list")
        assert "demo-pairwise" in listed.stdout and "demo-verify" in listed.stdout
    finally:
        demo.terminate()
        assert demo.wait(timeout=20) == 0
    assert not (tmp_path / "var" / "redis.sock").exists()  # the server went down with it


def wait_for_line(process: subprocess.Popen[str], marker: str) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in output: {''.join(lines)} {process.stderr}")
