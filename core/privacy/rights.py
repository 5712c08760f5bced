"""An expert's own data: everything held about them as one document (export), and erasure:
profile, platform accounts, chat links and invites removed, their answers kept in the
hash-chained log and shown from then on under a pseudonym (see docs/privacy.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel

from core.domain.experts import Expert
from core.errors import Conflict, NotFound
from core.ports import Erasure, Stores
from core.privacy.pseudonyms import digest, new_pseudonym
from core.provenance.ledger import Ledger
from core.reports.exports import trail_row
from core.reports.records import task_records
from core.service.catalog import Catalog

BATCH = 2000


class AlreadyErased(Conflict):
    pass


class Invite(BaseModel):
    sha256: str
    expires_in_s: int


class Tokens(BaseModel):
    """Access an expert holds, as stored: digests only; the tokens themselves are never kept."""

    web_chat_sha256: str | None
    invites: list[Invite]


class CampaignAnswers(BaseModel):
    campaign: str
    title: str
    answers: list[dict[str, Any]]  # one `trail` row per finished task, as exports write them


class ExpertExport(BaseModel):
    """Everything expertloop holds about one expert."""

    expert: Expert
    tallies: dict[str, float]
    tokens: Tokens
    campaigns: list[CampaignAnswers]


class ErasureReport(BaseModel):
    pseudonym: str
    identities: int
    campaigns: int  # campaigns whose log holds their work, shown under the pseudonym from now on
    answers: int


class Privacy:
    def __init__(self, stores: Stores, ledger: Ledger, catalog: Catalog | None = None) -> None:
        self.campaigns = stores.campaigns
        self.experts = stores.experts
        self.access = stores.access
        self.log = stores.log
        self.ledger = ledger
        self.catalog = catalog or Catalog(stores.campaigns)

    async def export(self, expert_id: str) -> ExpertExport:
        expert = await self._expert(expert_id)
        tokens = await self.access.expert_tokens(expert_id)
        invites = [Invite(sha256=h, expires_in_s=ms // 1000) for h, ms in tokens.invites.items()]
        return ExpertExport(
            expert=expert, tallies=await self.experts.expert_tallies(expert_id),
            tokens=Tokens(web_chat_sha256=tokens.web, invites=invites),
            campaigns=[found async for found in self._answers(expert_id)])

    async def erase(self, expert_id: str) -> ErasureReport:
        """Safe to run again after a failure part way: the pseudonym stays the first one."""
        expert = await self._expert(expert_id)
        handles = set(expert.identities)
        campaigns = answers = 0
        for campaign_id in await self.campaigns.list_campaigns():
            chats, answered, touched = await self._traces(campaign_id, expert_id)
            handles |= chats
            campaigns += touched
            answers += answered
        pseudonym = await self.access.erase_expert(Erasure(
            expert_id, digest(expert_id), new_pseudonym(), sorted(map(digest, handles)),
            expert.identities))
        return ErasureReport(pseudonym=pseudonym, identities=len(expert.identities),
                             campaigns=campaigns, answers=answers)

    async def _expert(self, expert_id: str) -> Expert:
        found = await self.experts.load_expert(expert_id)
        if found is not None:
            return found
        if digest(expert_id) in (await self.log.erasures()).experts:
            raise AlreadyErased(f"expert {expert_id!r} is already erased; nothing is held "
                                "under that id")
        raise NotFound(f"no expert {expert_id!r}")

    async def _answers(self, expert_id: str) -> AsyncIterator[CampaignAnswers]:
        """Per campaign, the expert's finished tasks as `trail` rows (one read of each log)."""
        for campaign_id in await self.campaigns.list_campaigns():
            campaign = await self.catalog.campaign(campaign_id)
            await self.ledger.seal(campaign_id)  # so every row carries its event hashes
            rows = [trail_row(campaign, record, None)
                    async for batch in task_records(self.ledger, campaign_id)
                    for record in batch if record.expert == expert_id]
            if rows:
                yield CampaignAnswers(campaign=campaign_id, title=campaign.spec.title,
                                      answers=rows)

    async def _traces(self, campaign_id: str, expert_id: str) -> tuple[set[str], int, bool]:
        """The chats the expert's cards went to (`<channel>:<chat>`, from `delivered` events
        of their leases), how many tasks they finished here, and whether they had any. Reads
        the stored events, not `Ledger.events`, which may already show the pseudonym."""
        leases: set[str] = set()
        chats: set[str] = set()
        answered, after = 0, 0
        while stored := await self.log.read_events(campaign_id, after, BATCH):
            after = stored[-1].seq
            for event in (json.loads(e.body) for e in stored):
                lease, payload = event.get("lease"), event.get("payload") or {}
                if event.get("type") == "assigned" and event.get("expert") == expert_id:
                    leases.add(str(lease))
                elif lease in leases and event.get("type") in ("answered", "skipped", "flagged"):
                    answered += 1
                elif lease in leases and event.get("type") == "delivered":
                    chat = _chat(payload)
                    if chat:
                        chats.add(chat)
        return chats, answered, bool(leases)


def _chat(payload: Any) -> str | None:
    message = payload.get("message_id") if isinstance(payload, dict) else None
    if not isinstance(message, str) or ":" not in message or payload.get("channel") == "web":
        return None  # a web chat message id is the lease, not a person
    return f"{payload.get('channel', '')}:{message.split(':', 1)[0]}"
