"""Export lines that encode what repeats once: an item's prompt, images and drafts as shown are
the same JSON on every answer to it, so they are encoded once per item and order and spliced
into each row's line. The rest of a row is encoded by json.dumps, a run of keys at a time, so
a line is byte for byte `json.dumps(row)` with the same separators."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

KEPT = 8192  # items (and orders) whose fragments are kept: answers to one item come together


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Fragments:
    """JSON text by key, encoded on first use and kept while it keeps being used."""

    def __init__(self) -> None:
        self.kept: OrderedDict[Hashable, dict[str, str]] = OrderedDict()

    def get(self, key: Hashable | None, make: Callable[[], dict[str, Any]]) -> dict[str, str]:
        """The encoded values of `make()`; None as key: encoded now, not kept."""
        if key is None:
            return {name: dumps(value) for name, value in make().items()}
        found = self.kept.get(key)
        if found is None:
            found = self.kept[key] = {name: dumps(value) for name, value in make().items()}
            while len(self.kept) > KEPT:
                self.kept.popitem(last=False)
        else:
            self.kept.move_to_end(key)
        return found


def spliced_line(row: dict[str, Any], raw: dict[str, str]) -> str:
    """`json.dumps(row)` plus a newline, where each key in `raw` takes the JSON text given
    there instead of its value in `row`."""
    parts: list[str] = []
    run: dict[str, Any] = {}
    for key, value in row.items():
        if key in raw:
            if run:
                parts.append(dumps(run)[1:-1])
                run = {}
            parts.append(f"{dumps(key)}:{raw[key]}")
        else:
            run[key] = value
    if run:
        parts.append(dumps(run)[1:-1])
    return "{" + ",".join(parts) + "}\n"


class LinePlan(NamedTuple):
    """An export a History may write lines for itself (`History.writes_lines`), with what the
    rows depend on beside the log."""

    format: str  # trail | preference
    conversational: bool  # preference: prompts and completions as chat messages
    vision: bool  # TRL's vision shape (a campaign with images)
    include_model: bool  # the model's own decisions too
    fast_below: float | None  # trail: an answer faster than this is flagged as fast
    checkpoint: int | None  # trail: the latest signed checkpoint's size
    fast_share: float | None = None  # trail, with no fast_below: flag answers faster than this
    # share of the median answer (core.reports.quality.fast_below), found by the history


class Lined(NamedTuple):
    """One finished task as an export's line: the line (a newline at its end), or why the
    task gives none (a summary's `excluded` reason); who decided it, and for a preference
    row the kind of signal (`sources`)."""

    seq: int
    line: str | None
    left_out: str | None
    decided_by: str
    source: str | None = None
