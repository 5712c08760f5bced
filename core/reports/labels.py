"""The final label per item (`export --format labels`): what the item's judgments decided, how
(`majority`, `adjudicated`, `auto_accepted`, or `collected` for texts, which have no vote), the
agreement behind it, and the events it rests on; an item not decided yet says where it stands
(`asking`, `awaiting_adjudication`, `unanswered`, or `unsettled` when its judgments are all in
and still disagree). Decisions are in the file's draft indices, like every export.

An item's state is only known once its log is read, so this keeps a small record per item
(its votes and event references) for the campaign's length: two reads of the log, the items
and the system's judgment events first, then the decisions."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.domain.campaigns import Campaign
from core.domain.hard_cases import settled
from core.domain.kinds import Kind
from core.provenance.ledger import Ledger
from core.reports.history import history_of
from core.reports.judgments import ranking, winner_loser
from core.reports.records import BATCH, DECIDED, ITEM_EVENTS, TaskRecord

if TYPE_CHECKING:
    from core.ports import History

Row = dict[str, Any]
TEXTS = (Kind.correct, Kind.write)  # no vote: the texts are collected, not decided between
QUEUED = ("adjudication_needed", "sent_to_adjudication")
REACHED_BY = {"majority": "expert", "collected": "expert", "adjudicated": "adjudicator",
              "auto_accepted": "model"}


@dataclass
class ItemLabel:
    """What the log says of one item so far."""

    wanted: int  # judgments asked for: the least overlap, grown by each escalation
    gold: bool = False
    queued: int = 0  # times sent to an adjudicator
    answers: list[TaskRecord] = field(default_factory=list)
    final: TaskRecord | None = None  # the adjudicator's last call, or the model's
    events: list[dict[str, Any]] = field(default_factory=list)

    def refer(self, event_type: str, seq: int, hash_: str | None) -> None:
        self.events.append({"seq": seq, "type": event_type, "hash": hash_})


class FinalLabels:
    """One run: iterate `rows()`, then read `states` (items per state) and `excluded`."""

    def __init__(self, ledger: Ledger, campaign: Campaign, *, include_model: bool = False,
                 history: History | None = None) -> None:
        self.ledger, self.campaign, self.include_model = ledger, campaign, include_model
        self.history = history_of(ledger, history)
        self.items: dict[str, ItemLabel] = {}
        self.states: Counter[str] = Counter()
        self.excluded: Counter[str] = Counter()

    async def rows(self, progress: Callable[[int], None] | None = None
                   ) -> AsyncIterator[Row]:
        await self._read_items()
        async for batch in self.history.task_records(self.campaign.id, with_items=False,
                                                     also=("adjudicated", "auto_accepted")):
            for record in batch:
                self._add(record)
            if progress is not None:
                progress(batch[-1].event.seq)
        for item_id, item in self.items.items():
            row = self._row(item_id, item)
            if row is not None:
                yield row

    async def _read_items(self) -> None:
        least, after = self.campaign.spec.overlap_min, 0
        while events := await self.ledger.events(self.campaign.id, after, BATCH):
            after = int(str(events[-1]["seq"]))
            for event in events:
                item_id, kind = event.get("item"), str(event["type"])
                seq, hash_ = int(str(event["seq"])), _hash(event)
                if kind in ITEM_EVENTS and item_id and str(item_id) not in self.items:
                    payload: Any = event.get("payload") or {}
                    self.items[str(item_id)] = ItemLabel(
                        wanted=least, gold=(payload.get("item") or {}).get("gold") is not None)
                if item_id is None or str(item_id) not in self.items:
                    continue
                item = self.items[str(item_id)]
                if kind in ITEM_EVENTS or kind == "escalated" or kind in QUEUED:
                    item.refer(kind, seq, hash_)
                if kind == "escalated":
                    target: Any = (event.get("payload") or {})
                    item.wanted = max(item.wanted, int(target.get("target") or 0))
                item.queued += kind in QUEUED

    def _add(self, record: TaskRecord) -> None:
        item = self.items.get(record.item_id)
        if item is None or record.type not in DECIDED or record.payload.get("gold") \
                or record.payload.get("qualification"):
            return  # a skip or flag decides nothing; gold and qualification are no work
        item.refer(record.type, record.event.seq, record.event.hash)
        if record.type == "answered":
            item.answers.append(record)
        else:  # a final call: the adjudicator's, or the model's
            item.final = record
            item.queued -= record.type == "adjudicated"

    def _row(self, item_id: str, item: ItemLabel) -> Row | None:
        if item.gold:
            self.excluded["gold"] += 1
            return None
        if item.final is not None and item.final.type == "auto_accepted" \
                and not self.include_model:
            self.excluded["decided_by_model"] += 1
            return None
        state, reached, decision = judge_item(self.campaign, item)
        self.states[state] += 1
        kind = self.campaign.spec.kind
        votes = [vote_of(r, kind) for r in item.answers]
        final = item.final
        return {
            "campaign": self.campaign.id, "item": item_id, "kind": kind.value, "state": state,
            "decision": decision, "reached": reached,
            "decided_by": REACHED_BY.get(reached or ""),
            "agreement": agreement(votes, decision_vote(decision, votes, kind), kind,
                                   self.campaign.spec.settle.max_spread),
            "judgments": len(item.answers), "wanted": item.wanted,
            "votes": dict(Counter(str(v) for v in votes if v is not None)),
            "rationale": final.rationale if final is not None else None,
            "events": sorted(item.events, key=lambda ref: int(ref["seq"])),
            **({"model": final.payload.get("model"),
                "confidence": final.payload.get("confidence")}
               if final is not None and final.type == "auto_accepted" else {}),
        }


def judge_item(campaign: Campaign, item: ItemLabel
               ) -> tuple[str, str | None, dict[str, Any] | None]:
    """(state, how it was reached, the final decision in file draft indices)."""
    kind = campaign.spec.kind
    if item.final is not None and item.queued <= 0:
        reached = "adjudicated" if item.final.type == "adjudicated" else "auto_accepted"
        return "settled", reached, decision_of([item.final], kind)
    if item.queued > 0:
        return "awaiting_adjudication", None, None
    if not item.answers:
        return "unanswered", None, None
    if len(item.answers) < item.wanted:
        return "asking", None, None
    if kind in TEXTS:
        return "settled", "collected", decision_of(item.answers, kind)
    if not agrees(item.answers, campaign):
        return "unsettled", None, None
    return "settled", "majority", decision_of(item.answers, kind)


def agrees(answers: list[TaskRecord], campaign: Campaign) -> bool:
    """The campaign's settle rule (hard_cases.settled), and a single top vote: a majority
    shared by two answers decides nothing. Ratings settle on their spread alone."""
    kind = campaign.spec.kind
    votes = [str(vote_of(r, kind)) for r in answers]
    if kind == Kind.rate:
        scores = [v for v in votes if v.lstrip("-").isdigit()]
        return bool(scores) and settled(scores, campaign.spec.settle, rated=True)[0]
    top = Counter(votes).most_common(2)
    unique = len(top) == 1 or top[0][1] > top[1][1]
    return unique and settled(votes, campaign.spec.settle, rated=False)[0]


def vote_of(record: TaskRecord, kind: Kind) -> str | int | None:
    """What an answer votes, in file terms: the chosen draft (or `tie`), the top of a ranking,
    the score, the sorted labels, the verdict; `none` for none acceptable."""
    decision = record.decision
    if decision.get("type") == "none_acceptable":
        return "none"
    if kind == Kind.pairwise:
        pair = winner_loser(record)
        return "tie" if pair is None else str(pair[0])
    if kind == Kind.rank:
        ranked = ranking(record) or []
        return str(ranked[0]) if ranked else None
    if kind == Kind.rate:
        return int(decision["score"])
    if kind == Kind.label:
        return "|".join(sorted(decision.get("labels") or []))
    if kind == Kind.verify:
        return str(decision.get("verdict"))
    return None


def decision_of(records: list[TaskRecord], kind: Kind) -> dict[str, Any]:
    """The final decision of these answers: the majority's vote (pairwise, label, verify), the
    median score, the Borda order; one record (a final call) decides alone."""
    votes = [vote_of(r, kind) for r in records]
    top = Counter(str(v) for v in votes).most_common(1)[0][0] if votes else ""
    if top == "none" and kind not in TEXTS:
        return {"none_acceptable": True}
    if kind == Kind.pairwise:
        return {"tie": True} if top == "tie" else {"winner": int(top), "loser": 1 - int(top)}
    if kind == Kind.rank:
        return {"ranking": borda([ranking(r) or [] for r in records])}
    first = records[0]
    draft = first.order[0] if first.order else 0
    if kind == Kind.rate:
        scores = [v for v in votes if isinstance(v, int)]
        return {"draft": draft, "score": statistics.median(scores)}
    if kind == Kind.label:
        return {"labels": top.split("|") if top else []}
    if kind == Kind.verify:
        final = {"draft": draft, "verdict": top}
        text = first.decision.get("text")
        return {**final, "text": text} if len(records) == 1 and text else final
    return {"draft": draft, "texts": [str(r.decision.get("text") or "") for r in records]}


def borda(rankings: list[list[int]]) -> list[int]:
    """Borda count: in a ranking of n drafts the first gets n-1 points, the last 0; equal
    totals keep the file's order."""
    points: Counter[int] = Counter()
    for ranked in rankings:
        for position, draft in enumerate(ranked):
            points[draft] += len(ranked) - 1 - position
    return sorted(points, key=lambda draft: (-points[draft], draft))


