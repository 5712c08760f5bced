"""The one path every channel uses: hand an expert their next task, record their answer."""

from __future__ import annotations

import json
import random
import secrets
from datetime import UTC, datetime, timedelta

from core.answers import Answer, Lease, Outcome
from core.campaigns import Campaign
from core.cards import Card, CardDraft, Idle, NextTask
from core.catalog import Catalog
from core.errors import InvalidAnswer, NotFound
from core.events import Event, body_json, iso_ms, open_body
from core.experts import Expert
from core.items import MAX_DRAFTS, Item, draft_label
from core.kinds import allowed_answers, check_decision
from core.ports import Claim, Claimed, Clock, Record, Store
from core.resolve import resolve
from core.timing import active_seconds, make_estimate

EFFECTS = {"skip": "skipped", "flag": "flagged", "none_acceptable": "none_acceptable"}
EVENT_TYPES = {"skipped": "skipped", "flagged": "flagged"}
REFUSALS = {
    "expired": "This task's time ran out and it went back to the pool; nothing was recorded.",
    "gone": "This task is not yours or no longer exists; nothing was recorded.",
    "closed": "This campaign is closed; nothing was recorded.",
}


class Service:
    def __init__(self, store: Store, clock: Clock, rng: random.Random | None = None) -> None:
        self.store = store
        self.clock = clock
        self.catalog = Catalog(store)
        self.rng = rng or random.SystemRandom()

    async def next_task(self, expert_id: str, *, pushed: bool = False) -> NextTask:
        """The expert's live task if they hold one, else a new lease. Quiet hours stop pushes,
        not an expert who asks for work; the daily cap stops both."""
        now = self.clock.now_ms()
        expert, done_by_day, routes = await self.store.routing(expert_id, _nearby_days(now))
        if expert is None:
            raise NotFound(f"no expert {expert_id!r}")
        idle = _idle_reason(expert, done_by_day, now, pushed)
        if idle is not None:
            return idle
        for route in sorted(routes, key=lambda r: (r.created_at, r.campaign)):
            if expert.has_skills(route.skills):
                card = await self._claim(await self.catalog.campaign(route.campaign), expert, now)
                if card is not None:
                    return card
        return Idle(reason="no_tasks", message="No tasks for you right now. Thank you!")

    async def _claim(self, campaign: Campaign, expert: Expert, now: int) -> Card | None:
        token = f"{campaign.code}.{secrets.token_urlsafe(9)}"
        spec = campaign.spec
        claim = Claim(
            campaign=campaign.id, expert=expert.id, token=token, now=now,
            expires_at=now + spec.time_limit_s * 1000,
            shuffle=self.rng.sample(range(MAX_DRAFTS), MAX_DRAFTS),
            want_gold=spec.gold_rate > 0 and self.rng.random() < spec.gold_rate,
            overlap=spec.overlap,
            event_head=open_body(campaign.id, "assigned", now, "system", expert=expert.id,
                                 lease=token),
        )
        claimed = await self.store.claim(claim)
        return card_from(campaign, claimed) if isinstance(claimed, Claimed) else None

    async def submit(self, answer: Answer) -> Outcome:
        """Record a decision once. A repeat returns the first outcome with `replayed` set."""
        campaign_id = await self.catalog.campaign_for_lease(answer.lease)
        view = campaign_id and await self.store.lease_view(campaign_id, answer.lease)
        if not campaign_id or not view or view.lease.expert != answer.expert:
            return _refused(answer, REFUSALS["gone"])
        if view.outcome:
            return await self._replay(answer, view.outcome)
        campaign = await self.catalog.campaign(campaign_id)
        item = item_from_body(view.item_body)
        try:
            check_decision(campaign.spec.options(), len(view.lease.order), answer.decision)
        except InvalidAnswer as exc:
            return _refused(answer, str(exc))
        record = self._record(campaign, view.lease, item, answer)
        result = await self.store.record(record)
        if result.status == "duplicate" and result.outcome:
            return await self._replay(answer, f"{result.seq}|{result.outcome}")
        if result.status != "recorded":
            refused = _refused(answer, REFUSALS.get(result.status, REFUSALS["gone"]))
            return refused.model_copy(update={"next": await self.next_task(answer.expert)})
        if record.effect in ("answered", "none_acceptable"):
            expert = await self.store.load_expert(answer.expert)
            await self.store.count_day(answer.expert, _day_of(expert, record.now))
        outcome = Outcome.model_validate_json(record.outcome_json)
        nxt = await self.next_task(answer.expert)
        return outcome.model_copy(update={"seq": result.seq, "next": nxt})

    def _record(self, campaign: Campaign, lease: Lease, item: Item, answer: Answer) -> Record:
        now = self.clock.now_ms()
        decision = answer.decision
        effect = EFFECTS.get(decision.type, "answered")
        opened = answer.opened_at or lease.opened_at
        started = opened or lease.delivered_at or lease.assigned_at
        active = active_seconds(now, started, campaign.spec.time_limit_s)
        event = Event(
            campaign=campaign.id, type=EVENT_TYPES.get(effect, "answered"), at=iso_ms(now),
            actor="expert", actor_id=answer.expert, expert=answer.expert, item=lease.item,
            lease=lease.token,
            payload={
                "decision": decision.model_dump(mode="json"),
                "resolved": resolve(decision, lease.order, item),
                "order": lease.order, "gold": lease.gold, "channel": answer.channel,
                "platform_event": answer.event_id,
                "timing": {"assigned_at": lease.assigned_at, "delivered_at": lease.delivered_at,
                           "opened_at": opened, "answered_at": now, "active_seconds": active},
            },
        )
        outcome = Outcome(status="recorded", lease=lease.token, decision=decision.type,
                          answered_at=now, active_seconds=active)
        return Record(campaign=campaign.id, token=lease.token, expert=answer.expert, now=now,
                      effect=effect, event_body=body_json(event),
                      outcome_json=outcome.model_dump_json(exclude={"next"}),
                      active_seconds=active, overlap=campaign.spec.overlap)

    async def _replay(self, answer: Answer, stored: str) -> Outcome:
        seq, _, outcome_json = stored.partition("|")
        first = Outcome.model_validate_json(outcome_json)
        nxt = await self.next_task(answer.expert)
        return first.model_copy(update={"seq": int(seq), "replayed": True, "next": nxt})

    async def delivered(self, token: str, at: int | None = None, channel: str = "",
                        message_id: str | None = None) -> bool:
        """The channel showed the card: the clock for the expert's time starts here."""
        return await self._mark(token, "delivered", at,
                                {"channel": channel, "message_id": message_id})

    async def opened(self, token: str, at: int | None = None) -> bool:
        """The expert first touched the card (a tap, a focus): the best start of active time."""
        return await self._mark(token, "opened", at, {})

    async def _mark(self, token: str, what: str, at: int | None,
                    payload: dict[str, object]) -> bool:
        campaign_id = await self.catalog.campaign_for_lease(token)
        if campaign_id is None:
            return False
        when = at if at is not None else self.clock.now_ms()
        event = Event(campaign=campaign_id, type=what, at=iso_ms(when), actor="system", lease=token,
                      payload={k: v for k, v in payload.items() if v is not None})
        return await self.store.mark(campaign_id, token, what, when, body_json(event))

    async def expire_leases(self, campaign_id: str) -> int:
        """Give the slots of abandoned tasks back to the pool."""
        now = self.clock.now_ms()
        return await self.store.expire_due(campaign_id, now)


