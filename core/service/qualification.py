"""Qualification before a campaign: checking its gold items at posting, handing each expert
those items first, grading them once all are answered (a `qualified` event), and what a
coordinator sees and does about it (results, requalify)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from core.domain.campaigns import Campaign, CampaignSpec, item_problem
from core.domain.cards import Card, Idle
from core.domain.items import Item, clean_loc
from core.domain.kinds import Kind
from core.domain.qualification import (
    FAILED_MESSAGE,
    QualificationAnswer,
    decided,
)
from core.errors import InvalidCampaign, Problem
from core.ports import Claim, Claimed, Clock, QualificationClaim, StagedItem, Stores
from core.provenance.events import Event, body_json, iso_ms
from core.reports.judgments import gold_correct
from core.reports.records import EventRef, TaskRecord

UNSCORED = (Kind.correct, Kind.write)  # no answer to compare with gold
Row = tuple[object, int | None, tuple[str | int, ...]]  # an item, its line, its field path
Locate = Callable[[tuple[str | int, ...]], int | None]


class Gate(NamedTuple):
    """What a campaign's qualification says about an expert's next task there: `open` (take the
    real tasks), else a qualification task to show (`claimed`), else why none (`idle`)."""

    open: bool
    claimed: Claimed | None = None
    idle: Idle | None = None
    position: int = 0
    total: int = 0

    def shown(self, card: Card) -> Card:
        """The card says it is a qualification task, and which of how many."""
        intro = (f"Qualification, task {self.position} of {self.total}: answers with known "
                 "answers, paid for your time, open this campaign's tasks to you.")
        return card.model_copy(update={"instructions": f"{intro}\n\n{card.instructions}"})


class Qualifying:
    """The service's side: one store call per next task in a campaign with a qualification."""

    def __init__(self, stores: Stores, clock: Clock) -> None:
        self.store = stores.qualifications
        self.log = stores.log
        self.experts = stores.experts
        self.clock = clock

    async def gate(self, campaign: Campaign, claim: Claim) -> Gate:
        """Open for a campaign without qualification or an expert who passed; the claim's credit
        is then still owed to the campaign's own claim, and otherwise credited here."""
        qualification = campaign.spec.qualification
        if qualification is None:
            return Gate(open=True)
        found = await self.store.claim_qualification(claim._replace(credit=None))
        if found.status == "complete":
            found = await self._grade(campaign, claim.expert, found.answers)
        if found.status == "passed":
            return Gate(open=True)
        if claim.credit is not None:
            await self.experts.credit(claim.expert, claim.credit)
        if found.status == "failed":
            return Gate(open=False, idle=Idle(reason="no_tasks", message=FAILED_MESSAGE))
        return Gate(open=False, claimed=found.claimed, position=found.position,
                    total=found.total)

    async def _grade(self, campaign: Campaign, expert: str,
                     answers: tuple[QualificationAnswer, ...]) -> QualificationClaim:
        """Score every answer against its item's gold and keep the result with its event, once;
        a result decided meanwhile by another process stands."""
        seqs = sorted({a.answer_seq for a in answers} | {a.item_seq for a in answers})
        events = {e.seq: json.loads(e.body)
                  for e in await self.log.read_events_at(campaign.id, seqs)}
        right = sum(_right(campaign.spec.kind, events[a.item_seq], events[a.answer_seq],
                           a.answer_seq) for a in answers)
        spec = campaign.spec.qualification
        assert spec is not None
        result = decided(right, len(answers), spec.pass_share, expert)
        event = Event(campaign=campaign.id, type="qualified", at=iso_ms(self.clock.now_ms()),
                      actor="system", expert=expert,
                      payload={"expert": expert, "passed": result.state == "passed",
                               "share": result.share, "right": right,
                               "answers": [a.answer_seq for a in answers]})
        if await self.store.decide_qualification(campaign.id, result, body_json(event)):
            return QualificationClaim(result.state)
        standing = {r.expert: r.state for r in await self.store.qualification_results(campaign.id)}
        return QualificationClaim(standing.get(expert, result.state))


def _right(kind: Kind, item_event: dict[str, Any], answer: dict[str, Any], seq: int) -> bool:
    """An answer matches its item's gold; a skip or flag never does."""
    if answer["type"] != "answered":
        return False
    item = Item.model_validate(item_event["payload"]["item"])
    record = TaskRecord(type=answer["type"], expert=str(answer.get("expert")),
                        lease=str(answer.get("lease")), item_id=item.id, at=str(answer["at"]),
                        payload=answer["payload"], event=EventRef(seq, None),
                        prev=None, assigned=None, item_ref=None, item=item)
    return bool(gold_correct(record, kind))


