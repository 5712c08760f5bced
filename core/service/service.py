"""The one path every channel uses: hand an expert their next task, record their answer."""

from __future__ import annotations

import json
import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Literal

from core.domain.answers import Answer, Lease, Outcome
from core.domain.asks import ASKS_LOG, is_ask_token
from core.domain.campaigns import Campaign, CampaignSpec
from core.domain.cards import Card, CardDraft, Idle, NextTask
from core.domain.experts import Expert, ExpertStats, stats_from_tallies, web_token_hash
from core.domain.hard_cases import RATIONALE_CHARS
from core.domain.items import Item, draft_label
from core.domain.kinds import (
    DRAFTS_PER_KIND,
    Correct,
    Decision,
    Kind,
    Rank,
    Verify,
    allowed_answers,
    check_decision,
)
from core.domain.media import CardImage
from core.domain.resolve import diff
from core.domain.timing import make_estimate
from core.errors import InvalidAnswer, NotFound
from core.ports import Claim, Claimed, Clock, Credit, Recorded, Routing, Stores, Submission
from core.provenance.events import Event, body_json, iso_ms
from core.service.ask_views import request_of
from core.service.asks import ASK_CLOSED, AskService
from core.service.catalog import Catalog
from core.service.judging import claim_access, judging, prior_answers
from core.service.qualification import Qualifying

EFFECTS = {"skip": "skipped", "flag": "flagged", "none_acceptable": "none_acceptable"}
COUNTED = {"pairwise", "rank", "rate", "correct", "verify", "label", "write", "none_acceptable"}
EVENT_TYPES = {"skipped": "skipped", "flagged": "flagged"}  # everything else is "answered"
REFUSALS = {
    "expired": "This task's time ran out and it went back to the pool; nothing was recorded.",
    "taken": "This task expired and was given to another expert; nothing was recorded.",
    "undeliverable": "This task could not be shown to you and went back to the pool; "
                     "nothing was recorded.",
    "gone": "This task is not yours or no longer exists; nothing was recorded.",
    "closed": "This campaign is closed; nothing was recorded.",
    "reason_needed": "Add one line on why: this call needs its reason. Nothing was recorded yet.",
}


