"""The `expertloop` command line. Exit 0 on success; otherwise one line on stderr saying why."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from redis.exceptions import RedisError

from bots import asks, commands, privacy, proofs, reports, slack_wiring, telegram_wiring
from bots.runtime import Runtime, open_runtime
from bots.settings import Settings
from core.domain.hard_cases import LEVELS
from core.errors import ExpertloopError, InvalidCampaign

Handler = Callable[[Runtime, argparse.Namespace], Awaitable[int]]
OfflineHandler = Callable[[Settings, argparse.Namespace], Awaitable[int]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="expertloop",
        description="Expert feedback for AI models: post campaigns, run the service, "
                    "prove the record. Settings come from the environment (REDIS_URL, PORT, ...);"
                    " without REDIS_URL an embedded Redis keeps data under ./var.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add(sub, "serve", commands.serve, "run the web process (GET /healthz)")
    _add(sub, "worker", commands.worker, "expire abandoned tasks and seal the provenance log")
    for name, handler, text in (
            ("telegram-poll", telegram_wiring.poll, "run the Telegram bot by long polling"),
            ("slack-socket", slack_wiring.socket, "run the Slack app over Socket Mode")):
        channel = _add(sub, name, handler, text)
        channel.add_argument("--idle-when-off", action="store_true",
                             help="without the channel's tokens, wait quietly instead of "
                                  "failing (for a Procfile line that is on only when set)")
    demo = _add(sub, "demo", commands.demo,
                "load the sample campaigns and demo experts, then run web and worker")
    demo.add_argument("--simulate", type=int, default=0, metavar="N",
                      help="also play N simulated experts answering with realistic timings")
    demo.add_argument("--speed", type=float, default=20.0,
                      help="how many times faster than real time simulated experts work")
    _campaign_commands(sub)
    _expert_commands(sub)
    asks.add_commands(sub, _add)
    provenance = sub.add_parser("provenance", help="the tamper-evident log").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    verify = _add(provenance, "verify", asks.verify,
                  "seal what is new, then recompute the whole chain; non-zero if broken")
    verify.add_argument("campaign", help="a campaign's id, or asks for the live asks' log")
    verify.add_argument("--no-seal", action="store_true",
                        help="only check what is already sealed")
    verify.add_argument("--checkpoints", metavar="FILE", type=Path,
                        help="also check the log against every signed checkpoint in FILE")
    verify.add_argument("--public-key", metavar="KEY", type=Path,
                        help="the log's public key (PEM), for --checkpoints")
    events = _add(provenance, "events", asks.events,
                  "print a campaign's events as JSON lines, with seq, prev and hash")
    events.add_argument("campaign")
    events.add_argument("--after", type=int, default=0, metavar="SEQ",
                        help="start after this seq (default: from the first event)")
    events.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    keys = sub.add_parser("keys", help="the key that signs checkpoints").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    proofs.add_commands(provenance, keys, _add, _add_offline)
    return parser


def _campaign_commands(sub: Any) -> None:
    campaign = sub.add_parser("campaign", help="post and manage campaigns").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    post = _add(campaign, "post", commands.post, "post a campaign file (YAML or JSON)")
    post.add_argument("file")
    post.add_argument("--items", metavar="FILE.jsonl", help="more items, one JSON per line")
    add = _add(campaign, "add-items", commands.add_items, "add JSON-lines items to a campaign")
    add.add_argument("campaign")
    add.add_argument("items", metavar="FILE.jsonl")
    listing = _add(campaign, "list", commands.list_campaigns,
                   "list campaigns with their progress")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    status = _add(campaign, "status", commands.status, "progress counts of one campaign")
    status.add_argument("campaign")
    status.add_argument("--json", action="store_true", help="print JSON")
    for action in ("pause", "resume", "close"):
        change = _add(campaign, action, commands.change_state, f"{action} a campaign")
        change.add_argument("campaign")
    redraft = _add(campaign, "redraft", commands.redraft,
                   "draft again the items set aside, and lift a pause on a model's error")
    redraft.add_argument("campaign")
    adjudicate = _add(campaign, "adjudicate", commands.adjudicate,
                      "send an item to an adjudicator for the final call")
    adjudicate.add_argument("campaign")
    adjudicate.add_argument("item")
    qualification = _add(campaign, "qualification", commands.qualification,
                         "each expert's qualification result in a campaign")
    qualification.add_argument("campaign")
    qualification.add_argument("--json", action="store_true", help="print JSON")
    reports.add_commands(campaign, _add)


def _expert_commands(sub: Any) -> None:
    expert = sub.add_parser("expert", help="add, link, export and erase experts").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    add = _add(expert, "add", commands.add_expert, "add an expert profile")
    add.add_argument("id")
    add.add_argument("--name", required=True)
    add.add_argument("--skills", default="", help="comma-separated, e.g. cardiology,triage")
    add.add_argument("--credentials", default="", help='free text, e.g. "MD, cardiology"')
    add.add_argument("--time-zone", default="UTC", help="IANA zone, e.g. Europe/Berlin")
    add.add_argument("--quiet-hours", default=None, help="e.g. 22:00-07:00, local time")
    add.add_argument("--daily-cap", type=int, default=200)
    add.add_argument("--hourly-rate", type=float, default=None)
    _hard_case_flags(add, "standard")
    update = _add(expert, "update", commands.update_expert,
                  "change an expert's level, roles, name or skills (only what is given)")
    update.add_argument("id")
    update.add_argument("--name")
    update.add_argument("--skills", help="comma-separated; replaces the expert's skills")
    _hard_case_flags(update, None)
    show = _add(expert, "show", commands.show_expert, "print an expert profile as JSON")
    show.add_argument("id")
    invite = _add(expert, "invite", commands.invite_expert,
                  "make a personal link for an expert (a new one revokes the old)")
    invite.add_argument("id")
    invite.add_argument("--web", action="store_true", help="a web chat link (the default)")
    invite.add_argument("--telegram", action="store_true",
                        help="a single-use t.me deep link instead (needs TELEGRAM_BOT_TOKEN)")
    revoke = _add(expert, "revoke", commands.revoke_expert, "stop an expert's web chat link")
    revoke.add_argument("id")
    link = _add(expert, "link", commands.link_expert, "let a platform account act as an expert")
    link.add_argument("id")
    link.add_argument("identity", help="slack:U123, telegram:456 or web:abc")
    requalify = _add(expert, "requalify", commands.requalify,
                     "let an expert take a campaign's qualification again")
    requalify.add_argument("id")
    requalify.add_argument("campaign")
    privacy.add_commands(expert, _add)


def _hard_case_flags(parser: argparse.ArgumentParser, level: str | None) -> None:
    parser.add_argument("--level", choices=LEVELS, default=level,
                        help="extra judgments on hard cases go to senior experts first")
    parser.add_argument("--roles", help='comma-separated, e.g. adjudicator ("" for none)')


def _add(sub: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text,
                                                     description=help_text)
    parser.set_defaults(handler=handler)
    return parser


def _add_offline(sub: Any, name: str, handler: OfflineHandler, help_text: str
                 ) -> argparse.ArgumentParser:
    """A command that opens no Redis: it runs where the auditor is, with files alone."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text,
                                                     description=help_text)
    parser.set_defaults(offline=handler)
    return parser


async def _run(args: argparse.Namespace) -> int:
    settings = Settings()
    offline: OfflineHandler | None = getattr(args, "offline", None)
    if offline is not None:
        return await offline(settings, args)
    async with open_runtime(settings) as runtime:
        handler: Handler = args.handler
        return await handler(runtime, args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        return asyncio.run(_run(args))
    except InvalidCampaign as exc:
        print(f"error: {exc}", file=sys.stderr)
        for problem in exc.problems[1:]:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except (ExpertloopError, ValidationError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (RedisError, OSError) as exc:
        print(f"error: Redis unavailable: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(exc)


if __name__ == "__main__":
    sys.exit(main())
