"""Coordinator reports from the command line: `campaign export`, `campaign quality`, `campaign
models`, `campaign pay`. Results go to stdout (or a file), progress to stderr."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from bots.runtime import Runtime
from core.domain.media import Media
from core.reports.audit import AutoAcceptAudit
from core.reports.exports import FORMATS, Export
from core.reports.models import ModelsReport, ModelTreatment, campaign_models
from core.reports.pay import PayReport, campaign_pay, pay_csv
from core.reports.quality import Quality, campaign_quality
from core.reports.trainers import ExportOptions

Register = Callable[..., argparse.ArgumentParser]
IMAGES_DIR = "images"  # beside the exported file: TRL's `images` column names files in it


def add_commands(campaign: Any, add: Register) -> None:
    export_ = add(campaign, "export", export, "write a campaign's answers as training data")
    export_.add_argument("campaign")
    export_.add_argument("--format", required=True, choices=FORMATS)
    export_.add_argument("-o", "--output", required=True, metavar="FILE", help="- for stdout")
    export_.add_argument("--conversational", action="store_true",
                         help="prompts and completions as chat messages, not strings")
    export_.add_argument("--pairs", choices=("all", "best_worst"), default="all",
                         help="from rankings: every implied pair (default) or best over worst")
    export_.add_argument("--sft-shape", choices=("messages", "prompt_completion"),
                         default="messages", help="sft rows as messages or prompt/completion")
    export_.add_argument("--include-model", action="store_true",
                         help="add the rows the model decided alone (auto-accepted), marked "
                              "decided_by: model; left out by default")
    quality_ = add(campaign, "quality", quality,
                   "agreement (Krippendorff's alpha), gold, fast answers, model leaderboard")
    quality_.add_argument("campaign")
    quality_.add_argument("--json", action="store_true", help="print JSON")
    quality_.add_argument("--resamples", type=int, default=200,
                          help="bootstrap resamples for the leaderboard's intervals (200)")
    models_ = add(campaign, "models", models,
                  "how experts treat each model's drafts: accepted, edited, overridden")
    models_.add_argument("campaign")
    models_.add_argument("--json", action="store_true", help="print JSON")
    pay_ = add(campaign, "pay", pay, "pay per expert from measured time, with top-ups")
    pay_.add_argument("campaign")
    pay_.add_argument("--json", action="store_true", help="print JSON")
    pay_.add_argument("--csv", metavar="FILE", help="also write the payout ledger as CSV")


async def export(runtime: Runtime, args: argparse.Namespace) -> int:
    """A vision-shaped file gets its images copied from the media store into images/ beside
    it, each once (a name is its SHA-256, so one already there is the same bytes)."""
    campaign = await runtime.coordinator.catalog.campaign(args.campaign)
    to_stdout = args.output == "-"
    options = ExportOptions(conversational=args.conversational, pairs=args.pairs,
                            sft_shape=args.sft_shape, include_model=args.include_model,
                            images_dir=None if to_stdout else IMAGES_DIR)
    status = await runtime.coordinator.status(campaign.id)
    run = Export(runtime.ledger, campaign, args.format, options,
                 conversations=status.conversations, history=runtime.history)
    total = await run.total_events()
    copied = 0
    with ExitStack() as files:
        # a one-shot CLI command: blocking writes to a local file are what it is for
        out: TextIO = sys.stdout if to_stdout else files.enter_context(
            Path(args.output).open("w", encoding="utf-8"))  # noqa: ASYNC230
        with tqdm(total=total, unit=" events", desc=f"exporting {args.format}", leave=False,
                  file=sys.stderr, disable=total < 1000) as bar:
            def advance(seq: int) -> None:
                bar.update(seq - bar.n)

            async for line in run.entries(advance):
                out.write(line.text)
                if line.files:
                    copied += await asyncio.to_thread(
                        copy_images, runtime.media, Path(args.output).parent, line.files)
    print(run.summary.line() + (f"; {copied} images written to {IMAGES_DIR}/" if copied else ""),
          file=sys.stderr if to_stdout else sys.stdout)
    return 0


def copy_images(media: Media, folder: Path, files: list[tuple[str, str]]) -> int:
    """Write each image not yet beside the file (through a temp name, so a file there is always
    whole); returns how many were written."""
    written = 0
    for sha256, relative in files:
        target = folder / relative
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        partial.write_bytes(media.read(sha256))
        partial.replace(target)
        written += 1
    return written


async def quality(runtime: Runtime, args: argparse.Namespace) -> int:
    campaign = await runtime.coordinator.catalog.campaign(args.campaign)
    report = await campaign_quality(runtime.ledger, campaign, resamples=args.resamples,
                                    history=runtime.history)
    print(report.model_dump_json(indent=2) if args.json else "\n".join(quality_lines(report)))
    return 0


def quality_lines(report: Quality) -> list[str]:
    lines = [f"{report.campaign}  {report.kind}  answers {report.answers}  skipped "
             f"{report.skipped}  flagged {report.flagged}  none acceptable "
             f"{report.none_acceptable}  median {_num(report.median_seconds)} s"]
    lines += [f"alpha ({a.distance}): {_num(a.value, 3)} over {a.units} units"
              for a in report.alpha]
    ties = sum(1 for c in report.consensus if c.tie)
    lines.append(f"items with a majority: {len(report.consensus) - ties}, tied: {ties}")
    lines.append("expert            answers  median s  agreement  gold      fast (last 10)")
    lines += [f"{e.expert:<17} {e.answers:>7}  {_num(e.median_seconds):>8}  "
              f"{_num(e.agreement, 2):>9}  {_gold(e.gold_correct, e.gold_answers):<8}  "
              f"{e.fast_answers} ({e.fast_in_last_10}){'  LOOK' if e.listed_fast else ''}"
              f"{_unread(e.unread_acceptances)}" for e in report.experts]
    if report.leaderboard:
        lines.append("model leaderboard (Bradley-Terry, 95% bootstrap interval)")
        lines += [f"{s.rank:>2}. {s.model:<30} {s.score:.3f}  [{_num(s.low, 3)}, "
                  f"{_num(s.high, 3)}]  {s.wins}-{s.losses}-{s.ties}" for s in report.leaderboard]
    return lines


async def models(runtime: Runtime, args: argparse.Namespace) -> int:
    campaign = await runtime.coordinator.catalog.campaign(args.campaign)
    report = await campaign_models(runtime.ledger, campaign, history=runtime.history)
    print(report.model_dump_json(indent=2) if args.json else "\n".join(models_lines(report)))
    return 0


def models_lines(report: ModelsReport) -> list[str]:
    """One row per model and version; then wins against each other model, and the experts
    whose acceptances came faster than reading (to look at, not to punish)."""
    lines = [f"{report.campaign}  {report.kind}  reading {report.reading_chars_per_s:g} chars/s",
             "model                          made  shown  decided  accepted  edited  overridden"
             "  none  flagged  edit ratio q1/med/q3  median s"]
    lines += [_model_line(m) for m in report.models]
    lines += [f"{m.name} vs {v.model}: won {v.wins}, lost {v.losses}, tied {v.ties}"
              for m in report.models for v in m.versus]
    stamps = [e for e in report.experts if e.unread]
    if stamps:
        lines.append("accepted faster than the draft could be read (to look at, not a penalty):")
        lines += [f"  {e.expert:<17} {e.unread} of {e.acceptances} acceptances" for e in stamps]
    return lines + audit_lines(report.audit)


def audit_lines(audit: AutoAcceptAudit | None) -> list[str]:
    """Auto-accept's threshold beside what its audit found: the share experts overrode."""
    if audit is None:
        return []
    rate = "-" if audit.override_rate is None else f"{audit.override_rate:.1%}"
    return [f"auto-accept at confidence >= {audit.confidence_at_least:g}: "
            f"{audit.auto_accepted} accepted by the model; audit ({audit.audit_rate:.0%}) "
            f"{audit.audited} items, {audit.judged} judged, {audit.overridden} overridden, "
            f"override rate {rate}"]


