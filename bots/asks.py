"""Live asks from the command line: `asks list [--status S] [--json]`, `asks show ID [--json]`,
and the asks log under `provenance verify|events asks` (it is no campaign, so those commands'
"unknown campaign" check would refuse it)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any, get_args

from bots import commands
from bots.proofs import verify_checkpoints
from bots.runtime import Runtime
from core.domain.asks import ASKS_LOG, AskStatus, AskView
from core.errors import ExpertloopError

Register = Callable[..., argparse.ArgumentParser]
QUESTION_CHARS = 70


def add_commands(sub: Any, add: Register) -> None:
    asks = sub.add_parser("asks", help="live asks agents posted").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    listing = add(asks, "list", list_asks, "the latest asks, newest first")
    listing.add_argument("--status", choices=get_args(AskStatus), help="only asks in this state")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    show = add(asks, "show", show_ask, "one ask: its question, status, decision and answers")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="print JSON")


async def list_asks(runtime: Runtime, args: argparse.Namespace) -> int:
    found = await runtime.service.asks.list(args.limit, args.status)
    if args.json:
        print(json.dumps([view.model_dump(mode="json") for view in found], indent=2))
        return 0
    if not found:
        print("no asks" + (f" {args.status}" if args.status else " yet: agents post them "
                                                                  "with POST /api/asks"))
    for view in found:
        print(_line(view))
    return 0


def _line(view: AskView) -> str:
    question = view.question.replace("\n", " ")
    if len(question) > QUESTION_CHARS:
        question = question[:QUESTION_CHARS - 1] + "…"
    by = f"  by {','.join(view.by)}" if view.by else ""
    return f"{view.id}  {view.status}  {view.kind}  {view.created_at}{by}  — {question}"


async def show_ask(runtime: Runtime, args: argparse.Namespace) -> int:
    view = await runtime.service.asks.view(args.id)
    if args.json:
        print(view.model_dump_json(indent=2))
        return 0
    for line in _details(view):
        print(line)
    return 0


def _details(view: AskView) -> list[str]:
    lines = [f"{view.id}  {view.status}  {view.kind}  (call {view.call_id})",
             f"  question  {view.question}",
             f"  asked     {view.created_at}   deadline {view.expires_at}"]
    if view.stage:
        lines.append(f"  escalated {view.stage} time{'s' if view.stage > 1 else ''}")
    if view.waiting and view.status == "pending":
        lines.append(f"  waiting   {view.waiting}")
    if view.decision is not None:
        lines.append(f"  decision  {json.dumps(view.decision, ensure_ascii=False)}")
    if view.comment:
        lines.append(f"  comment   {view.comment}")
    if view.decided_at:
        lines.append(f"  decided   {view.decided_at} by {', '.join(view.by) or '–'}")
    for answer in view.decisions:
        late = "  (after withdrawal)" if answer.after_withdrawal else ""
        lines.append(f"  answer    {answer.expert}: "
                     f"{json.dumps(answer.decision, ensure_ascii=False)}{late}")
    lines.append(f"  events    {len(view.events)} sealed in the {ASKS_LOG!r} log")
    return lines


async def verify(runtime: Runtime, args: argparse.Namespace) -> int:
    """`provenance verify asks` seals and checks the asks log; any other id is a campaign."""
    if args.campaign != ASKS_LOG:
        return await commands.verify(runtime, args)
    if not args.no_seal:
        await runtime.ledger.seal(ASKS_LOG)
    verdict = await runtime.ledger.verify(ASKS_LOG)
    if not verdict.ok:
        raise ExpertloopError(verdict.line())
    anchored = await verify_checkpoints(runtime, ASKS_LOG, args) if args.checkpoints else ""
    print(verdict.line())
    if anchored:
        print(anchored)
    return 0


async def events(runtime: Runtime, args: argparse.Namespace) -> int:
    """`provenance events asks` prints the asks log; any other id is a campaign's."""
    if args.campaign != ASKS_LOG:
        return await commands.events(runtime, args)
    for event in await runtime.ledger.events(ASKS_LOG, args.after, args.limit):
        print(json.dumps(event, ensure_ascii=False))
    return 0
