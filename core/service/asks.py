"""Live asks: an agent posts a question, experts it allows answer it as a card in their chat,
and quorum decides (core/domain/asks.py has the shapes, ask_rules.py the rules). Every change
is one atomic store step with its event in the `asks` log: `ask_posted`, `ask_delivered`,
`ask_answered`, then `ask_decided` (the decision, recorded as its own event, naming the
answers that made it), or `ask_escalated`, `ask_expired` (also a timeout's rejection, with
its status), `ask_withdrawn`, and `ask_callback_failed`. The queues the workers read (cards
to push and update, callbacks) are ask_queues.py's."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from datetime import UTC, datetime

from core.domain.answers import Answer, Outcome
from core.domain.asks import (
    ASK_PREFIX,
    ASKS_LOG,
    CALL_ID_DAYS,
    CARD_KINDS,
    AskRequest,
    AskTo,
    AskView,
    is_ask_token,
)
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import KindOptions, check_decision
from core.errors import Conflict, InvalidAnswer, NotFound
from core.ports import (
    AskAnswering,
    AskChange,
    AskPosting,
    AskRecorded,
    Clock,
    Credit,
    HeldAsk,
    Stores,
)
from core.provenance.events import Event, body_json, iso_ms
from core.service.ask_queues import AskQueues, url_shown
from core.service.ask_rules import (
    api_decision,
    audience,
    check_audience,
    decision_json,
    may_take_now,
    waiting_reason,
)
from core.service.ask_ticks import AskTicks, offers_for
from core.service.ask_tokens import Binding
from core.service.ask_views import card_for, posted_view, view_of

MAX_WAIT_S = 60.0
POLL_S = 0.1  # the long poll reads Redis this often: any process may record the decision
REFUSALS = {
    "gone": "This question is not yours or no longer exists; nothing was recorded.",
    "decided": "This question was already decided by another expert; nothing was recorded.",
    "expired": "This question's deadline passed; nothing was recorded.",
}
ASK_CLOSED = (REFUSALS["decided"], REFUSALS["expired"])  # the card is done with: show the next
AFTER_WITHDRAWAL = "Recorded, but the asker had withdrawn the question."


class AskService(AskQueues):
    def __init__(self, stores: Stores, clock: Clock) -> None:
        super().__init__(stores, clock)
        self.experts = stores.experts
        self.ticks = AskTicks(stores.asks, clock)

    async def post(self, request: AskRequest, caller: str) -> tuple[AskView, bool]:
        """True when created; a repeat of the caller's call_id with the same body is the
        first ask (False); with another body a Conflict."""
        now = self.clock.now_ms()
        experts = await self.batches.ask_audience(request.to)
        check_audience(request, experts)
        allowed = audience(request, experts, 0)
        ready = [e for e in allowed if may_take_now(e, request, now)]
        posting = _posting(request, caller, now, ready, allowed)
        status, found = await self.store.create_ask(posting)
        if status == "conflict":
            raise Conflict(f"call_id {request.call_id!r} was posted before with another body "
                           f"(ask {found})")
        if status == "created":  # as just written: no read back (none of its events sealed)
            return posted_view(found, request, now, posting.waiting), True
        return await self.view(found), False

    async def view(self, ask_id: str) -> AskView:
        ask = await self.store.load_ask(ask_id)
        if ask is None:
            raise NotFound(f"no ask {ask_id!r}")
        return view_of(ask, await self.log.read_seals(ASKS_LOG, ask.seqs))

    async def wait(self, ask_id: str, wait_s: float) -> AskView:
        """Until decided or `wait_s` (at most 60) passed, reading Redis every POLL_S, so a
        decision recorded by any process ends the wait."""
        ends = time.monotonic() + min(max(wait_s, 0.0), MAX_WAIT_S)
        while True:
            ask = await self.store.load_ask(ask_id)
            if ask is None:
                raise NotFound(f"no ask {ask_id!r}")
            if ask.status != "pending" or time.monotonic() >= ends:
                return view_of(ask, await self.log.read_seals(ASKS_LOG, ask.seqs))
            await asyncio.sleep(min(POLL_S, max(ends - time.monotonic(), 0.0)))

    async def withdraw(self, ask_id: str) -> AskView:
        """A pending ask only; its cards get a "no longer needed" notice. An answer already on
        its way is still recorded, marked after the withdrawal."""
        now = self.clock.now_ms()
        event = Event(campaign=ASKS_LOG, type="ask_withdrawn", at=iso_ms(now),
                      actor="coordinator", item=ask_id)
        result = await self.store.change_ask(AskChange(ask=ask_id, mode="withdraw", now=now,
                                                       stage=0, event_body=body_json(event)))
        if result == "missing":
            raise NotFound(f"no ask {ask_id!r}")
        if result != "ok":
            raise Conflict(f"ask {ask_id} is {result}: only a pending ask can be withdrawn")
        return await self.view(ask_id)

    async def answer(self, answer: Answer) -> Outcome:
        """Record one expert's call, atomically with quorum (Service.submit hands ask tokens
        here). A repeat is the first outcome, `replayed`; another expert's token is refused
        (here, and again in the store's script, which checks the token's owner itself)."""
        bound = await self._bound(answer.lease)
        if bound is None or bound.expert != answer.expert:
            return _refused(answer, REFUSALS["gone"])
        request = bound.request
        try:
            shaped, status, comment = api_decision(request.kind, answer.decision)
            check_decision(KindOptions(kind=CARD_KINDS[request.kind]), 0, answer.decision)
        except InvalidAnswer as exc:
            return _refused(answer, str(exc))
        now = self.clock.now_ms()
        if answer.acted_at is not None:  # a tap that waited in an inbox: when it came
            now = min(answer.acted_at, now)
        recorded, expert = await self.batches.answer_ask_reading(
            _answering(answer, bound.ask, request, now, shaped, status, comment))
        return await self._outcome(answer, recorded, request, expert)

    async def _bound(self, token: str) -> Binding | None:
        """The token's ask, expert and request: kept from an earlier read, else read."""
        found = self.bindings.get(token)
        if found is None and is_ask_token(token):
            held = await self.store.token_ask(token)
            found = self.bindings.note(held) if held is not None else None
        return found

    async def _outcome(self, answer: Answer, recorded: AskRecorded, request: AskRequest,
                       expert: Expert | None) -> Outcome:
        if recorded.status in ("gone", "expired"):
            return _refused(answer, REFUSALS[recorded.status])
        if recorded.status not in ("recorded", "duplicate"):
            return _refused(answer, REFUSALS["decided"])
        seconds = None
        if recorded.status == "recorded":
            seconds = await self._credit(answer.expert, expert, request, recorded)
        return Outcome(status="recorded", lease=answer.lease, decision=answer.decision.type,
                       seq=recorded.seq, answered_at=recorded.at, active_seconds=seconds,
                       replayed=recorded.status == "duplicate",
                       reason=AFTER_WITHDRAWAL if recorded.after_withdrawal else
                       await self._still_waiting(recorded, request))

    async def _still_waiting(self, recorded: AskRecorded, request: AskRequest) -> str | None:
        """An all_of answer that did not decide tells its expert how many more are awaited,
        as far as the answers recorded by now show (one read, only in that case)."""
        needed = request.quorum.needed()
        if recorded.status != "recorded" or recorded.decided is not None or needed < 2 \
                or recorded.ask is None:
            return None
        ask = await self.store.load_ask(recorded.ask)
        left = needed - (len(ask.answers) if ask else 1)
        if left <= 0:
            return None
        return f"waiting for {left} more expert{'s' if left > 1 else ''}"

    async def _credit(self, expert_id: str, expert: Expert | None, request: AskRequest,
                      recorded: AskRecorded) -> float:
        """The answer counts in the expert's stats and earns `pay.per_ask`, as campaign
        tasks do (the same tallies, so /stats shows it), on their own calendar day."""
        at = recorded.at or self.clock.now_ms()
        seconds = min(max(at - (recorded.started or at), 0) / 1000, float(request.deadline_s))
        day = expert.local_day(at) if expert else datetime.fromtimestamp(
            at / 1000, UTC).date().isoformat()
        pay = request.pay
        await self.experts.credit(expert_id, Credit(day, round(seconds, 3),
                                                    pay.per_ask if pay else 0.0,
                                                    pay.currency if pay else None))
        return round(seconds, 3)

    async def card(self, token: str) -> Card | None:
        """The card of a live offer: its ask pending, this token not answered yet."""
        held = await self.store.token_ask(token) if token.startswith(ASK_PREFIX) else None
        if held is None or held.ask.status != "pending" or held.answered:
            return None
        return card_for(held, self.bindings.note(held).request)

    async def cards_for(self, expert_id: str, shown_on: str | None = None) -> list[Card]:
        """The asks this expert may still answer now, oldest first (one store read). With
        `shown_on` (an answer's next card, shown on that channel), the first not shown yet is
        claimed in that read, so the push cannot show it there too (AskStore.next_asks)."""
        held_asks = await (self.store.held_asks(expert_id) if shown_on is None else
                           self.batches.next_asks(expert_id, shown_on, self.clock.now_ms()))
        return [card_for(held, self.bindings.note(held).request)
                for held in held_asks if not held.answered]

    async def experts_named(self, expert_ids: list[str]) -> dict[str, Expert]:
        """Profiles by id, in one read (a batch of cards to push names their experts)."""
        found = await self.batches.ask_audience(AskTo(experts=expert_ids)) if expert_ids \
            else []
        return {expert.id: expert for expert in found}

    async def tick(self) -> int:
        """Deadlines (on_timeout) and offers to experts who became available; returns how
        many asks changed. Safe to run in every worker at once."""
        return await self.ticks.tick()

    # What Service answers for ask tokens, so every channel works on them unchanged.

    async def mark(self, token: str, what: str, at: int, expert_id: str = "",
                   channel: str = "", message_id: str | None = None) -> bool:
        """`delivered` records `ask_delivered` once per channel; `opened` starts the
        expert's time."""
        body = ""
        if what == "delivered":
            bound = await self._bound(token)
            if bound is None:
                return False
            body = body_json(Event(campaign=ASKS_LOG, type="ask_delivered", at=iso_ms(at),
                                   actor="system", expert=bound.expert, item=bound.ask,
                                   lease=token, payload={k: v for k, v in (
                                       ("channel", channel), ("message_id", message_id)) if v}))
        return await self.store.mark_ask(token, what, at, body, expert_id, channel)

    async def add_rationale(self, expert_id: str, token: str, rationale: str, channel: str,
                            event_id: str | None) -> bool:
        held = await self.store.token_ask(token)
        if held is None or held.expert != expert_id or not held.answered:
            return False
        body = body_json(Event(campaign=ASKS_LOG, type="rationale_added",
                               at=iso_ms(self.clock.now_ms()), actor="expert",
                               actor_id=expert_id, expert=expert_id, item=held.ask.id,
                               lease=token, payload={"rationale": rationale, "channel": channel,
                                                     "platform_event": event_id}))
        return await self.store.mark_ask(token, "rationale", self.clock.now_ms(), body,
                                         expert_id, "")

    async def holds(self, expert_id: str, token: str) -> HeldAsk | None:
        """The offer, if it is this expert's and still open to their answer."""
        held = await self.store.token_ask(token)
        if held is None or held.expert != expert_id or held.answered \
                or held.ask.status != "pending":
            return None
        return held

    # Last in the class: below it, `list` in an annotation would name this method.
    async def list(self, limit: int = 100, status: str | None = None) -> list[AskView]:
        asks = await self.store.list_asks(limit, status)
        seals = await self.log.read_seals(ASKS_LOG, [s for ask in asks for s in ask.seqs])
        return [view_of(ask, seals) for ask in asks]