def _model_line(m: ModelTreatment) -> str:
    sizes = "/".join(f"{q:.2f}" for q in m.edit_ratio.quartiles) or "-"
    return (f"{m.name:<30} {m.made:>4}  {m.shown:>5}  {m.decided:>7}  {m.accepted:>8}  "
            f"{m.edited:>6}  {m.overridden:>10}  {m.none_acceptable:>4}  {m.flagged:>7}  "
            f"{sizes:<20}  {_num(m.median_decide_seconds):>8}")


async def pay(runtime: Runtime, args: argparse.Namespace) -> int:
    campaign = await runtime.coordinator.catalog.campaign(args.campaign)
    report = await campaign_pay(runtime.ledger, campaign, history=runtime.history)
    if args.csv:
        with Path(args.csv).open("w", encoding="utf-8", newline="") as out:  # noqa: ASYNC230
            out.writelines(pay_csv(report))
    print(report.model_dump_json(indent=2) if args.json else "\n".join(pay_lines(report)))
    return 0


def pay_lines(report: PayReport) -> list[str]:
    lines = ["expert            tasks   hours     base  per hour   top-up     total"]
    lines += [f"{p.expert:<17} {p.tasks:>5}  {p.hours:>6.2f}  {p.base:>7.2f}  "
              f"{'—' if p.rate_note else _num(p.effective_hourly):>8}  {p.top_up:>7.2f}  "
              f"{p.total:>8.2f}" + ("  (topped up to the floor)" if p.top_up else "")
              for p in report.lines]
    notes = sorted({p.rate_note for p in report.lines if p.rate_note})
    lines += [f"— per hour: {note}" for note in notes]
    lines.append(f"total {report.currency or '(no pay set)'}: base {report.base:.2f}, "
                 f"top-ups {report.top_up:.2f}, total {report.total:.2f}")
    return lines


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _unread(count: int) -> str:
    return f"  accepted unread: {count}" if count else ""


def _gold(correct: int, answered: int) -> str:
    return f"{correct}/{answered}" if answered else "-"