class Service:
    def __init__(self, stores: Stores, clock: Clock, rng: random.Random | None = None) -> None:
        self.stores = stores  # for wiring the objects that share this service's store
        self.experts = stores.experts
        self.access = stores.access
        self.leases = stores.leases
        self.log = stores.log
        self.clock = clock
        self.catalog = Catalog(stores.campaigns)
        self.qualifying = Qualifying(stores, clock)
        self.asks = AskService(stores, clock)  # live asks: their tokens start with `ask-`
        self.rng = rng or random.Random()  # seeded from os.urandom; shuffles need no more

    async def next_task(self, expert_id: str, *, pushed: bool = False,
                        fresh: bool = False, channel: str = "api") -> NextTask:
        """The expert's live task if they hold one, else a new lease. Quiet hours stop pushes,
        not an expert who asks for work; the daily cap stops both. `fresh`: after an answer,
        a live ask already shown to them is left where it is (its card is in their chat) rather
        than sent again, and the one handed out is claimed for `channel` against the push."""
        now = self.clock.now_ms()
        return await self._next(expert_id, await self.experts.routing(expert_id, _nearby_days(now)),
                                now, pushed, fresh=fresh, channel=channel)

    async def may_push(self, expert_id: str, campaigns: list[str]) -> Expert | None:
        """The expert, if a task may be offered to them unasked now: not paused, not in quiet
        hours, under the cap, with a campaign for their skills and no card of these campaigns
        already waiting for them. Reads only: a channel asks before anything costly (a claim,
        a platform call), and `next_task(pushed=True)` checks again when it leases."""
        now = self.clock.now_ms()
        routing = await self.experts.routing(expert_id, _nearby_days(now))
        expert = routing.expert
        if expert is None or _idle_reason(expert, routing.done_by_day, now, pushed=True):
            return None
        if not any(expert.has_skills(route.skills) for route in routing.routes):
            return None
        return None if await self.leases.held_leases(expert_id, campaigns, now) else expert

    async def _next(self, expert_id: str, routing: Routing, now: int, pushed: bool = False,
                    credit: Credit | None = None, fresh: bool = False,
                    channel: str = "api") -> NextTask:
        """`credit` is an answer just recorded that the read in `routing` did not count yet;
        it counts toward the cap here and is stored with the next claim, in its round trip."""
        expert = routing.expert
        if expert is None:
            raise NotFound(f"no expert {expert_id!r}")
        done = dict(routing.done_by_day)
        if credit is not None:
            done[credit.day] = done.get(credit.day, 0) + 1
        idle = _idle_reason(expert, done, now, pushed)
        if routing.asks and not expert.paused and not pushed:  # a live ask first: an agent
            # is waiting on it (the routing read said whether any is open: mostly none)
            asked = [card for card in await self.asks.cards_for(
                expert_id, channel if fresh else None) if not (fresh and card.resumed)]
            if asked:
                if credit is not None:
                    await self.experts.credit(expert.id, credit)
                return asked[0]
        routes = [] if idle else sorted(routing.routes, key=lambda r: (r.created_at, r.campaign))
        failed = None  # a campaign whose qualification they failed says so, if nothing else comes
        for route in routes:
            if expert.has_skills(route.skills):
                campaign = await self.catalog.campaign(route.campaign)
                card = await self._claim(campaign, expert, now, credit)
                credit = None  # credited with that claim, whatever it found
                if isinstance(card, Idle):
                    failed = card
                elif card is not None:
                    return card
        if credit is not None:
            await self.experts.credit(expert.id, credit)
        return idle or failed or Idle(reason="no_tasks",
                                      message="No tasks for you right now. Thank you!")

    async def _claim(self, campaign: Campaign, expert: Expert, now: int,
                     credit: Credit | None) -> Card | Idle | None:
        token = f"{campaign.code}.{secrets.token_urlsafe(9)}"
        spec = campaign.spec
        adjudicator, escalated_after = claim_access(spec, expert, now)
        claim = Claim(
            campaign=campaign.id, expert=expert.id, token=token, day=expert.local_day(now),
            now=now, expires_at=now + spec.time_limit_s * 1000,
            shuffle=self._shuffle(spec.kind),
            want_gold=spec.gold_rate > 0 and self.rng.random() < spec.gold_rate,
            overlap=spec.overlap_min,
            event=Event(campaign=campaign.id, type="assigned", at=iso_ms(now), actor="system",
                        expert=expert.id, lease=token),
            credit=credit, adjudicator=adjudicator, escalated_after=escalated_after,
        )
        gate = await self.qualifying.gate(campaign, claim)  # its qualification first, if any
        if not gate.open:
            return gate.shown(card_from(campaign, gate.claimed, resumed=gate.claimed.lease.token
                                        != token)) if gate.claimed else gate.idle
        claimed = await self.leases.claim(claim)
        if not isinstance(claimed, Claimed):
            return None
        card = card_from(campaign, claimed, resumed=claimed.lease.token != token)
        if not claimed.lease.adjudicate:
            return card
        prior = await prior_answers(self.log, campaign.id, claimed.prior, claimed.lease.order)
        return card.model_copy(update={"prior": prior})

    def _shuffle(self, kind: Kind) -> list[int]:
        """A random order of draft indices; the store keeps those below the item's draft count,
        which leaves a uniformly random order of exactly the item's drafts."""
        most = DRAFTS_PER_KIND[kind][1]
        return self.rng.sample(range(most), most)

    async def submit(self, answer: Answer) -> Outcome:
        """Record a decision once and hand over the next task. A repeat returns the first
        outcome with `replayed` set. One store call records; only edits read the draft first.
        A live ask's answer (its token starts with `ask-`) is recorded by the asks service."""
        if is_ask_token(answer.lease):
            return await self._ask_answer(answer)
        campaign_id = await self.catalog.campaign_for_lease(answer.lease)
        if campaign_id is None:
            return _refused(answer, REFUSALS["gone"])
        campaign = await self.catalog.campaign(campaign_id)
        decision = answer.decision
        try:
            check_decision(campaign.spec.options(), _drafts_named(decision), decision)
        except InvalidAnswer as exc:
            return _refused(answer, str(exc))
        rationale = " ".join((answer.rationale or "").split()) or None  # one line
        if rationale is None and campaign.spec.rationale == "required" \
                and decision.type in COUNTED:
            return _refused(answer, REFUSALS["reason_needed"])
        payload: dict[str, object] = {"channel": answer.channel, "decision":
                                      decision.model_dump(mode="json"),
                                      "platform_event": answer.event_id}
        if rationale is not None:
            payload["rationale"] = rationale
        if _edits_draft(decision):
            view = await self.leases.lease_view(campaign_id, answer.lease)
            if view is None or view.lease.expert != answer.expert:
                return _refused(answer, REFUSALS["gone"])
            draft = item_from_body(view.item_body).drafts[view.lease.order[0]].text
            payload["diff"] = diff(draft, getattr(decision, "text", "") or "")
        record = self._record(campaign, answer, payload)
        result, routing = await self.leases.record(record)
        return await self._outcome(answer, result, routing, campaign)

    async def _ask_answer(self, answer: Answer) -> Outcome:
        """The asks service records it; the expert's next task comes with it, as for a task
        (also when the ask had closed: the card is done with either way)."""
        outcome = await self.asks.answer(answer)
        if outcome.status == "refused" and outcome.reason not in ASK_CLOSED:
            return outcome  # not theirs, or a call that does not fit: the card stays
        return outcome.model_copy(update={"next": await self.next_task(
            answer.expert, fresh=True, channel=answer.channel)})

    def _record(self, campaign: Campaign, answer: Answer, payload: dict[str, object]) -> Submission:
        now = self.clock.now_ms()
        if answer.acted_at is not None:  # a press that waited in an inbox: when it came
            now = min(answer.acted_at, now)
        effect = EFFECTS.get(answer.decision.type, "answered")
        event_type = EVENT_TYPES.get(effect, "answered")
        spec = campaign.spec
        return Submission(
            campaign=campaign.id, token=answer.lease, expert=answer.expert, now=now,
            effect=effect,
            event=Event(campaign=campaign.id, type=event_type, at=iso_ms(now), actor="expert",
                        actor_id=answer.expert, expert=answer.expert, lease=answer.lease,
                        payload=payload),
            decision=answer.decision.type, overlap=spec.overlap_min,
            time_limit_s=spec.time_limit_s, opened_at=answer.opened_at,
            expect_drafts=_drafts_named(answer.decision), route_days=_nearby_days(now),
            judging=judging(spec, answer.decision) if answer.decision.type in COUNTED else None,
            reason_if_escalated=spec.rationale == "on_escalation",
        )

    async def _outcome(self, answer: Answer, result: Recorded, routing: Routing,
                       campaign: Campaign) -> Outcome:
        now = self.clock.now_ms()
        if result.status == "invalid":
            labels = ", ".join(draft_label(i) for i in range(result.drafts or 0))
            return _refused(answer, f"rank every draft exactly once: {labels}")
        if result.status in ("gone", "reason_needed"):
            return _refused(answer, REFUSALS[result.status])
        if result.status not in ("recorded", "duplicate"):  # expired or closed: offer another
            refused = _refused(answer, REFUSALS[result.status])
            return refused.model_copy(update={"next": await self._next(
                answer.expert, routing, now, fresh=True, channel=answer.channel)})
        counts = result.status == "recorded" and result.decision in COUNTED
        credit = _credit(campaign, result, now) if counts else None
        nxt = await self._next(answer.expert, routing, now, credit=credit, fresh=True,
                               channel=answer.channel)
        return Outcome(status="recorded", lease=answer.lease, decision=result.decision,
                       seq=result.seq, answered_at=result.answered_at,
                       active_seconds=result.active_seconds,
                       replayed=result.status == "duplicate", late=result.late, next=nxt)

    async def add_rationale(self, expert_id: str, lease: str, text: str, channel: str = "api",
                            event_id: str | None = None) -> bool:
        """A line of why sent after the answer was recorded (a chat's optional prompt after the
        tap, so one tap still answers): its own `rationale_added` event naming the answer's seq,
        once per answer. False when the lease is not this expert's answered one, the line is
        empty, or the answer has its line already."""
        rationale = " ".join(text.split())[:RATIONALE_CHARS]
        if is_ask_token(lease):
            return bool(rationale) and await self.asks.add_rationale(expert_id, lease, rationale,
                                                                     channel, event_id)
        campaign_id = await self.catalog.campaign_for_lease(lease)
        view = await self.leases.lease_view(campaign_id, lease) if campaign_id else None
        if not rationale or campaign_id is None or view is None \
                or view.lease.expert != expert_id or view.outcome is None:
            return False
        seq, _, _, decision, *_ = view.outcome.split("|")
        if decision not in COUNTED:
            return False
        event = Event(campaign=campaign_id, type="rationale_added", at=iso_ms(self.clock.now_ms()),
                      actor="expert", actor_id=expert_id, expert=expert_id, item=view.lease.item,
                      lease=lease, payload={"rationale": rationale, "answer": int(seq),
                                            "channel": channel, "platform_event": event_id})
        return await self.log.add_rationale(campaign_id, int(seq), rationale, body_json(event))

    async def stats(self, expert_id: str) -> ExpertStats:
        expert = await self._expert(expert_id)
        return stats_from_tallies(expert, await self.experts.expert_tallies(expert_id),
                                  self.clock.now_ms())

    async def set_paused(self, expert_id: str, paused: bool) -> Expert:
        """An expert's own pause: no new tasks (asked or pushed) until they resume."""
        expert = (await self._expert(expert_id)).model_copy(update={"paused": paused})
        await self.experts.save_expert(expert, create=False)
        return expert

    async def expert_for_web_token(self, token: str) -> str | None:
        """Web chat links are bearer secrets; only their hash is stored."""
        return await self.access.expert_for_web_token(web_token_hash(token))

    # What Slack and the web chat look up again, so no channel reaches through to the store.

    async def expert_id_for_identity(self, identity: str) -> str | None:
        """The id of the expert a chat account (`slack:U123`) acts as, None until it is linked:
        one read, for a channel that needs no more of the profile."""
        return await self.experts.expert_for_identity(identity)

    async def web_chat_expert(self, token: str) -> Expert | None:
        """The expert behind a web chat link; None for a link unknown, revoked or erased."""
        expert_id = await self.expert_for_web_token(token)
        return await self.experts.load_expert(expert_id) if expert_id else None

    async def campaign_for_lease(self, token: str) -> str | None:
        """The campaign a lease token belongs to, even after the lease ended; `asks` for a
        live ask's token."""
        if is_ask_token(token):
            return ASKS_LOG if await self.asks.store.token_ask(token) else None
        return await self.catalog.campaign_for_lease(token)

    async def _expert(self, expert_id: str) -> Expert:
        expert = await self.experts.load_expert(expert_id)
        if expert is None:
            raise NotFound(f"no expert {expert_id!r}")
        return expert

    async def delivered(self, token: str, at: int | None = None, channel: str = "",
                        message_id: str | None = None,
                        images: list[dict[str, str]] | None = None) -> bool:
        """The channel showed the card: the clock for the expert's time starts here. `images`
        says how each image went, since a platform may recompress what it shows:
        `{"sha256", "as": "original" | "photo" | "converted:<type>"}`. A live ask's card
        records `ask_delivered`, once per channel."""
        if is_ask_token(token):
            return await self.asks.mark(token, "delivered", self.clock.now_ms() if at is None
                                        else at, "", channel, message_id)
        return await self._mark(token, "delivered", at,
                                {"channel": channel, "message_id": message_id,
                                 "images": images or None})

    async def opened(self, token: str, expert_id: str, at: int | None = None) -> bool:
        """The expert first touched the card (a tap, a focus): the best start of active time.
        Only their own: a token is no credential, and another's clock is not theirs to start.
        `at`: when the tap was kept, if it waited in an inbox (a backlog must not cost them pay)."""
        now = self.clock.now_ms()
        when = now if at is None else min(at, now)
        if is_ask_token(token):
            return await self.asks.mark(token, "opened", when, expert_id)
        return await self._mark(token, "opened", when, {}, expert_id)

    async def _mark(self, token: str, what: str, at: int | None,
                    payload: dict[str, object], expert_id: str = "") -> bool:
        campaign_id = await self.catalog.campaign_for_lease(token)
        if campaign_id is None:
            return False
        when = at if at is not None else self.clock.now_ms()
        event = Event(campaign=campaign_id, type=what, at=iso_ms(when), actor="system", lease=token,
                      payload={k: v for k, v in payload.items() if v is not None})
        return await self.leases.mark(campaign_id, token, what, when, body_json(event), expert_id)

    async def expire_leases(self, campaign_id: str) -> int:
        """Give the slots of abandoned tasks back to the pool."""
        now = self.clock.now_ms()
        return await self.leases.expire_due(campaign_id, now)

    async def give_back(self, token: str, channel: str, error: str) -> bool:
        """The channel could not show this task (its platform refused the card): the slot goes
        back to the pool now, not when the lease runs out, with an `undeliverable` event. A
        live ask has no slot to give back: its offer stays open (the web chat shows it), so
        False."""
        if is_ask_token(token):
            return False
        campaign_id = await self.catalog.campaign_for_lease(token)
        view = await self.leases.lease_view(campaign_id, token) if campaign_id else None
        if campaign_id is None or view is None:
            return False
        event = Event(campaign=campaign_id, type="undeliverable", at=iso_ms(self.clock.now_ms()),
                      actor="system", expert=view.lease.expert, item=view.lease.item,
                      lease=token, payload={"channel": channel, "error": error})
        return await self.leases.give_back(campaign_id, token, body_json(event))

    # What Telegram looks up again about a lease or a sender (with `campaign_for_lease` above),
    # so it never reaches into the store or the catalog (adapters/telegram/).

    async def campaign_of_lease(self, lease: str) -> Campaign | None:
        """The posted campaign a lease belongs to, for its spec (labels, options); None for a
        live ask's token (its card carries all it shows)."""
        if is_ask_token(lease):
            return None
        campaign_id = await self.catalog.campaign_for_lease(lease)
        return None if campaign_id is None else await self.catalog.campaign(campaign_id)

    async def holds_lease(self, expert_id: str, lease: str) -> bool:
        """Whether the lease is this expert's live one: only then may a tap change its card.
        A live ask's token: theirs, its ask pending, not answered by them yet."""
        if is_ask_token(lease):
            return await self.asks.holds(expert_id, lease) is not None
        campaign_id = await self.catalog.campaign_for_lease(lease)
        if campaign_id is None:
            return False
        now = self.clock.now_ms()
        return lease in await self.leases.held_leases(expert_id, [campaign_id], now)

    async def shown_draft(self, lease: str, expert_id: str) -> str | None:
        """Draft A as this expert was shown it (the shuffled first); None unless the lease is
        their live one. A live ask shows its drafts in their given order."""
        if is_ask_token(lease):
            held = await self.asks.holds(expert_id, lease)
            drafts = request_of(held.ask).drafts if held else None
            return None if drafts is None else (drafts[0].text if drafts else "")
        campaign_id = await self.catalog.campaign_for_lease(lease)
        view = await self.leases.lease_view(campaign_id, lease) if campaign_id else None
        if view is None or view.lease.expert != expert_id or view.lease.state != "live":
            return None
        drafts = item_from_body(view.item_body).drafts
        return drafts[view.lease.order[0]].text if view.lease.order else ""

    async def expert_for_account(self, identity: str, last: str | None = None) -> Expert | None:
        """The expert a platform account (`telegram:123`) acts as. `last`, the expert it was
        last time, saves the index read while that profile still names the account."""
        expert = await self.experts.load_expert(last) if last else None
        if expert is not None and identity in expert.identities:
            return expert
        expert_id = await self.experts.expert_for_identity(identity)  # linked anew, or gone
        return None if expert_id is None else await self.experts.load_expert(expert_id)


