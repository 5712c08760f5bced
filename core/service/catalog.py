"""A per-process memo of posted campaigns. Safe to share nothing: a posted campaign's spec never
changes (its state does, and that is always read from the store), so every process agrees."""

from __future__ import annotations

from core.domain.campaigns import Campaign
from core.errors import NotFound
from core.ports import Campaigns


class Catalog:
    def __init__(self, campaigns: Campaigns) -> None:
        self.campaigns = campaigns
        self._campaigns: dict[str, Campaign] = {}
        self._codes: dict[str, str] = {}

    async def campaign(self, campaign_id: str) -> Campaign:
        found = self._campaigns.get(campaign_id)
        if found is None:
            found = await self.campaigns.load_campaign(campaign_id)
            if found is None:
                raise NotFound(f"no campaign {campaign_id!r}")
            self._campaigns[campaign_id] = found
        return found

    async def campaign_for_lease(self, token: str) -> str | None:
        """A lease token starts with its campaign's short code, e.g. `3f.Xk2pQ9aLm0Rt`."""
        code = token.partition(".")[0]
        found = self._codes.get(code)
        if found is None:
            found = await self.campaigns.campaign_for_code(code)
            if found is not None:
                self._codes[code] = found
        return found