def decision_vote(decision: dict[str, Any] | None, votes: list[str | int | None],
                  kind: Kind) -> str | float | None:
    """The vote the final decision stands for; for an item not decided, the leading vote."""
    if decision is None:
        counted = Counter(str(v) for v in votes if v is not None).most_common(1)
        return counted[0][0] if counted and kind != Kind.rate else None
    if decision.get("none_acceptable"):
        return "none"
    if "winner" in decision or "tie" in decision:
        return "tie" if decision.get("tie") else str(decision["winner"])
    if "ranking" in decision:
        return str(decision["ranking"][0]) if decision["ranking"] else None
    if "score" in decision:
        return float(decision["score"])
    if "labels" in decision:
        return "|".join(decision["labels"])
    return str(decision["verdict"]) if "verdict" in decision else None


def agreement(votes: list[str | int | None], final: str | float | None, kind: Kind,
              max_spread: int) -> float | None:
    """The share of the experts' answers that agree with the final decision (for ratings:
    within `settle.max_spread` of its score); null without answers or a decision to agree
    with."""
    counted = [v for v in votes if v is not None]
    if not counted or final is None:
        return None
    if kind == Kind.rate and isinstance(final, float):
        near = sum(1 for v in counted if isinstance(v, int) and abs(v - final) <= max_spread)
        return round(near / len(counted), 4)
    return round(sum(1 for v in counted if str(v) == str(final)) / len(counted), 4)


def _hash(event: dict[str, Any]) -> str | None:
    found = event.get("hash")
    return None if found is None else str(found)