def card_from(campaign: Campaign, claimed: Claimed, resumed: bool = False) -> Card:
    spec, lease = campaign.spec, claimed.lease
    item = item_from_body(claimed.item_body)
    drafts = [CardDraft(label=draft_label(pos), text=item.drafts[index].text)
              for pos, index in enumerate(lease.order)]
    pay = spec.pay
    per_task, per_hour = (pay.per_task, pay.per_hour) if pay else (None, None)
    return Card(
        lease=lease.token, campaign=campaign.id, title=spec.title, instructions=spec.instructions,
        kind=spec.kind, item=item.id, prompt=item.prompt, images=card_images(item),
        drafts=drafts, allowed=allowed_answers(spec.kind), scale=spec.options().scale,
        labels=spec.labels, multi=spec.multi, expires_at=lease.expires_at,
        estimate=make_estimate(spec.kind, claimed.median_seconds, claimed.answers, per_task,
                               per_hour, pay.currency if pay else None),
        resumed=resumed, rationale=_rationale(spec, lease), adjudication=lease.adjudicate,
    )


def card_images(item: Item) -> list[CardImage]:
    """The item's images as stored (import filled every field), in the item's order; an
    image not yet stored (an item built in memory) has no bytes to show and is left out."""
    return [CardImage(sha256=image.sha256, type=image.type or "application/octet-stream",
                      alt=image.alt or f"image {number} of {item.id}", width=image.width or 1,
                      height=image.height or 1, bytes=image.bytes or 1)
            for number, image in enumerate(item.images, start=1) if image.sha256]


