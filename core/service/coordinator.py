"""What a coordinator does to campaigns and experts: post, add items, pause, resume, close."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable

from core.domain.campaigns import Campaign, CampaignSpec, CampaignState, CampaignStatus
from core.domain.experts import IDENTITY_PATTERN, Expert, new_web_token, web_token_hash
from core.domain.qualification import QualificationResult, counts
from core.errors import Conflict, ExpertloopError, InvalidCampaign, NotFound, Problem
from core.ports import Clock, Route, Stores
from core.privacy.pseudonyms import digest
from core.provenance.events import Event, body_json, iso_ms, open_body
from core.service.catalog import Catalog
from core.service.images import ImageImport, import_images
from core.service.judging import auto_accept
from core.service.qualification import qualification_items
from core.service.staging import ItemSpool

Progress = Callable[[int], None] | None
FIXED_FIELDS = ("id", "identities")  # an expert's, not changed by an update
INVITE_TTL_S = 7 * 24 * 3600  # a chat invite is good for a week, once
TRANSITIONS = {  # action -> (states it may start from, state it leads to, event type)
    "pause": ({CampaignState.active}, CampaignState.paused, "paused"),
    "resume": ({CampaignState.paused}, CampaignState.active, "resumed"),
    "close": ({CampaignState.active, CampaignState.paused}, CampaignState.closed, "closed"),
}


class Coordinator:
    def __init__(self, stores: Stores, clock: Clock, catalog: Catalog | None = None,
                 images: ImageImport | None = None) -> None:
        self.campaigns = stores.campaigns
        self.experts = stores.experts
        self.access = stores.access
        self.log = stores.log
        self.drafts = stores.drafts
        self.leases = stores.leases
        self.qualifications = stores.qualifications
        self.clock = clock
        self.catalog = catalog or Catalog(stores.campaigns)
        self.images = images  # None: an item with images is refused (no media store)

    async def post_campaign(self, spec: CampaignSpec, items: ItemSpool, *,
                            actor_id: str | None = None, progress: Progress = None) -> Campaign:
        """Store the spec, then the items, then open the campaign to experts."""
        items.check()
        await self._import_images(items)
        qualifying = qualification_items(spec)  # checked before anything is stored
        clashes = [Problem(f"qualification item {item.id!r} has the id of a campaign item; "
                           "reports tell them apart by id", source=items.source,
                           loc=("qualification", "items", index, "id"))
                   for index, item in enumerate(qualifying) if items.holds(item.id)]
        if clashes:
            raise InvalidCampaign(clashes)
        now = self.clock.now_ms()
        campaign_id = spec.id or _new_id(spec.title)
        campaign = Campaign(id=campaign_id, code=await self.campaigns.next_code(),
                            spec=spec.model_copy(update={"id": campaign_id}), created_at=now)
        event = self._event(campaign_id, "campaign_posted", actor_id,
                            {"spec": campaign.spec.model_dump(mode="json"), "code": campaign.code})
        if not await self.campaigns.create_campaign(campaign, body_json(event)):
            raise Conflict(f"campaign {campaign_id!r} already exists")
        count = await self._append(campaign_id, items, actor_id, progress)
        if qualifying:
            prefix = open_body(campaign_id, "qualification_item_added", now, "coordinator",
                               actor_id=actor_id)
            await self.qualifications.add_qualification_items(campaign_id, qualifying, prefix)
        await self._change(campaign, CampaignState.active, "campaign_opened", actor_id,
                           {"items": count})
        return campaign

    async def add_items(self, campaign_id: str, items: ItemSpool, *, actor_id: str | None = None,
                        progress: Progress = None) -> int:
        """More items for a posted campaign; ids already there reject the whole batch first."""
        campaign = await self.catalog.campaign(campaign_id)
        if await self.campaigns.campaign_state(campaign_id) == CampaignState.closed:
            raise Conflict(f"campaign {campaign_id!r} is closed")
        if items.spec.kind != campaign.spec.kind:
            raise Conflict(f"campaign {campaign_id!r} is {campaign.spec.kind}, "
                           f"not {items.spec.kind}")
        await self._refuse_existing(campaign_id, items)
        await self._import_images(items)
        return await self._append(campaign_id, items, actor_id, progress)

    async def _import_images(self, items: ItemSpool) -> None:
        """Images are read, fetched and decoded before any item is stored (in a thread: files,
        URLs and Pillow block)."""
        if items.imaging:
            await asyncio.to_thread(import_images, items, self.images)

    async def _refuse_existing(self, campaign_id: str, items: ItemSpool) -> None:
        problems: list[Problem] = []
        for batch in items.batches():
            found = await self.campaigns.existing_items(campaign_id, [item.id for item in batch])
            problems += [Problem(f"item {item.id!r} is already in the campaign", line=item.line,
                                 source=items.source, loc=("id",))
                         for item in batch if item.id in found]
        if problems:
            raise InvalidCampaign(problems)

    async def _append(self, campaign_id: str, items: ItemSpool, actor_id: str | None,
                      progress: Progress) -> int:
        now = self.clock.now_ms()
        prefix = open_body(campaign_id, "item_added", now, "coordinator", actor_id=actor_id)
        stored = 0
        for batch in items.batches():
            batch = [auto_accept(items.spec, campaign_id, item, iso_ms(now)) for item in batch]
            try:
                stored += await self.campaigns.append_items(campaign_id, batch, prefix)
            except KeyError as exc:
                raise Conflict(f"item {exc.args[0]!r} was added meanwhile; "
                               f"{stored} items were stored before it") from exc
            if progress is not None:
                progress(len(batch))
        return stored

    async def change_state(self, campaign_id: str, action: str, actor_id: str | None = None
                           ) -> CampaignState:
        campaign = await self.catalog.campaign(campaign_id)
        state = await self.campaigns.campaign_state(campaign_id)
        sources, target, event_type = TRANSITIONS[action]
        if state not in sources:
            raise Conflict(f"campaign {campaign_id!r} is {state or 'importing'}; cannot {action}")
        await self._change(campaign, target, event_type, actor_id, {})
        return target

    async def _change(self, campaign: Campaign, state: CampaignState, event_type: str,
                      actor_id: str | None, payload: dict[str, object]) -> None:
        spec = campaign.spec
        route = Route(campaign=campaign.id, skills=spec.skills, gold_rate=spec.gold_rate,
                      created_at=campaign.created_at) if state == CampaignState.active else None
        event = self._event(campaign.id, event_type, actor_id, {"state": state.value, **payload})
        await self.campaigns.set_state(campaign.id, state, route, body_json(event))

    async def status(self, campaign_id: str) -> CampaignStatus:
        campaign = await self.catalog.campaign(campaign_id)
        state = await self.campaigns.campaign_state(campaign_id)
        if state is None:
            raise NotFound(f"campaign {campaign_id!r} is still importing")
        status = await self.campaigns.status(campaign, state)
        if campaign.spec.qualification is not None:
            results = await self.qualifications.qualification_results(campaign_id)
            status = status.model_copy(update={"qualification": counts(results)})
        if campaign.spec.drafting is None:
            return status
        drafting = await self.drafts.drafting_status(campaign_id)
        return status.model_copy(update={"drafting": drafting})

    async def adjudicate(self, campaign_id: str, item: str, actor_id: str | None = None) -> bool:
        """Send an item to an adjudicator for the final call, whatever its answers say; False
        when it waits for one already. It waits until an adjudicator asks for work."""
        await self.catalog.campaign(campaign_id)
        event = self._event(campaign_id, "sent_to_adjudication", actor_id, {})
        body = body_json(event.model_copy(update={"item": item}))
        queued = await self.leases.to_adjudication(campaign_id, item, self.clock.now_ms(), body)
        if queued < 0:
            raise NotFound(f"no item {item!r} in campaign {campaign_id!r}")
        return queued == 1

    async def qualification(self, campaign_id: str) -> list[QualificationResult]:
        """Every expert who began the campaign's qualification, and where they stand."""
        campaign = await self.catalog.campaign(campaign_id)
        if campaign.spec.qualification is None:
            raise Conflict(f"campaign {campaign_id!r} has no qualification")
        return await self.qualifications.qualification_results(campaign_id)

    async def requalify(self, expert_id: str, campaign_id: str,
                        actor_id: str | None = None) -> bool:
        """Let an expert take the campaign's qualification again (after failing, say); False
        when they had not begun it. The `requalified` event keeps who allowed it."""
        await self.expert(expert_id)
        await self.qualification(campaign_id)
        event = self._event(campaign_id, "requalified", actor_id, {"expert": expert_id})
        body = body_json(event.model_copy(update={"expert": expert_id}))
        return await self.qualifications.requalify(campaign_id, expert_id, body)

    async def redraft(self, campaign_id: str, actor_id: str | None = None) -> int:
        """Draft again what was set aside, and lift a pause on an endpoint's error (once the
        coordinator fixed the key or the URL, say); returns the items queued again."""
        campaign = await self.catalog.campaign(campaign_id)
        if campaign.spec.drafting is None:
            raise Conflict(f"campaign {campaign_id!r} has no models drafting for it")
        prefix = open_body(campaign_id, "redraft", self.clock.now_ms(), "coordinator",
                           actor_id=actor_id)
        return await self.drafts.redraft(campaign_id, prefix)

    async def list_campaigns(self) -> list[CampaignStatus]:
        found = []
        for campaign_id in await self.campaigns.list_campaigns():
            try:
                found.append(await self.status(campaign_id))
            except NotFound:
                continue
        return found

    # What the coordinator API and the dashboard look up, so they never reach through to the
    # catalog or the store.

    async def campaign(self, campaign_id: str) -> Campaign:
        """A posted campaign (its spec never changes); NotFound for an unknown id."""
        return await self.catalog.campaign(campaign_id)

    async def last_seq(self, campaign_id: str) -> int:
        """How far the campaign's log reaches: a report built from it stays current until this
        grows."""
        return await self.log.last_seq(campaign_id)

    async def add_expert(self, expert: Expert) -> Expert:
        for identity in expert.identities:
            owner = await self.experts.expert_for_identity(identity)
            if owner and owner != expert.id:
                raise Conflict(f"{identity} is already linked to expert {owner!r}")
        if not await self.experts.save_expert(expert, create=True):
            if digest(expert.id) in (await self.log.erasures()).experts:
                raise Conflict(f"expert id {expert.id!r} belonged to an erased expert and is "
                               "never given out again; choose another id")
            raise Conflict(f"expert {expert.id!r} already exists")
        return expert

    async def expert(self, expert_id: str) -> Expert:
        found = await self.experts.load_expert(expert_id)
        if found is None:
            raise NotFound(f"no expert {expert_id!r}")
        return found

    async def update_expert(self, expert_id: str, changes: dict[str, object]) -> Expert:
        """The expert with these fields changed (level, roles, name, skills, ...), checked whole
        as a new profile would be, and saved (last write wins: coordinators edit a profile
        rarely and one at a time). The id and linked accounts change only by linking."""
        fixed = sorted(set(changes) & set(FIXED_FIELDS))
        if fixed:
            raise ExpertloopError(f"{', '.join(fixed)} cannot be changed by an update")
        expert = await self.expert(expert_id)
        updated = Expert.model_validate({**expert.model_dump(), **changes})
        await self.experts.save_expert(updated, create=False)
        return updated

    async def link(self, expert_id: str, identity: str) -> Expert:
        """Let a platform account act as this expert; an account belongs to one expert only."""
        if not re.fullmatch(IDENTITY_PATTERN, identity):
            raise Conflict(f"{identity!r} is not slack:U123, telegram:456 or web:abc")
        expert = await self.expert(expert_id)
        owner = await self.experts.expert_for_identity(identity)
        if owner and owner != expert_id:
            raise Conflict(f"{identity} is already linked to expert {owner!r}")
        if identity not in expert.identities:
            expert = expert.model_copy(update={"identities": [*expert.identities, identity]})
            await self.experts.save_expert(expert, create=False)
        return expert

    async def invite_web(self, expert_id: str) -> str:
        """A new personal web chat token for the expert; any earlier one stops working."""
        await self.expert(expert_id)
        token = new_web_token()
        await self.access.set_web_token(expert_id, web_token_hash(token))
        return token

    async def revoke_web(self, expert_id: str) -> None:
        await self.expert(expert_id)
        await self.access.set_web_token(expert_id, None)

    async def new_invite(self, expert_id: str, ttl_s: int = INVITE_TTL_S) -> str:
        """A single-use, expiring token that links one chat account to the expert (the
        `start` parameter of a Telegram deep link: at most 64 of [A-Za-z0-9_-])."""
        await self.expert(expert_id)
        token = new_web_token()
        await self.access.save_invite(web_token_hash(token), expert_id, ttl_s * 1000)
        return token

    async def redeem_invite(self, token: str, identity: str) -> Expert | None:
        """Link `identity` to the invite's expert; None if the token is unknown, used or old."""
        expert_id = await self.access.take_invite(web_token_hash(token))
        return await self.link(expert_id, identity) if expert_id else None

    def _event(self, campaign_id: str, type_: str, actor_id: str | None,
               payload: dict[str, object]) -> Event:
        return Event(campaign=campaign_id, type=type_, at=iso_ms(self.clock.now_ms()),
                     actor="coordinator", actor_id=actor_id, payload=payload)


def _new_id(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "campaign"
    return f"{slug}-{secrets.token_hex(2)}"
