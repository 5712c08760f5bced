"""Signed checkpoints: the C2SP formats to the letter, the worker's signing job, and the attack
the chain alone misses: someone with Redis access rewrites an answer and reseals the chain."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from adapters.redis import keys
from adapters.redis.store import RedisStore
from adapters.signing.ed25519 import Ed25519Signer, Ed25519Verifier, write_key_pair
from adapters.signing.notes import NoteFiles
from bots import commands
from bots.checkpointing import checkpoint_loop, sign_checkpoints
from bots.runtime import Runtime
from bots.settings import Settings
from core.domain.answers import Answer
from core.domain.cards import Card
from core.domain.kinds import Choose
from core.domain.timing import SetClock
from core.errors import ExpertloopError
from core.provenance.checkpoints import (
    Checkpoint,
    CheckpointError,
    key_id,
    open_checkpoint,
    parse_checkpoint,
    read_notes,
    sign_checkpoint,
    split_note,
)
from core.provenance.events import chain_hash
from core.provenance.ledger import Ledger
from core.reports.exports import Export
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.test_tamper import read_log, rewrite_log, sealed  # noqa: F401  (the fixture)

# C2SP signed-note's own example (github.com/C2SP/C2SP, signed-note.md, "Verifier keys").
VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
NOTE = ("This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6Tf"
        "Xppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")


CHOICE_B = {"decision": {"type": "pairwise", "choice": "B"}}


@pytest.fixture
def key_pair(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "keys" / "signing.pem", tmp_path / "keys" / "signing.pub.pem"
    write_key_pair(private, public)
    return private, public


@pytest.fixture
def runtime(tmp_path: Path, key_pair: tuple[Path, Path], client: aioredis.Redis,
            store: RedisStore, service: Service, coordinator: Coordinator,
            ledger: Ledger) -> Runtime:
    settings = Settings(_env_file=None, EXPERTLOOP_DATA_DIR=tmp_path / "var",
                        EXPERTLOOP_SIGNING_KEY=key_pair[0])
    return Runtime(settings, client, store, service, coordinator, ledger)


def test_the_signed_note_example_of_the_spec_verifies() -> None:
    name, hex_id, encoded = VKEY.split("+")
    public = base64.b64decode(encoded)[1:]  # after the signature type byte
    text, [(signer, blob)] = split_note(NOTE)

    assert key_id(name, public).hex() == hex_id == blob[:4].hex()
    assert (text, signer) == ("This is an example message.\n", name)
    assert Ed25519Verifier.from_raw(public).verify(text.encode(), blob[4:])
    assert not Ed25519Verifier.from_raw(public).verify(b"This is an example message!\n",
                                                       blob[4:])


def test_a_checkpoint_is_the_tlog_text_signed_under_its_origin(key_pair: tuple[Path, Path]
                                                               ) -> None:
    signer = Ed25519Signer.from_pem(key_pair[0])
    checkpoint = Checkpoint("expertloop/c1", 14, bytes(range(32)))

    note = sign_checkpoint(checkpoint, signer)

    lines = note.split("\n")
    assert lines[:4] == ["expertloop/c1", "14", base64.b64encode(bytes(range(32))).decode(), ""]
    assert lines[4].startswith("\u2014 expertloop/c1 ") and lines[5:] == [""]
    verifier = Ed25519Verifier.from_pem(key_pair[1])
    assert open_checkpoint(note, "c1", verifier) == checkpoint
    with pytest.raises(CheckpointError, match="is for 'expertloop/c1', not 'expertloop/c2'"):
        open_checkpoint(note, "c2", verifier)
    with pytest.raises(CheckpointError, match="size 15: bad signature"):
        open_checkpoint(note.replace("\n14\n", "\n15\n"), "c1", verifier)
    other = Ed25519Verifier.from_raw(bytes.fromhex("2" * 64))
    with pytest.raises(CheckpointError, match="not signed by this key"):
        open_checkpoint(note, "c1", other)


def test_checkpoint_text_that_is_not_one_is_refused() -> None:
    for text, why in (("expertloop/c1\n014\nAA==\n", "tree size"),
                      ("expertloop/c1\n3\n", "three or more"),
                      ("expertloop/c1\n3\nAAAA\n", "32 bytes")):
        with pytest.raises(CheckpointError, match=why):
            parse_checkpoint(text)


async def test_the_worker_signs_a_grown_log_once_per_interval(
        sealed: int, runtime: Runtime, key_pair: tuple[Path, Path]) -> None:  # noqa: F811
    files = NoteFiles(runtime.settings.checkpoints_dir())
    signer = Ed25519Signer.from_pem(key_pair[0])

    assert await sign_checkpoints(runtime, signer, files) == 1
    assert await sign_checkpoints(runtime, signer, files) == 0  # not its turn yet

    await runtime.client.delete(keys.turn_key("checkpoint:c1"))
    assert await sign_checkpoints(runtime, signer, files) == 0  # its turn, but nothing new
    [note] = read_notes(files.path("c1").read_text())
    verifier = Ed25519Verifier.from_pem(key_pair[1])
    assert open_checkpoint(note, "c1", verifier).size == sealed
    assert (await runtime.store.last_checkpoint("c1") or (0, 0))[0] == sealed


async def test_without_a_key_the_worker_says_signing_is_off(runtime: Runtime,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    runtime.settings.signing_key = None
    with caplog.at_level(logging.INFO, logger="expertloop.checkpoints"):
        await asyncio.wait_for(checkpoint_loop(runtime, asyncio.Event()), 30)
    assert "signing is off" in caplog.text


async def reseal_after(client: aioredis.Redis, seq: int, change: dict[str, object]) -> None:
    """What an attacker with Redis access does: change one stored event, then recompute every
    hash from it on and the head, so the chain is whole again."""
    bodies = [(s, _changed(b, change) if s == seq else b) for s, b in await read_log(client)]
    await rewrite_log(client, bodies)
    prev = await client.hget(keys.campaign_key("c1", "hashes"), str(seq - 1))
    for s, body in bodies[seq - 1:]:
        prev = chain_hash(json.loads(body), s, prev or "0" * 64)
        await client.hset(keys.campaign_key("c1", "hashes"), str(s), prev)
    await client.set(keys.campaign_key("c1", "head"), f"{bodies[-1][0]} {prev}")


def _changed(body: str, change: dict[str, object]) -> str:
    event = json.loads(body)
    return json.dumps({**event, "payload": {**event.get("payload", {}), **change}})


async def test_a_rewrite_resealed_with_redis_access_is_caught_by_the_checkpoints(
        sealed: int, runtime: Runtime, tmp_path: Path, key_pair: tuple[Path, Path],  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    files = NoteFiles(runtime.settings.checkpoints_dir())
    assert await sign_checkpoints(runtime, Ed25519Signer.from_pem(key_pair[0]), files) == 1
    plain = argparse.Namespace(campaign="c1", no_seal=False, checkpoints=None, public_key=None)
    anchored = argparse.Namespace(campaign="c1", no_seal=False, public_key=key_pair[1],
                                  checkpoints=files.path("c1"))
    assert await commands.verify(runtime, anchored) == 0
    assert "matches all 1 signed checkpoints" in capsys.readouterr().out
    answered = [s for s, body in await read_log(runtime.client)
                if json.loads(body)["type"] == "answered"]

    await reseal_after(runtime.client, answered[1], CHOICE_B)

    assert await commands.verify(runtime, plain) == 0  # the chain alone is fooled
    assert "chain verified" in capsys.readouterr().out
    with pytest.raises(ExpertloopError) as caught:
        await commands.verify(runtime, anchored)
    assert str(caught.value) == (f"the log does not match the checkpoint of size {sealed}: "
                                 f"one of events 1..{sealed} was changed after it was signed, "
                                 f"and the chain resealed")


async def test_a_second_checkpoint_narrows_where_the_rewrite_is(
        sealed: int, runtime: Runtime, key_pair: tuple[Path, Path],  # noqa: F811
        coordinator: Coordinator) -> None:
    files = NoteFiles(runtime.settings.checkpoints_dir())
    signer = Ed25519Signer.from_pem(key_pair[0])
    await sign_checkpoints(runtime, signer, files)
    await coordinator.change_state("c1", "pause", "cli:ann")
    await runtime.client.delete(keys.turn_key("checkpoint:c1"))
    await sign_checkpoints(runtime, signer, files)
    grown = (await runtime.store.last_checkpoint("c1") or (0, 0))[0]
    assert grown > sealed

    await reseal_after(runtime.client, grown, {"why": "forged"})  # the pause

    args = argparse.Namespace(campaign="c1", no_seal=False, public_key=key_pair[1],
                              checkpoints=files.path("c1"))
    with pytest.raises(ExpertloopError, match=f"checkpoint of size {grown}: event {grown} was"):
        await commands.verify(runtime, args)


async def test_trail_rows_name_the_checkpoint_that_covers_their_answer(
        sealed: int, runtime: Runtime, key_pair: tuple[Path, Path], ledger: Ledger,  # noqa: F811
        service: Service, coordinator: Coordinator, clock: SetClock) -> None:
    campaign = await coordinator.catalog.campaign("c1")
    before = [json.loads(line) async for line in Export(ledger, campaign, "trail").lines()]
    assert before and {row["checkpoint"] for row in before} == {None}
    await sign_checkpoints(runtime, Ed25519Signer.from_pem(key_pair[0]),
                           NoteFiles(runtime.settings.checkpoints_dir()))
    task = await service.next_task("ann")  # the card she holds: her third answer
    assert isinstance(task, Card)
    await service.submit(Answer(expert="ann", lease=task.lease, decision=Choose(choice="B")))

    after = [json.loads(line) async for line in Export(ledger, campaign, "trail").lines()]

    assert [(row["expert"], row["checkpoint"]) for row in after] == [
        ("ann", sealed), ("ann", sealed), ("bob", sealed), ("bob", sealed), ("ann", None)]
