"""Validating items before any is stored: a campaign is accepted whole or not at all, so items
are checked into a spool first (in memory while small, on disk past that) and stored after."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from core.domain.campaigns import CampaignSpec, item_problem
from core.domain.drafting import draft_plan
from core.domain.items import Item, clean_loc, item_confidence
from core.domain.rules import queue_key
from core.errors import InvalidCampaign, Problem
from core.ports import StagedItem

MAX_PROBLEMS = 20  # enough to fix a file in one go, few enough to read
Located = tuple[tuple[str | int, ...], int | None]
Locate = Callable[[tuple[str | int, ...]], int | None]
# Puts an item's images in stored form: the item, or None after naming its problems.
Restage = Callable[[Item, tuple[str | int, ...], int | None], Item | None]


class ItemSpool:
    """Items that passed every check, in file order, with the line each came from."""

    def __init__(self, spec: CampaignSpec, source: str = "items",
                 base_dir: Path | None = None) -> None:
        self.spec = spec
        self.source = source
        self.base_dir = base_dir  # where image paths start; None (the API): paths are refused
        self.locate: Locate | None = None  # a campaign file's field -> line, for image faults
        self.count = 0
        self.problems: list[Problem] = []
        self._ids: set[str] = set()
        self.imaging: dict[str, Located] = {}  # items with images: where each was written
        # The spool outlives this call; `close()` ends it.
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=8 << 20, mode="w+", encoding="utf-8")

    def add_json(self, text: str, line: int | None, loc: tuple[str | int, ...] = ()) -> None:
        """Check one item given as JSON text (a line of a JSON-lines file)."""
        try:
            item = Item.model_validate_json(text)
        except ValidationError as exc:
            self._invalid(exc, line, loc)
            return
        self._accept(item, line, loc)

    def add(self, data: object, line: int | None, loc: tuple[str | int, ...] = (),
            locate: Callable[[tuple[str | int, ...]], int | None] | None = None) -> None:
        """Check one item given as parsed data; `locate` maps a field path to its line."""
        try:
            item = Item.model_validate(data)
        except ValidationError as exc:
            self._invalid(exc, line, loc, locate)
            return
        self._accept(item, line, loc, locate)

    def _accept(self, item: Item, line: int | None, loc: tuple[str | int, ...],
                locate: Callable[[tuple[str | int, ...]], int | None] | None = None) -> None:
        problem = item_problem(self.spec, item)
        if problem is not None:
            where = (*loc, *problem[0])
            self._problem(problem[1], locate(where) if locate else line, where)
        elif item.id in self._ids:
            self._problem(f"item id {item.id!r} appears twice", line, (*loc, "id"))
        else:
            self._ids.add(item.id)  # even after a problem, so later duplicates are still named
            if self.problems:
                return
            if item.images:
                self.imaging[item.id] = (loc, line)
            self._file.write(self._row(item, line) + "\n")
            self.count += 1

    def _row(self, item: Item, line: int | None) -> str:
        gold = "1" if item.gold is not None else "0"
        chat = "1" if isinstance(item.prompt, list) else "0"
        plan = self._plan(item)
        routed = "" if plan else self._routed(item)
        return (f"{item.id}\t{len(item.drafts)}\t{gold}\t{line or 0}\t{chat}\t{routed}\t"
                f"{plan}\t{item.model_dump_json()}")

    def restage(self, restage: Restage) -> None:
        """Rewrite the items that have images through `restage` (their images in stored form),
        once every item passed its other checks; a failed one keeps its row but names its
        problems, so `check` refuses the whole campaign."""
        if not self.imaging or self.problems:
            return
        self._file.seek(0)
        fresh = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (replaces self._file)
            max_size=8 << 20, mode="w+", encoding="utf-8")
        for row in self._file:
            item_id = row.split("\t", 1)[0]
            where = self.imaging.get(item_id)
            if where is not None:
                stored = restage(Item.model_validate_json(row.rsplit("\t", 1)[1]), *where)
                row = self._row(stored, where[1]) + "\n" if stored is not None else row
            fresh.write(row)
        self._file.close()
        self._file = fresh
        if not self.problems:
            self.imaging = {}  # stored form now: a second pass has nothing to do
    def _plan(self, item: Item) -> str:
        """The drafting plan of an item the campaign's models draft for, or ''."""
        drafting = self.spec.drafting
        models = drafting.slots(self.spec.kind, len(item.drafts)) if drafting else []
        return draft_plan(item, models).model_dump_json() if models else ""

    def _routed(self, item: Item) -> str:
        """The route order's key and the item's confidence, when the campaign routes by them
        (JSON), or ''. An item still to be drafted is routed once its drafts are in."""
        route = self.spec.route
        if route.order == "file" and route.auto_accept is None:
            return ""
        confidence = item_confidence(item)
        key = queue_key(route.order, confidence, [draft.text for draft in item.drafts])
        return json.dumps({"key": key, "confidence": confidence})

    def _invalid(self, exc: ValidationError, line: int | None, loc: tuple[str | int, ...],
                 locate: Callable[[tuple[str | int, ...]], int | None] | None = None) -> None:
        for error in exc.errors():
            where = (*loc, *clean_loc(error["loc"]))
            self._problem(error["msg"], locate(where) if locate else line, where)

    def problem(self, msg: str, loc: tuple[str | int, ...], line: int | None) -> None:
        """Name a fault found after reading (an image), at its field's line when known."""
        inline = bool(loc) and loc[0] == "items"  # a JSON-lines item has its line already
        located = self.locate(loc) if self.locate is not None and inline else None
        self._problem(msg, located or line, loc)

    def _problem(self, msg: str, line: int | None, loc: tuple[str | int, ...]) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(msg, source=self.source, line=line, loc=loc))

    def holds(self, item_id: str) -> bool:
        """Whether an item of this id was read (kept or not)."""
        return item_id in self._ids

    def check(self) -> None:
        """Raise every problem found, or keep quiet: nothing is stored before this passes."""
        if self.problems:
            raise InvalidCampaign(self.problems)

    def batches(self, size: int = 1000) -> Iterator[list[StagedItem]]:
        self.check()
        self._file.seek(0)
        batch: list[StagedItem] = []
        for row in self._file:
            item_id, n_drafts, gold, line, chat, routed, plan, text = \
                row.rstrip("\n").split("\t", 7)
            route = json.loads(routed) if routed else {}
            batch.append(StagedItem(item_id, int(n_drafts), gold == "1", text, int(line) or None,
                                    plan, chat == "1", route.get("key"), route.get("confidence")))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def close(self) -> None:
        self._file.close()


def spool_items(spec: CampaignSpec, items: Iterable[Item | dict[str, object]],
                source: str = "items") -> ItemSpool:
    """Spool items that arrived in memory (an API body), numbered by position."""
    spool = ItemSpool(spec, source)
    for index, item in enumerate(items):
        data = item.model_dump() if isinstance(item, Item) else item
        spool.add(data, None, ("items", index))
    return spool


def spool_lines(spool: ItemSpool, lines: Iterable[str], progress: Callable[[int], None] | None
                = None) -> ItemSpool:
    """Spool a JSON-lines stream of any length, one item per line; blank lines are skipped."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            spool.add_json(line, number)
        if progress is not None:
            progress(len(line.encode()))
    return spool