def card_from(campaign: Campaign, claimed: Claimed) -> Card:
    spec, lease = campaign.spec, claimed.lease
    item = item_from_body(claimed.item_body)
    drafts = [CardDraft(label=draft_label(pos), text=item.drafts[index].text)
              for pos, index in enumerate(lease.order)]
    pay = spec.pay
    per_task, per_hour = (pay.per_task, pay.per_hour) if pay else (None, None)
    return Card(
        lease=lease.token, campaign=campaign.id, title=spec.title, instructions=spec.instructions,
        kind=spec.kind, item=item.id, prompt=item.prompt, drafts=drafts,
        allowed=allowed_answers(spec.kind), scale=spec.options().scale, labels=spec.labels,
        multi=spec.multi, expires_at=lease.expires_at,
        estimate=make_estimate(spec.kind, claimed.durations, per_task, per_hour,
                               pay.currency if pay else None),
    )


def item_from_body(body: str) -> Item:
    """Items live in the log only, as `item_added` events: the log is the record of drafts."""
    return Item.model_validate(json.loads(body)["payload"]["item"])


def _idle_reason(expert: Expert, done_by_day: dict[str, int], now: int,
                 pushed: bool) -> Idle | None:
    if expert.paused:
        return Idle(reason="paused", message="You are paused. Resume to get tasks again.")
    if pushed and expert.in_quiet_hours(now):
        return Idle(reason="quiet_hours", message="Quiet hours: no tasks are pushed now.")
    if done_by_day.get(expert.local_day(now), 0) >= expert.daily_cap:
        return Idle(reason="daily_cap", message="You reached your daily cap. See you tomorrow!")
    return None


def _nearby_days(now: int) -> list[str]:
    """Every time zone's date is within a day of UTC's, so one read covers any expert."""
    today = datetime.fromtimestamp(now / 1000, UTC).date()
    return [(today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)]


def _day_of(expert: Expert | None, now: int) -> str:
    if expert is not None:
        return expert.local_day(now)
    return datetime.fromtimestamp(now / 1000, UTC).date().isoformat()


def _refused(answer: Answer, reason: str) -> Outcome:
    return Outcome(status="refused", lease=answer.lease, reason=reason,
                   decision=answer.decision.type)

