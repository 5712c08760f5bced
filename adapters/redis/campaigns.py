"""The Campaigns role on Redis: specs, states, items and their counts. A change to a campaign
and the event that records it happen in one Lua script, so they cannot come apart."""

from __future__ import annotations

import json
from typing import Any

from adapters.redis import keys as k
from adapters.redis.lua import OnRedis
from core.domain.campaigns import Campaign, CampaignState, CampaignStatus
from core.ports import Route, StagedItem

COUNT_FIELDS = ("items", "answers", "done", "skipped", "flagged", "none_acceptable", "expired",
                "dead_requests", "conversations", "awaiting_adjudication", "adjudicated")


class RedisCampaigns(OnRedis):
    """Campaigns, each in its own Cluster slot."""

    async def next_code(self) -> str:
        return _base36(int(await self.client.incr(k.CODE_COUNTER)))

    async def create_campaign(self, campaign: Campaign, event_body: str) -> bool:
        created = await self._run("meta", campaign.id,
                                  ["create", campaign.model_dump_json(), campaign.code, event_body])
        if not created:
            return False
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(k.CAMPAIGNS, {campaign.id: campaign.created_at})
            pipe.hset(k.CODES, campaign.code, campaign.id)
            await pipe.execute()
        return True

    async def load_campaign(self, campaign_id: str) -> Campaign | None:
        raw = await self.client.hget(k.campaign_key(campaign_id, "meta"), "campaign")
        return Campaign.model_validate_json(raw) if raw else None

    async def campaign_for_code(self, code: str) -> str | None:
        found = await self.client.hget(k.CODES, code)
        return str(found) if found else None

    async def list_campaigns(self) -> list[str]:
        return [str(c) for c in await self.client.zrange(k.CAMPAIGNS, 0, -1)]

    async def campaign_state(self, campaign_id: str) -> CampaignState | None:
        raw = await self.client.hget(k.campaign_key(campaign_id, "meta"), "state")
        return CampaignState(raw) if raw and raw != "importing" else None

    async def set_state(self, campaign_id: str, state: CampaignState, route: Route | None,
                        event_body: str) -> None:
        await self._run("meta", campaign_id, ["state", state.value, "", event_body])
        if route is not None:
            await self.client.hset(k.ROUTING, campaign_id, route.model_dump_json())
        else:
            await self.client.hdel(k.ROUTING, campaign_id)

    async def existing_items(self, campaign_id: str, ids: list[str]) -> set[str]:
        found = await self.client.hmget(k.campaign_key(campaign_id, "items"), ids)
        return {item for item, hit in zip(ids, found, strict=True) if hit is not None}

    async def append_items(self, campaign_id: str, items: list[StagedItem],
                           event_prefix: str) -> int:
        args: list[Any] = [len(items)]
        for item in items:
            body = f'{event_prefix},"item":{json.dumps(item.id)},"payload":{{"item":{item.json}}}}}'
            key = "" if item.queue_key is None else item.queue_key
            args += [item.id, item.n_drafts, int(item.gold), body, item.plan, key,
                     item.auto_accepted, int(item.audited), _image_hashes(item.json)]
        args.append(sum(item.conversation for item in items))
        result = await self._run("append_items", campaign_id, args)
        if result[0] == "exists":
            raise KeyError(result[1])
        return int(result[1])

    async def status(self, campaign: Campaign, state: CampaignState) -> CampaignStatus:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(k.campaign_key(campaign.id, "counts"), list(COUNT_FIELDS))
            pipe.zcard(k.campaign_key(campaign.id, "expiry"))
            counts, live = await pipe.execute()
        values = {name: int(v or 0) for name, v in zip(COUNT_FIELDS, counts, strict=True)}
        return CampaignStatus(id=campaign.id, title=campaign.spec.title, kind=campaign.spec.kind,
                              state=state, in_progress=int(live), **values)


def _image_hashes(item_json: str) -> str:
    """The item's images by SHA-256, "sha,sha" ('' without images: most items, unparsed)."""
    if '"images"' not in item_json:
        return ""
    images = json.loads(item_json).get("images") or []
    return ",".join(image["sha256"] for image in images if image.get("sha256"))


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
