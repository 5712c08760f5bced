"""Inclusion proofs: one event proved against a signed checkpoint and checked with the public key
alone, refused when anything in it is changed, and still good for an erased expert's row."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from adapters.signing.ed25519 import Ed25519Signer, Ed25519Verifier
from adapters.signing.notes import NoteFiles
from bots.checkpointing import sign_checkpoints
from bots.proofs import prove_event
from bots.runtime import Runtime
from core.errors import ExpertloopError
from core.privacy.rights import Privacy
from core.provenance.checkpoints import CheckpointError
from core.provenance.ledger import Ledger
from core.provenance.proofs import InclusionProof, check_proof, prove
from core.reports.exports import Export
from core.service.coordinator import Coordinator
from tests.test_checkpoints import key_pair, runtime  # noqa: F401  (fixtures)
from tests.test_tamper import sealed  # noqa: F401  (the fixture)


async def signed(runtime: Runtime, key: Path) -> list[str]:  # noqa: F811
    files = NoteFiles(runtime.settings.checkpoints_dir())
    assert await sign_checkpoints(runtime, Ed25519Signer.from_pem(key), files) == 1
    return files.notes("c1")


async def answer_hashes(ledger: Ledger, expert: str | None = None) -> list[str]:
    events = await ledger.events("c1", 0, 10_000)
    return [str(e["hash"]) for e in events
            if e["type"] == "answered" and expert in (None, e["expert"])]


async def test_an_answer_proves_offline_and_a_changed_proof_does_not(
        sealed: int, runtime: Runtime, key_pair: tuple[Path, Path],  # noqa: F811
        ledger: Ledger) -> None:
    notes = await signed(runtime, key_pair[0])
    verifier = Ed25519Verifier.from_pem(key_pair[1])
    for event_hash in await answer_hashes(ledger):
        proof = await prove(runtime.store, "c1", event_hash, notes)
        assert isinstance(proof, InclusionProof)
        assert proof.tree_size == sealed and proof.checkpoint == notes[0]
        # what the auditor receives: JSON, checked with no store at all
        assert check_proof(InclusionProof.model_validate_json(proof.model_dump_json()),
                           verifier).size == sealed

    path = [*proof.audit_path]
    path[0] = path[0][:-1] + ("0" if path[0][-1] != "0" else "1")
    for changed, why in ((proof.model_copy(update={"audit_path": path}), "is not in the tree"),
                         (proof.model_copy(update={"leaf_index": proof.leaf_index - 1}),
                          "is not in the tree"),
                         (proof.model_copy(update={"tree_size": sealed + 1}), "signed"),
                         (proof.model_copy(update={"campaign": "c2"}), "not 'expertloop/c2'")):
        with pytest.raises(CheckpointError, match=why):
            check_proof(changed, verifier)
    stranger = Ed25519Verifier.from_raw(bytes.fromhex("2" * 64))
    with pytest.raises(CheckpointError, match="not signed by this key"):
        check_proof(proof, stranger)


async def test_an_event_no_checkpoint_covers_yet_says_when_one_is_due(
        sealed: int, runtime: Runtime, ledger: Ledger,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    first = (await answer_hashes(ledger))[0]
    args = argparse.Namespace(campaign="c1", event=first)

    with pytest.raises(ExpertloopError, match="no signed checkpoint covers event .* yet; the "
                                              "worker signs one every 10 minutes"):
        await prove_event(runtime, args)

    await signed(runtime, runtime.settings.signing_key or Path())
    await runtime.coordinator.change_state("c1", "pause", "cli:ann")
    await runtime.ledger.seal("c1")
    paused = (await runtime.ledger.events("c1", sealed, 10))[0]
    with pytest.raises(ExpertloopError, match=f"covers event {sealed + 1} yet; the next is due "
                                              "by 2026-11-18 11:16:40 UTC \\(10 minutes "
                                              "after the last\\)"):  # signed at NOW
        await prove_event(runtime, argparse.Namespace(campaign="c1", event=paused["hash"]))
    assert await prove_event(runtime, args) == 0
    assert json.loads(capsys.readouterr().out)["chain_hash"] == first


async def test_an_erased_experts_row_still_proves_and_the_proof_names_no_one(
        sealed: int, runtime: Runtime, key_pair: tuple[Path, Path],  # noqa: F811
        ledger: Ledger, coordinator: Coordinator) -> None:
    notes = await signed(runtime, key_pair[0])
    erased = await Privacy(runtime.store.roles(), ledger).erase("ann")
    campaign = await coordinator.catalog.campaign("c1")
    rows = [json.loads(line) async for line in Export(ledger, campaign, "trail").lines()]
    theirs = [row for row in rows if row["expert"] == erased.pseudonym]
    assert len(theirs) == 2 and all(row["checkpoint"] == sealed for row in theirs)

    proof = await prove(runtime.store, "c1", theirs[0]["events"]["answer"]["hash"], notes)

    assert isinstance(proof, InclusionProof)
    check_proof(proof, Ed25519Verifier.from_pem(key_pair[1]))
    shown = proof.model_dump_json()
    assert '"ann"' not in shown and erased.pseudonym not in shown
    assert set(json.loads(shown)) == {"campaign", "seq", "leaf_index", "tree_size", "chain_hash",
                                     "audit_path", "checkpoint"}
