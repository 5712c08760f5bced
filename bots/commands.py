"""What each CLI command does, over one open Runtime. Output to stdout, progress to stderr."""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path

from tqdm import tqdm

from bots import demo as demo_module
from bots.proofs import verify_checkpoints
from bots.runtime import Runtime, stop_on_signals
from bots.slack_wiring import slack_identity
from bots.telegram_wiring import telegram_invite
from bots.web import serve as serve_web
from bots.worker import run_worker
from core.domain.campaigns import CampaignSpec, CampaignStatus
from core.domain.experts import Expert
from core.domain.qualification import counts as qualification_counts
from core.errors import Conflict, ExpertloopError
from core.service.campaign_files import read_campaign
from core.service.staging import ItemSpool, spool_lines


async def serve(runtime: Runtime, args: argparse.Namespace) -> int:
    print(f"expertloop web on {runtime.settings.public_url()} (GET /healthz)", flush=True)
    await serve_web(runtime, stop_on_signals())
    return 0


async def worker(runtime: Runtime, args: argparse.Namespace) -> int:
    print("expertloop worker running: expiring leases, sealing the log, drafting", flush=True)
    await run_worker(runtime, stop_on_signals())
    return 0


async def demo(runtime: Runtime, args: argparse.Namespace) -> int:
    await demo_module.run(runtime, stop_on_signals(), simulate=args.simulate, speed=args.speed)
    return 0


async def post(runtime: Runtime, args: argparse.Namespace) -> int:
    spec, spool = read_campaign(Path(args.file))
    if spec.id and await runtime.store.load_campaign(spec.id):
        raise Conflict(f"campaign {spec.id!r} already exists")
    if args.items:
        items_path = Path(args.items)
        spool.source = items_path.name
        with tqdm(total=items_path.stat().st_size, unit="B", unit_scale=True, desc="checking",
                  leave=False) as bar, items_path.open(encoding="utf-8") as lines:
            spool_lines(spool, lines, bar.update)
    spool.check()
    with tqdm(total=spool.count, unit=" items", desc="storing", disable=spool.count < 1000,
              leave=False) as bar:
        campaign = await runtime.coordinator.post_campaign(spec, spool, actor_id=_who(),
                                                           progress=bar.update)
    spool.close()
    overlap = f"{spec.overlap_min}" if spec.overlap_min == spec.overlap_max \
        else f"{spec.overlap_min}..{spec.overlap_max}"
    print(f"posted {campaign.id}: {spool.count} items, kind {spec.kind}, overlap {overlap}")
    return 0


async def add_items(runtime: Runtime, args: argparse.Namespace) -> int:
    campaign = await runtime.coordinator.catalog.campaign(args.campaign)
    path = Path(args.items)
    spool = ItemSpool(CampaignSpec.model_validate(campaign.spec.model_dump()), path.name,
                      base_dir=path.parent)  # image paths start beside the items file
    with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc="checking",
              leave=False) as bar, path.open(encoding="utf-8") as lines:
        spool_lines(spool, lines, bar.update)
    spool.check()
    with tqdm(total=spool.count, unit=" items", desc="storing", leave=False) as bar:
        added = await runtime.coordinator.add_items(args.campaign, spool, actor_id=_who(),
                                                    progress=bar.update)
    print(f"added {added} items to {args.campaign}")
    return 0


async def list_campaigns(runtime: Runtime, args: argparse.Namespace) -> int:
    found = await runtime.coordinator.list_campaigns()
    if args.json:
        print(json.dumps([status.model_dump(mode="json") for status in found], indent=2))
        return 0
    if not found:
        print("no campaigns yet: expertloop campaign post FILE")
    for status in found:
        print(_status_line(status))
    return 0


async def status(runtime: Runtime, args: argparse.Namespace) -> int:
    found = await runtime.coordinator.status(args.campaign)
    if args.json:
        print(found.model_dump_json(indent=2))
        return 0
    print(_status_line(found))
    for line in _drafting_lines(found):
        print(line)
    return 0


def _drafting_lines(s: CampaignStatus) -> list[str]:
    """For a campaign whose models draft: its counts, and what the coordinator must do when
    items were set aside or an endpoint refused us."""
    if s.drafting is None:
        return []
    counts = {name: value for name, value in s.drafting.model_dump().items() if name != "paused"}
    lines = ["  drafting  " + "  ".join(f"{name} {value}" for name, value in counts.items())]
    if s.drafting.paused:
        lines.append(f"  drafting paused: {s.drafting.paused}")
    if s.drafting.paused or s.drafting.failed:
        lines.append(f"  to draft again once the model is fixed: "
                     f"expertloop campaign redraft {s.id}")
    return lines


async def redraft(runtime: Runtime, args: argparse.Namespace) -> int:
    queued = await runtime.coordinator.redraft(args.campaign, _who())
    print(f"{args.campaign}: {queued} item{'' if queued == 1 else 's'} queued for drafting again")
    return 0


def _status_line(s: CampaignStatus) -> str:
    return (f"{s.id}  {s.state}  {s.kind}  items {s.items}  answers {s.answers}  "
            f"in progress {s.in_progress}  done {s.done}  skipped {s.skipped}  "
            f"flagged {s.flagged}  none acceptable {s.none_acceptable}{_set_aside(s)}"
            f"{_adjudication(s)}  — {s.title}")


def _adjudication(s: CampaignStatus) -> str:
    """Shown once a campaign has any: items waiting for a final call are not an error."""
    if not (s.awaiting_adjudication or s.adjudicated):
        return ""
    return (f"  awaiting adjudication {s.awaiting_adjudication}  "
            f"adjudicated {s.adjudicated}")


