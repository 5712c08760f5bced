"""Hard cases in the service's terms: who may take which items (adjudications, items asked
again), what an answer votes, and what an adjudicator is shown of the answers before theirs."""

from __future__ import annotations

import json

from core.domain.campaigns import CampaignSpec
from core.domain.experts import Expert
from core.domain.hard_cases import PriorAnswer, audited, level_at_least
from core.domain.items import draft_label
from core.domain.kinds import Choose, Decision, Kind, Label, Rank, Rate, Verify
from core.ports import Judging, Log, StagedItem
from core.provenance.events import Event, body_json

NO_VOTE = (Kind.correct, Kind.write)  # a text is no vote: these stay at their least overlap


def claim_access(spec: CampaignSpec, expert: Expert, now: int) -> tuple[bool, int | None]:
    """(whether the expert takes adjudications first, since when they may take items asked
    again): senior enough experts at once, anyone else once an item waited `escalate_wait_s`."""
    adjudicator = spec.adjudicate and "adjudicator" in expert.roles
    if spec.overlap_max == spec.overlap_min:
        return adjudicator, None
    if spec.escalate_to is None or level_at_least(expert.level, spec.escalate_to):
        return adjudicator, now
    return adjudicator, now - spec.escalate_wait_s * 1000


def judging(spec: CampaignSpec, decision: Decision) -> Judging:
    """What a counted answer votes (a shown label for drafts, which the store maps to the
    file's draft), with the campaign's settle rule."""
    vote, shown = vote_of(spec, decision)
    settle = spec.settle
    return Judging(vote=vote, shown=shown, most=spec.overlap_max, share=settle.share,
                   share_ppm=settle.share_ppm(), max_spread=settle.max_spread,
                   rated=spec.kind == Kind.rate, adjudicate=spec.adjudicate)


def vote_of(spec: CampaignSpec, decision: Decision) -> tuple[str | None, bool]:
    if spec.kind in NO_VOTE:
        return None, False
    if isinstance(decision, Choose):
        return decision.choice, True
    if isinstance(decision, Rank):  # rank-top: the draft put first
        return decision.order[0], True
    if isinstance(decision, Rate):
        return str(decision.score), False
    if isinstance(decision, Verify):
        return decision.verdict, False
    if isinstance(decision, Label):
        return "+".join(str(spec.labels.index(label)) for label in sorted(decision.labels)), False
    if spec.kind == Kind.rate:  # none acceptable on a rating: the lowest score there is
        scale = spec.options().scale
        return str(scale.min if scale else 1), False
    return "none", False  # none acceptable: a vote against every draft


async def prior_answers(log: Log, campaign_id: str, seqs: tuple[int, ...],
                        order: list[int]) -> list[PriorAnswer]:
    """The earlier answers to an item, unblinded, their draft labels as this card shows them."""
    found = []
    for stored in await log.read_events_at(campaign_id, list(seqs)):
        event = json.loads(stored.body)
        payload = event.get("payload") or {}
        found.append(PriorAnswer(expert=event.get("expert") or event.get("actor_id") or "?",
                                 decision=describe(payload.get("decision") or {},
                                                   payload.get("order") or [], order),
                                 rationale=payload.get("rationale")))
    return found


def describe(decision: dict[str, object], theirs: list[int], mine: list[int]) -> str:
    """A decision in words, its draft labels mapped from the order its expert saw to ours."""
    def relabel(label: object) -> str:
        index = ord(str(label)) - ord("A")
        if not 0 <= index < len(theirs) or theirs[index] not in mine:
            return str(label)
        return draft_label(mine.index(theirs[index]))

    kind = decision.get("type")
    if kind == "pairwise":
        choice = decision.get("choice")
        return "tie" if choice == "tie" else f"{relabel(choice)} is better"
    if kind == "rank":
        return " > ".join(relabel(label) for label in decision.get("order") or [])  # type: ignore[attr-defined]
    if kind == "rate":
        return f"score {decision.get('score')}"
    if kind == "label":
        return ", ".join(decision.get("labels") or [])  # type: ignore[arg-type]
    if kind == "verify":
        verdict = decision.get("verdict")
        return f"{verdict}: {decision.get('text')}" if decision.get("text") else str(verdict)
    if kind in ("correct", "write"):
        return str(decision.get("text") or "")
    return str(kind or "?").replace("_", " ")


def auto_accept(spec: CampaignSpec, campaign_id: str, staged: StagedItem, at: str) -> StagedItem:
    """A verify item whose draft is confident enough is accepted by the model, unless it falls
    in the audit sample; an item still to be drafted learns its fate when its draft is in
    (the store then needs only whether it is audited)."""
    rule = spec.route.auto_accept
    if rule is None or staged.gold:
        return staged
    sampled = audited(campaign_id, staged.id, rule.audit_rate)
    if staged.plan or staged.confidence is None or staged.confidence < rule.confidence_at_least:
        return staged._replace(audited=sampled)
    if sampled:
        return staged._replace(audited=True)
    draft = json.loads(staged.json)["drafts"][0]
    event = Event(campaign=campaign_id, type="auto_accepted", at=at, actor="model",
                  actor_id=draft.get("model"), item=staged.id,
                  payload={"decision": {"type": "verify", "verdict": "accept"}, "draft": 0,
                           "confidence": staged.confidence,
                           "threshold": rule.confidence_at_least})
    return staged._replace(auto_accepted=body_json(event))
