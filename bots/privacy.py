"""`expertloop expert export|erase ID`: an expert's own data, whole or erased."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bots.runtime import Runtime
from core.privacy.rights import Privacy


def add_commands(expert: Any, add: Any) -> None:
    export = add(expert, "export", export_expert,
                 "print everything held about an expert as one JSON document: profile, "
                 "tallies, access (as digests, never tokens) and their answers from every log")
    export.add_argument("id", help="the expert's id, as added")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    erase = add(expert, "erase", erase_expert,
                "erase an expert for good: profile, linked accounts, web chat link and invites "
                "are deleted; their answers stay in the provenance log under a pseudonym, so "
                "the chain still verifies (see docs/privacy.md)")
    erase.add_argument("id", help="the expert's id, as added")
    erase.add_argument("--yes", action="store_true",
                       help="do not ask: erasure cannot be undone (needed when not at a terminal)")


def _privacy(runtime: Runtime) -> Privacy:
    return Privacy(runtime.store.roles(), runtime.ledger, runtime.coordinator.catalog)


async def export_expert(runtime: Runtime, args: argparse.Namespace) -> int:
    text = (await _privacy(runtime).export(args.id)).model_dump_json(indent=2) + "\n"
    if args.output:
        await asyncio.to_thread(Path(args.output).write_text, text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


def _confirmed(expert_id: str) -> bool:
    """At a terminal, the coordinator types the id back; anywhere else, only --yes will do."""
    if not sys.stdin.isatty():
        return False
    return input(f"Erase {expert_id} for good? Type the id to confirm: ").strip() == expert_id


async def erase_expert(runtime: Runtime, args: argparse.Namespace) -> int:
    if not args.yes and not await asyncio.to_thread(_confirmed, args.id):
        print(f"error: not erased: erasing {args.id} cannot be undone; type the id when asked, "
              "or pass --yes", file=sys.stderr)
        return 1
    report = await _privacy(runtime).erase(args.id)
    print(f"erased {args.id}: profile, {report.identities} linked accounts, chat link and "
          f"invites deleted; {report.answers} answers in {report.campaigns} campaigns are "
          f"kept and shown as {report.pseudonym} from now on")
    return 0