def _set_aside(s: CampaignStatus) -> str:
    """Shown only when some answers were set aside: they need an operator's look."""
    return f"  set aside {s.dead_requests}" if s.dead_requests else ""


async def change_state(runtime: Runtime, args: argparse.Namespace) -> int:
    state = await runtime.coordinator.change_state(args.campaign, args.action, _who())
    print(f"{args.campaign} is now {state}")
    return 0


async def add_expert(runtime: Runtime, args: argparse.Namespace) -> int:
    expert = Expert.model_validate({
        "id": args.id, "name": args.name, "skills": _listed(args.skills),
        "credentials": args.credentials, "time_zone": args.time_zone,
        "quiet_hours": args.quiet_hours, "daily_cap": args.daily_cap,
        "hourly_rate": args.hourly_rate, "level": args.level,
        "roles": _listed(args.roles or "")})
    await runtime.coordinator.add_expert(expert)
    print(f"added expert {expert.id}{_standing(expert)}")
    return 0


async def update_expert(runtime: Runtime, args: argparse.Namespace) -> int:
    """Only the fields given change; `--roles ""` clears the roles."""
    changes = {name: value for name, value in (
        ("name", args.name), ("level", args.level),
        ("skills", None if args.skills is None else _listed(args.skills)),
        ("roles", None if args.roles is None else _listed(args.roles))) if value is not None}
    if not changes:
        raise ExpertloopError("nothing to update: give --level, --roles, --name or --skills")
    expert = await runtime.coordinator.update_expert(args.id, changes)
    print(f"updated expert {expert.id}: {', '.join(sorted(changes))}{_standing(expert)}")
    return 0


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _standing(expert: Expert) -> str:
    roles = f", roles {','.join(expert.roles)}" if expert.roles else ""
    return f" (level {expert.level}{roles})"


async def adjudicate(runtime: Runtime, args: argparse.Namespace) -> int:
    campaign = await runtime.coordinator.campaign(args.campaign)
    queued = await runtime.coordinator.adjudicate(campaign.id, args.item, _who())
    print(f"{campaign.id}: item {args.item} " + (
        "sent to adjudication; it waits for an adjudicator" if queued else
        "already waits for an adjudicator (nothing changed)"))
    if not campaign.spec.adjudicate:
        print(f"note: {NO_ADJUDICATORS}")
    return 0


NO_ADJUDICATORS = ("this campaign has adjudicate: false, so no adjudicator is offered its "
                   "items: the item waits")


async def qualification(runtime: Runtime, args: argparse.Namespace) -> int:
    results = await runtime.coordinator.qualification(args.campaign)
    tally = qualification_counts(results)
    if args.json:
        print(json.dumps({"id": args.campaign, "counts": tally.model_dump(),
                          "experts": [r.model_dump() for r in results]}, indent=2))
        return 0
    print(f"{args.campaign}: passed {tally.passed}  failed {tally.failed}  "
          f"in progress {tally.in_progress}")
    for r in results:
        score = f"  {r.right} of {r.answers} right" if r.state != "in_progress" else ""
        print(f"  {r.expert}  {r.state}{score}")
    return 0


async def requalify(runtime: Runtime, args: argparse.Namespace) -> int:
    done = await runtime.coordinator.requalify(args.id, args.campaign, _who())
    print(f"{args.id} may take the qualification of {args.campaign} again" if done else
          f"{args.id} had not begun the qualification of {args.campaign}: nothing changed")
    return 0


async def show_expert(runtime: Runtime, args: argparse.Namespace) -> int:
    print((await runtime.coordinator.expert(args.id)).model_dump_json(indent=2))
    return 0


async def invite_expert(runtime: Runtime, args: argparse.Namespace) -> int:
    if getattr(args, "telegram", False):
        print(await telegram_invite(runtime, args.id))
        return 0
    token = await runtime.coordinator.invite_web(args.id)
    print(f"{runtime.settings.public_url()}/chat/{token}")
    return 0


async def revoke_expert(runtime: Runtime, args: argparse.Namespace) -> int:
    await runtime.coordinator.revoke_web(args.id)
    print(f"{args.id}'s web chat link no longer works")
    return 0


async def link_expert(runtime: Runtime, args: argparse.Namespace) -> int:
    by_email = await slack_identity(runtime, args.id, args.identity)
    expert = await runtime.coordinator.link(args.id, by_email or args.identity)
    print(f"{by_email or args.identity} now acts as {expert.id}")
    return 0


async def events(runtime: Runtime, args: argparse.Namespace) -> int:
    await runtime.coordinator.catalog.campaign(args.campaign)
    for event in await runtime.ledger.events(args.campaign, args.after, args.limit):
        print(json.dumps(event, ensure_ascii=False))
    return 0


async def verify(runtime: Runtime, args: argparse.Namespace) -> int:
    await runtime.coordinator.catalog.campaign(args.campaign)  # unknown id: a clear error
    if not args.no_seal:
        await runtime.ledger.seal(args.campaign)
    verdict = await runtime.ledger.verify(args.campaign)
    if not verdict.ok:
        raise ExpertloopError(verdict.line())
    # the chain alone does not catch a rewrite resealed by someone with Redis access: checkpoints
    anchored = await verify_checkpoints(runtime, args.campaign, args) if args.checkpoints else ""
    print(verdict.line())
    if anchored:
        print(anchored)
    return 0


def _who() -> str:
    """The coordinator behind a CLI command, as the log names them: the login at this shell."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in a bare container
        return "cli"
