"""`expertloop keys init`, `provenance verify --checkpoints`, `provenance prove` and
`provenance check-proof`. `keys init` and `check-proof` run offline: no Redis, no archive."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adapters.signing.ed25519 import Ed25519Verifier, KeyFileError, write_key_pair
from adapters.signing.notes import NoteFiles
from bots.runtime import Runtime
from bots.settings import Settings
from core.errors import ExpertloopError
from core.provenance.checkpoints import CheckpointError, read_notes
from core.provenance.proofs import InclusionProof, check_checkpoints, check_proof, prove


def add_commands(provenance: Any, keys: Any, add: Any, add_offline: Any) -> None:
    proof = add(provenance, "prove", prove_event,
                "print an inclusion proof of one event against the latest signed checkpoint "
                "that covers it, as JSON")
    proof.add_argument("campaign")
    proof.add_argument("--event", required=True, metavar="HASH",
                       help="the event's chain hash (hex), as `provenance events` and the "
                            "trail export show it")
    check = add_offline(provenance, "check-proof", check_proof_file,
                        "check a proof offline: the checkpoint's signature, then the event's "
                        "path to its root")
    check.add_argument("proof", metavar="PROOF", help="the JSON `provenance prove` printed")
    check.add_argument("--public-key", required=True, metavar="KEY", type=Path,
                       help="the log's public key (PEM)")
    init = add_offline(keys, "init", init_keys,
                       "write a new Ed25519 signing key (PEM, mode 0600) and its public key")
    init.add_argument("--out", metavar="DIR", type=Path,
                      help="where to write signing.pem and signing.pub.pem "
                           "(default: keys/ under EXPERTLOOP_DATA_DIR)")


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Key and checkpoint troubles are a user's to fix: one line, exit 1."""
    try:
        yield
    except (CheckpointError, KeyFileError) as exc:
        raise ExpertloopError(str(exc)) from exc


async def init_keys(settings: Settings, args: argparse.Namespace) -> int:
    out = args.out or settings.keys_dir()
    private, public = out / "signing.pem", out / "signing.pub.pem"
    with one_line_errors():
        write_key_pair(private, public)
    print(f"private key: {private}  (set EXPERTLOOP_SIGNING_KEY to this path; keep it secret)")
    print(f"public key:  {public}  (give it to auditors: provenance verify/check-proof "
          f"--public-key)")
    return 0


async def verify_checkpoints(runtime: Runtime, campaign_id: str, args: argparse.Namespace
                             ) -> str:
    """The line to add to the chain's verdict, or ExpertloopError naming the failing checkpoint."""
    if not args.public_key:
        raise ExpertloopError("--checkpoints needs --public-key KEY (the log's public key, PEM)")
    with one_line_errors():
        verifier = Ed25519Verifier.from_pem(args.public_key)
        notes = read_notes(_read(args.checkpoints))
        count = await check_checkpoints(runtime.store, campaign_id, notes, verifier)
    return f"{campaign_id}: the log matches all {count} signed checkpoints in {args.checkpoints}"


async def prove_event(runtime: Runtime, args: argparse.Namespace) -> int:
    await runtime.coordinator.catalog.campaign(args.campaign)  # unknown id: a clear error
    await runtime.ledger.seal(args.campaign)
    notes = NoteFiles(runtime.settings.checkpoints_dir()).notes(args.campaign)
    with one_line_errors():
        found = await prove(runtime.store, args.campaign, args.event, notes)
    if isinstance(found, int):
        raise ExpertloopError(f"no signed checkpoint covers event {found} yet; "
                              f"{await _next_due(runtime, args.campaign)}")
    print(found.model_dump_json(indent=2))
    return 0


async def _next_due(runtime: Runtime, campaign_id: str) -> str:
    minutes = runtime.settings.checkpoint_minutes
    last = await runtime.store.last_checkpoint(campaign_id)
    if last is None:
        return (f"the worker signs one every {minutes:g} minutes when EXPERTLOOP_SIGNING_KEY "
                f"is set")
    due = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(last.at / 1000 + minutes * 60))
    return f"the next is due by {due} ({minutes:g} minutes after the last)"


async def check_proof_file(settings: Settings, args: argparse.Namespace) -> int:
    with one_line_errors():
        verifier = Ed25519Verifier.from_pem(args.public_key)
        try:
            proof = InclusionProof.model_validate(json.loads(_read(Path(args.proof))))
        except (ValueError, ValidationError) as exc:
            raise CheckpointError(f"{args.proof} is not a proof from provenance prove: "
                                  f"{str(exc).splitlines()[0]}") from exc
        checkpoint = check_proof(proof, verifier)
    print(f"ok: event {proof.seq} ({proof.chain_hash}) is in {checkpoint.origin} at tree size "
          f"{checkpoint.size}")
    return 0


def _read(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ExpertloopError(f"cannot read {path}: {exc.strerror}") from exc
