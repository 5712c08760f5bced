"""Who a live ask may reach, stage by stage, who may take it now, and what an expert's answer
decides: the pure rules behind core/service/asks.py (the store applies them atomically)."""

from __future__ import annotations

import json
from typing import Any

from core.domain.asks import AskRequest
from core.domain.experts import Expert
from core.domain.hard_cases import LEVELS
from core.domain.kinds import Approve, Choose, Decision, Verify, Write
from core.errors import InvalidAnswer, InvalidCampaign, Problem

LAST_STAGE = 2  # 0: the level asked; 1: and the next level up; 2: anyone with the skills
NOTICES = {"decided": "No longer needed: another expert already decided this question.",
           "withdrawn": "No longer needed: the asker withdrew this question.",
           "expired": "No longer needed: this question's deadline passed."}


def audience(request: AskRequest, experts: list[Expert], stage: int) -> list[Expert]:
    """The experts an ask allows at a stage (each stage includes the ones before): named ones,
    or those with all the skills; a `level` starts at exactly that level and widens."""
    to = request.to
    if to.experts:
        return [e for e in experts if e.id in to.experts]
    skilled = [e for e in experts if e.has_skills(to.skills)]
    if to.level is None or stage >= LAST_STAGE:
        return skilled
    levels = LEVELS[LEVELS.index(to.level):LEVELS.index(to.level) + 1 + stage]
    return [e for e in skilled if e.level in levels]


def widest_stage(request: AskRequest) -> int:
    """Only an escalating ask with a level widens; any other keeps its first audience."""
    escalates = request.on_timeout == "escalate" and request.to.level and not request.to.experts
    return LAST_STAGE if escalates else 0


def next_stage(request: AskRequest, experts: list[Expert], stage: int) -> int | None:
    """The next stage that adds someone (a stage adding nobody is skipped), or None."""
    now = {e.id for e in audience(request, experts, stage)}
    for later in range(stage + 1, widest_stage(request) + 1):
        if {e.id for e in audience(request, experts, later)} - now:
            return later
    return None


def check_audience(request: AskRequest, experts: list[Expert]) -> None:
    """Refuse an ask naming an unknown expert or skill, or a quorum its audience cannot meet
    (counting everyone it may reach, paused or not: they may come back before the deadline)."""
    known = {e.id for e in experts}
    skills = {skill for e in experts for skill in e.skills}
    problems = [Problem(f"no expert {name!r}", loc=("to", "experts", i))
                for i, name in enumerate(request.to.experts) if name not in known]
    if not request.to.experts:
        problems += [Problem(f"no expert has the skill {skill!r}", loc=("to", "skills", i))
                     for i, skill in enumerate(request.to.skills) if skill not in skills]
    if problems:
        raise InvalidCampaign(problems)
    needed = request.quorum.needed()
    eligible = len(audience(request, experts, widest_stage(request)))
    if eligible < needed:
        raise InvalidCampaign([Problem(f"all_of {needed} needs {needed} eligible experts; "
                                       f"this ask reaches {eligible}",
                                       loc=("quorum", "all_of"))])


def may_take_now(expert: Expert, request: AskRequest, now: int) -> bool:
    """Not paused, and outside quiet hours unless the ask is urgent and they said yes to that."""
    if expert.paused:
        return False
    return not expert.in_quiet_hours(now) or (request.urgent and expert.urgent_ok)


def waiting_reason(request: AskRequest, allowed: list[Expert], now: int) -> str:
    """Why nobody has the ask yet, in words an agent can log."""
    if not allowed:
        return f"no expert at level {request.to.level} yet; " + (
            "it escalates at the deadline" if widest_stage(request) else "it waits for one")
    paused = sum(e.paused for e in allowed)
    quiet = len(allowed) - paused
    parts = [f"{paused} paused"] if paused else []
    if quiet:
        parts.append(f"{quiet} in quiet hours" + ("" if request.urgent else
                                                   " (the ask is not urgent)"))
    return f"no eligible expert is available now: {', '.join(parts)}"


def push_accounts(expert: Expert) -> tuple[str, ...]:
    """The chat accounts a card is pushed to; the web chat shows open asks when opened."""
    return tuple(i for i in expert.identities if not i.startswith("web:"))


def api_decision(kind: str, decision: Decision) -> tuple[dict[str, Any], str, str | None]:
    """(the API's decision, the status it gives alone, its comment) for an answer, refused
    with InvalidAnswer when it is no call (skip, flag, none acceptable) or not this kind's."""
    if isinstance(decision, Approve) and kind == "approve":
        shaped: dict[str, Any] = {"verdict": decision.verdict}
        if decision.verdict == "edited":
            shaped["args"] = decision.args
        return shaped, decision.verdict, (decision.comment or "").strip() or None
    if isinstance(decision, Choose) and kind == "choose":
        return {"choice": decision.choice}, "answered", None
    if isinstance(decision, Verify) and kind == "verify":
        if decision.verdict == "accept":
            return {"verdict": "accept"}, "answered", None
        return ({"verdict": "override", "text": decision.text, "reason": decision.reason},
                "answered", None)
    if isinstance(decision, Write) and kind == "write":
        return {"text": decision.text}, "answered", None
    if decision.type in ("skip", "flag", "none_acceptable"):
        raise InvalidAnswer("This question wants your call, so it cannot be skipped or "
                            "flagged; nothing was recorded.")
    raise InvalidAnswer(f"this is a {kind} ask; a {decision.type} answer does not fit")


def decision_json(shaped: dict[str, Any]) -> str:
    """Canonical, so equal decisions compare equal in the store (quorum compares the text)."""
    return json.dumps(shaped, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decide(needed: int, answers: list[tuple[str, str]]) -> str | None:
    """Python reference of ask_answer.lua's quorum, over (key, status-alone) in seq order, as
    each answer comes: a rejection decides at once; the `needed`-th answer decides, with the
    status they share, or `disagreed` if they differ."""
    for count, (_, status) in enumerate(answers, start=1):
        if status == "rejected":
            return "rejected"
        if count == needed:
            return status if len({key for key, _ in answers[:count]}) == 1 else "disagreed"
    return None