# Posting: every qualification item is checked like a campaign item, and must have its gold.

def qualification_items(spec: CampaignSpec) -> list[StagedItem]:
    """The qualification items given inline (the API, or a file's list once read), checked;
    InvalidCampaign names each fault by field."""
    qualification = spec.qualification
    if qualification is None:
        return []
    where: tuple[str | int, ...] = ("qualification", "items")
    if isinstance(qualification.items, str):
        raise InvalidCampaign([Problem(
            "names a file, which only a campaign file can: give the items inline", loc=where)])
    rows = [(data, None, (*where, index)) for index, data in enumerate(qualification.items)]
    return checked_items(spec, rows, "campaign")


def checked_items(spec: CampaignSpec, rows: Iterable[Row], source: str,
                  locate: Locate | None = None) -> list[StagedItem]:
    """Check every row; raise all problems found at once, or return the items to store."""
    problems: list[Problem] = []
    if spec.kind in UNSCORED:
        problems.append(Problem(f"a {spec.kind} campaign has no answer to check against gold, "
                                "so it cannot have a qualification", source=source,
                                loc=("qualification",)))
    staged: list[StagedItem] = []
    seen: set[str] = set()
    for data, line, loc in rows:
        item, problem = _checked(spec, data, loc, seen)
        if item is not None:
            staged.append(StagedItem(item.id, len(item.drafts), True, item.model_dump_json()))
        problems += [Problem(msg, source=source, line=locate(at) if locate else line, loc=at)
                     for at, msg in problem]
    if not staged and not problems:
        problems.append(Problem("a qualification needs at least one item", source=source,
                                loc=("qualification", "items")))
    if problems:
        raise InvalidCampaign(problems[:20])
    return staged


def _checked(spec: CampaignSpec, data: object, loc: tuple[str | int, ...], seen: set[str]
             ) -> tuple[Item | None, list[tuple[tuple[str | int, ...], str]]]:
    try:
        item = Item.model_validate(data)
    except ValidationError as exc:
        return None, [((*loc, *clean_loc(e["loc"])), e["msg"]) for e in exc.errors()]
    if spec.drafting is not None:
        spec = spec.model_copy(update={"drafting": None})  # models draft for real items only
    problem = item_problem(spec, item)
    if problem is not None:
        return None, [((*loc, *problem[0]), problem[1])]
    if item.gold is None:
        return None, [((*loc, "gold"), "a qualification item needs `gold`, its known answer")]
    if item.id in seen:
        return None, [((*loc, "id"), f"item id {item.id!r} appears twice")]
    seen.add(item.id)
    return item, []


def resolve_qualification(spec: CampaignSpec, base_dir: Path, source: str,
                          locate: Locate) -> CampaignSpec:
    """A campaign file's qualification, checked with file, line and field: its inline list, or
    the JSON-lines file it names (relative to the campaign file), which the spec then holds
    inline, as the API gives it."""
    qualification = spec.qualification
    if qualification is None:
        return spec
    where: tuple[str | int, ...] = ("qualification", "items")
    if isinstance(qualification.items, list):
        inline: list[Row] = [(data, None, (*where, index))
                             for index, data in enumerate(qualification.items)]
        checked_items(spec, inline, source, locate)
        return spec
    path = base_dir / qualification.items
    rows = _rows_from_file(path, source, locate(where))
    checked_items(spec, rows, path.name)
    read = qualification.model_copy(update={"items": [data for data, _, _ in rows]})
    return spec.model_copy(update={"qualification": read})


def _rows_from_file(path: Path, source: str, line: int | None) -> list[Row]:
    """A JSON-lines file of items, each with its line; blank lines skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidCampaign([Problem(f"cannot read {path.name}: {exc}", source=source,
                                       line=line, loc=("qualification", "items"))]) from exc
    rows: list[Row] = []
    problems = []
    for number, entry in enumerate(text.splitlines(), start=1):
        if entry.strip():
            try:
                rows.append((json.loads(entry), number, ()))
            except json.JSONDecodeError as exc:
                problems.append(Problem(f"invalid JSON: {exc.msg}", source=path.name,
                                        line=number))
    if problems:
        raise InvalidCampaign(problems[:20])
    return rows
