"""Streamed exports of a campaign: the full `trail` per task, trainer formats (`preference`,
`kto`, `sft`, `openai-dpo`), a `csv` for spreadsheets and the final `labels` per item. Lines
are produced as the log is read, a batch at a time, so no task export holds the campaign; each
ends with a summary of rows written and tasks left out, and why. Every row says who decided it
(`decided_by`); the model's own decisions (auto-accepted) are left out unless asked for.

A campaign with images is exported in TRL's vision shape (trainers.py); each line comes with the
images its row names (`ExportLine.files`), for the caller that writes the file to copy beside it
from the media store: this module writes no files.

The tasks come through a `History` (core/ports.py): the plain reader of the ledger when none is
given. A history that can write an export's lines itself (`writes_lines`: DuckDB, for a pairwise
campaign's trail and preference) hands them over whole, with the same JSON values as the rows
built here, and this module only counts them for the summary."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel

from core.domain.campaigns import Campaign
from core.errors import ExpertloopError
from core.ports import Checkpoints, Log
from core.provenance.ledger import Ledger
from core.reports.history import history_of
from core.reports.labels import FinalLabels
from core.reports.lines import Fragments, LinePlan, spliced_line
from core.reports.quality import FAST_SHARE, fast_below
from core.reports.records import LEASELESS, TaskRecord
from core.reports.trail import csv_row, item_shown, shown_key
from core.reports.trail import edit_distance as edit_distance  # defined here before: kept
from core.reports.trail import trail_row as trail_row
from core.reports.trainers import (
    ExportOptions,
    Ratings,
    Row,
    Tally,
    kto_rows,
    openai_dpo_rows,
    preference_rows,
    sft_rows,
    shaped,
    vision_notes,
)

if TYPE_CHECKING:
    from core.ports import History

FORMATS = ("trail", "preference", "kto", "sft", "openai-dpo", "csv", "labels")
VISION = ("preference", "kto", "sft")  # TRL formats written in its vision shape for images
ALSO = ("adjudicated", "auto_accepted")  # decisions beside the experts' answers
CSV_FIELDS = ("campaign", "item", "expert", "lease", "event", "decision", "value", "text",
              "shown", "models", "gold", "gold_correct", "fast", "active_seconds", "assigned_at",
              "delivered_at", "opened_at", "answered_at", "channel", "seq", "hash", "late",
              "draft_models", "edit_ratio", "decided_in_s", "prompt", "decided_by", "rationale")
MODEL_LEFT_OUT = "decided_by_model"  # the summary's reason for the model's rows, left out
QUALIFICATION_LEFT_OUT = "qualification"  # an expert's test answers: no training rows
Progress = Callable[[int], None]
SHOWN: Row = {"prompt": None, "images": None, "drafts": None, "draft_models": None}  # spliced


class ExportLine(NamedTuple):
    """One line of the file, and the (SHA-256, relative path) of each image its row names."""

    text: str
    files: list[tuple[str, str]]


class UnknownFormat(ExpertloopError):
    pass


class ExportSummary(BaseModel):
    campaign: str
    format: str
    rows: int = 0
    tasks: int = 0
    excluded: dict[str, int] = {}
    labels: dict[str, int] = {}  # KTO: rows per label
    sources: dict[str, int] = {}  # rows per kind of signal (pairwise, rank, correct, ...)
    decided_by: dict[str, int] = {}  # rows per decider: expert, adjudicator, model
    states: dict[str, int] = {}  # labels: items per state (settled, asking, ...)
    notes: list[str] = []

    def line(self) -> str:
        left_out = ", ".join(f"{n} {why}" for why, n in sorted(self.excluded.items()))
        unit = "items" if self.format == "labels" else "tasks"
        text = f"{self.rows} rows ({self.format}) from {self.tasks} {unit}"
        states = ", ".join(f"{n} {state}" for state, n in sorted(self.states.items()))
        by = ", ".join(f"{n} {who}" for who, n in sorted(self.decided_by.items()))
        return text + (f"; left out: {left_out}" if left_out else "") + "".join(
            f"; {note}" for note in self.notes) + (f"; states: {states}" if states else "") + (
            f"; decided by: {by}" if by else "")


class Export:
    """One export run: iterate `lines()`, then read `summary`. The tasks are read through
    `history` (the plain reader of the ledger when None); the ledger seals the log first."""

    def __init__(self, ledger: Ledger, campaign: Campaign, format: str,
                 options: ExportOptions | None = None, *, conversations: int = 0,
                 history: History | None = None) -> None:
        if format not in FORMATS:
            raise UnknownFormat(f"unknown export format {format!r}; one of {', '.join(FORMATS)}")
        self.ledger, self.campaign, self.format = ledger, campaign, format
        self.history = history_of(ledger, history)
        self.options = shaped(options, conversations)  # the campaign's conversation items
        self.summary = ExportSummary(campaign=campaign.id, format=format)
        self.tally = Tally()
        self.ratings = Ratings()
        self.fast_below: float | None = None
        self.checkpoint: int | None = None  # the latest signed checkpoint's tree size
        self.deciders: Counter[str] = Counter()
        self.fragments = Fragments()

    async def total_events(self) -> int:
        """How far the log reaches now: a progress bar's total, in events."""
        return await self.ledger.log.last_seq(self.campaign.id)

    async def lines(self, progress: Progress | None = None) -> AsyncIterator[str]:
        """The file's lines (a stream, where no images are written beside it)."""
        async for line in self.entries(progress):
            yield line.text

    async def entries(self, progress: Progress | None = None) -> AsyncIterator[ExportLine]:
        """Seal the log first, so every row carries its event hashes."""
        await self.ledger.seal(self.campaign.id)
        if self.format == "labels":
            async for text in self._labels(progress):
                yield ExportLine(text, [])
            return
        if self.format in VISION and await self.history.has_images(self.campaign.id):
            self.options = shaped(self.options, 0, images=True)
        if self.format in ("trail", "csv"):
            self.checkpoint = await _checkpoint_size(self.ledger.log, self.campaign.id)
        plan = LinePlan(self.format, self.options.conversational, self.options.vision,
                        self.options.include_model, None, self.checkpoint, FAST_SHARE)
        if self.history.writes_lines(self.campaign, plan):  # it finds the median time itself
            async for texts in self._written(plan, progress):
                for text in texts:  # each made as it is taken: no batch of them for the GC
                    yield ExportLine(text, [])
            self._finish()
            return
        if self.format in ("trail", "csv"):
            self.fast_below = await self._fast_below()
        if self.format == "csv":
            yield ExportLine(_csv_line(CSV_FIELDS), [])
        async for batch in self.history.task_records(self.campaign.id, also=ALSO):
            for record in batch:
                self.summary.tasks += 1
                for row in self._rows(record):
                    self.summary.rows += 1
                    self.deciders[record.decided_by] += 1
                    yield self._line(row, record)
            if progress is not None:
                progress(batch[-1].event.seq)
        if self.format == "preference":
            for row in self.ratings.rows(self.options, self.tally):
                self.summary.rows += 1
                self.deciders[row["decided_by"]] += 1
                yield self._line(row)
        self._finish()

    async def _written(self, plan: LinePlan, progress: Progress | None
                       ) -> AsyncIterator[list[str]]:
        """The lines as the history writes them, a batch at a time (a generator step per line
        costs more than the line), counted as the rows built here would be."""
        async for batch in self.history.lines(self.campaign, plan):
            lines = [lined.line for lined in batch if lined.line is not None]
            if len(lines) < len(batch):
                self.tally.excluded.update(lined.left_out or "none" for lined in batch
                                           if lined.line is None)
            self.deciders.update(lined.decided_by for lined in batch if lined.line is not None)
            self.tally.sources.update(lined.source for lined in batch
                                      if lined.line is not None and lined.source is not None)
            self.summary.tasks += len(batch)
            self.summary.rows += len(lines)
            yield lines
            if progress is not None and batch:
                progress(batch[-1].seq)

    def _line(self, row: Row, record: TaskRecord | None = None) -> ExportLine:
        if self.format == "csv":
            return ExportLine(_csv_line(tuple(row[f] for f in CSV_FIELDS)), [])
        if self.format == "trail" and record is not None:  # the item's part encoded once
            shown = self.fragments.get(shown_key(record), lambda: item_shown(record))
            return ExportLine(spliced_line(row, shown), [])
        if not self.options.vision or self.options.images_dir is None:
            return ExportLine(_json_line(row), [])
        # a file under images_dir is named by its SHA-256: images/<sha256>.<ext>
        files = [(path.rsplit("/", 1)[-1].split(".", 1)[0], path) for path in row["images"]]
        return ExportLine(_json_line(row), files)

    async def _labels(self, progress: Progress | None) -> AsyncIterator[str]:
        final = FinalLabels(self.ledger, self.campaign, include_model=self.options.include_model,
                            history=self.history)
        async for row in final.rows(progress):
            self.summary.rows += 1
            if row["decided_by"]:
                self.deciders[row["decided_by"]] += 1
            yield _json_line(row)
        self.summary.tasks = sum(final.states.values()) + sum(final.excluded.values())
        self.summary.states = dict(final.states)
        self.tally.excluded.update(final.excluded)
        self._finish()

    async def _fast_below(self) -> float | None:
        """From the campaign's tallies (a History keeps its segments'): the median answer."""
        return fast_below((await self.history.tallies(self.campaign)).quality)

    def _rows(self, record: TaskRecord) -> Iterator[Row]:
        if record.type in LEASELESS and not self.options.include_model:
            return self.tally.skip(MODEL_LEFT_OUT)  # never a model's output as a judgment
        if self.format == "trail":
            return iter([trail_row(self.campaign, record, self.fast_below, self.checkpoint,
                                   shown=SHOWN)])
        if self.format == "csv":
            return iter([csv_row(self.campaign, record, self.fast_below)])
        if record.payload.get("qualification"):  # a test of the expert, not work to train on
            return self.tally.skip(QUALIFICATION_LEFT_OUT)
        if self.format == "preference":
            return preference_rows(record, self.options, self.tally, self.ratings)
        builder = {"openai-dpo": openai_dpo_rows, "kto": kto_rows, "sft": sft_rows}[self.format]
        return builder(record, self.options, self.tally)

    def _finish(self) -> None:
        summary, tally = self.summary, self.tally
        summary.excluded = dict(tally.excluded)
        summary.labels = dict(tally.labels)
        summary.sources = dict(tally.sources)
        summary.decided_by = dict(self.deciders)
        if tally.excluded.get(QUALIFICATION_LEFT_OUT):
            summary.notes.append(f"{tally.excluded[QUALIFICATION_LEFT_OUT]} qualification "
                                 "answers left out (they are in the trail)")
        if tally.excluded.get(MODEL_LEFT_OUT):
            summary.notes.append(f"{tally.excluded[MODEL_LEFT_OUT]} decided by the model alone "
                                 "left out (include them, marked, with --include-model)")
        if self.format == "kto" and len(tally.labels) == 1:
            only = next(iter(tally.labels))
            summary.notes.append(f"one class only: every label is {only}; KTO needs both")
        if summary.rows == 0 and self.format not in ("trail", "csv", "labels"):
            summary.notes.append(f"no {self.format} rows in a {self.campaign.spec.kind} campaign")
        summary.notes.extend(vision_notes(self.options, tally))


async def _checkpoint_size(log: Log, campaign_id: str) -> int | None:
    """Read once per export. The Log role does not keep checkpoints; a store that plays the
    Checkpoints role too (every Redis store) does."""
    if not isinstance(log, Checkpoints):
        return None
    last = await log.last_checkpoint(campaign_id)
    return last.size if last else None


def _json_line(row: Row) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


def _csv_line(values: tuple[Any, ...]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()