def _answering(answer: Answer, ask_id: str, request: AskRequest, now: int,
               shaped: dict[str, object], status: str, comment: str | None) -> AskAnswering:
    payload: dict[str, object] = {"decision": shaped, "channel": answer.channel,
                                  "platform_event": answer.event_id}
    if comment:
        payload["comment"] = comment
    rationale = " ".join((answer.rationale or "").split())
    if rationale:
        payload["rationale"] = rationale
    event = Event(campaign=ASKS_LOG, type="ask_answered", at=iso_ms(now), actor="expert",
                  actor_id=answer.expert, expert=answer.expert, item=ask_id,
                  lease=answer.lease, payload=payload)
    late = event.model_copy(update={"payload": {**payload, "after_withdrawal": True}})
    return AskAnswering(token=answer.lease, expert=answer.expert, now=now, at_iso=iso_ms(now),
                        decision=decision_json(shaped), key=decision_json(shaped),
                        status=status, rejects=status == "rejected",
                        needed=request.quorum.needed(), comment=comment,
                        event_body=body_json(event), late_body=body_json(late))


def _posting(request: AskRequest, caller: str, now: int, ready: list[Expert],
             allowed: list[Expert]) -> AskPosting:
    """The new ask with its `ask_posted` event and its first offers (to those `ready`)."""
    ask_id = f"ask_{secrets.token_hex(8)}"
    expires_at = now + request.deadline_s * 1000
    event = Event(campaign=ASKS_LOG, type="ask_posted", at=iso_ms(now), actor="coordinator",
                  actor_id=caller, item=ask_id,
                  payload={"request": _recorded_request(request),
                           "expires_at": iso_ms(expires_at)})
    return AskPosting(
        id=ask_id, call=f"{caller}:{request.call_id}", body_sha=_sha(request),
        call_ttl_ms=CALL_ID_DAYS * 86_400_000, spec=request.model_dump_json(),
        callback=request.callback.url if request.callback else "", created_at=now,
        expires_at=expires_at, offers=offers_for(ready),
        later=tuple(e.id for e in allowed if e not in ready),
        waiting="" if ready else waiting_reason(request, allowed, now),
        event_body=body_json(event))


def _recorded_request(request: AskRequest) -> dict[str, object]:
    """The whole request, as the log keeps it; a callback URL without its query string (an
    agent may put a secret there)."""
    shown = request.model_dump(mode="json")
    if request.callback is not None:
        shown["callback"] = {"url": url_shown(request.callback.url)}
    return shown


def _sha(request: AskRequest) -> str:
    return hashlib.sha256(decision_json(request.model_dump(mode="json")).encode()).hexdigest()


def _refused(answer: Answer, reason: str) -> Outcome:
    return Outcome(status="refused", lease=answer.lease, reason=reason,
                   decision=answer.decision.type)