def _rationale(spec: CampaignSpec, lease: Lease) -> Literal["none", "optional", "required"]:
    """Whether the card asks for a line of why: always for a final call; on an item asked
    again when the campaign says `on_escalation`."""
    if lease.adjudicate or spec.rationale == "required":
        return "required"
    if spec.rationale == "on_escalation":
        return "required" if lease.escalated else "none"
    return "optional" if spec.rationale == "optional" else "none"


def item_from_body(body: str) -> Item:
    """Items live in the log only, as `item_added` events, or `item_ready` once the campaign's
    models drafted what an item lacked: the log is the record of drafts."""
    return Item.model_validate(json.loads(body)["payload"]["item"])


def _drafts_named(decision: Decision) -> int:
    """How many drafts a ranking names; the store checks the lease shows that many."""
    return len(decision.order) if isinstance(decision, Rank) else 0


def _edits_draft(decision: Decision) -> bool:
    """Edits are kept as a diff against the draft, so only they need the draft before saving."""
    return isinstance(decision, Correct) or (
        isinstance(decision, Verify) and decision.verdict == "override")


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


def _credit(campaign: Campaign, result: Recorded, now: int) -> Credit:
    """What an answer earns before any top-up: the task rate, or the hourly rate for its time."""
    seconds = result.active_seconds or 0.0
    pay, earned = campaign.spec.pay, 0.0
    if pay is not None:
        earned = pay.per_task if pay.per_task is not None else (pay.per_hour or 0) * seconds / 3600
    day = result.day or datetime.fromtimestamp(now / 1000, UTC).date().isoformat()
    return Credit(day, seconds, round(earned, 4), pay.currency if pay else None)


def _refused(answer: Answer, reason: str) -> Outcome:
    return Outcome(status="refused", lease=answer.lease, reason=reason,
                   decision=answer.decision.type)

