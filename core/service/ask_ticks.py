"""What the worker's tick does to live asks: each deadline's `on_timeout` (expire, reject, or
escalate in stages), and offers to experts who became available (resumed, out of quiet hours).
Every change names the stage it read, so workers ticking side by side change an ask once."""

from __future__ import annotations

import secrets

from core.domain.asks import ASK_PREFIX, ASKS_LOG
from core.domain.experts import Expert
from core.ports import AskChange, AskOffer, AskStore, Clock, StoredAsk
from core.provenance.events import Event, body_json, iso_ms
from core.service.ask_rules import (
    audience,
    may_take_now,
    next_stage,
    push_accounts,
    waiting_reason,
)
from core.service.ask_views import request_of

BATCH = 200  # asks looked at per tick and kind of work
TIMED_OUT = "no expert answered before the deadline"


def offers_for(experts: list[Expert]) -> tuple[AskOffer, ...]:
    """A new token per expert: it is their answer's credential, bound to them alone."""
    return tuple(AskOffer(e.id, f"{ASK_PREFIX}{secrets.token_urlsafe(9)}", push_accounts(e))
                 for e in experts)


class AskTicks:
    def __init__(self, store: AskStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def tick(self) -> int:
        now = self.clock.now_ms()
        due, later = await self.store.due_asks(now, BATCH)
        if not due and not later:
            return 0
        experts = await self.store.ask_experts()
        changed = 0
        for ask_id in due:
            changed += await self._timeout(ask_id, experts, now)
        for ask_id in later:
            if ask_id not in due:
                changed += await self._offer_later(ask_id, experts, now)
        return changed

    async def _timeout(self, ask_id: str, experts: list[Expert], now: int) -> int:
        ask = await self.store.load_ask(ask_id)
        if ask is None or ask.status != "pending" or ask.expires_at > now:
            return 0
        request = request_of(ask)
        stage = next_stage(request, experts, ask.stage) if request.on_timeout == "escalate" \
            else None
        if stage is not None:
            return await self._escalate(ask, experts, stage, now)
        status = "rejected" if request.on_timeout == "reject" else "expired"
        comment = TIMED_OUT if status == "rejected" else ""
        payload: dict[str, object] = {"on_timeout": request.on_timeout, "status": status,
                                      "answers": len(ask.answers), "stage": ask.stage}
        if comment:
            payload["comment"] = comment
        event = Event(campaign=ASKS_LOG, type="ask_expired", at=iso_ms(now), actor="system",
                      item=ask.id, payload=payload)
        change = AskChange(ask=ask.id, mode="reject" if status == "rejected" else "expire",
                           now=now, stage=ask.stage, event_body=body_json(event),
                           comment=comment)
        return int(await self.store.change_ask(change) == "ok")

    async def _escalate(self, ask: StoredAsk, experts: list[Expert], stage: int,
                        now: int) -> int:
        """Offered wider, with another `deadline_s`; the event says to whom and why."""
        request = request_of(ask)
        added = [e for e in audience(request, experts, stage) if e.id not in ask.offered]
        ready = [e for e in added if may_take_now(e, request, now)]
        later = [*ask.later, *(e.id for e in added if e not in ready)]
        expires_at = now + request.deadline_s * 1000
        needed, answered = request.quorum.needed(), len(ask.answers)
        why = TIMED_OUT if not answered else f"{answered} of {needed} answers before the deadline"
        event = Event(campaign=ASKS_LOG, type="ask_escalated", at=iso_ms(now), actor="system",
                      item=ask.id, payload={"stage": stage, "from_stage": ask.stage, "why": why,
                                            "added": [e.id for e in added],
                                            "expires_at": iso_ms(expires_at)})
        offered = bool(ask.offered) or bool(ready)
        waiting = "" if offered else waiting_reason(request, added, now)
        change = AskChange(ask=ask.id, mode="escalate", now=now, stage=ask.stage,
                           event_body=body_json(event), new_stage=stage, expires_at=expires_at,
                           offers=offers_for(ready), later=tuple(later), waiting=waiting)
        return int(await self.store.change_ask(change) == "ok")

    async def _offer_later(self, ask_id: str, experts: list[Expert], now: int) -> int:
        ask = await self.store.load_ask(ask_id)
        if ask is None or ask.status != "pending":
            return 0
        request = request_of(ask)
        waiting_for = [e for e in experts if e.id in ask.later and e.id not in ask.offered]
        ready = [e for e in waiting_for if may_take_now(e, request, now)]
        rest = tuple(e.id for e in waiting_for if e not in ready)
        waiting = "" if ask.offered or ready else waiting_reason(request, waiting_for, now)
        change = AskChange(ask=ask.id, mode="offer", now=now, stage=ask.stage,
                           offers=offers_for(ready), later=rest, waiting=waiting)
        changed = await self.store.change_ask(change)  # also: looked at now, so others go next
        return int(changed == "ok" and bool(ready))
