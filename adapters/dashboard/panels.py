"""One campaign's panel on the dashboard: its progress counts, quality and pay reports and the
figures for its charts, built from the log and kept until the log grows (or for a short while
when it grows fast), so a busy page does not reread a large campaign on every load."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from adapters.dashboard.figures import Figures, campaign_figures
from core.campaigns import Campaign, CampaignStatus
from core.coordinator import Coordinator
from core.ledger import Ledger
from core.pay import PayLine, PayReport, campaign_pay
from core.quality import Quality, campaign_quality

FRESH_S = 20.0  # a growing campaign's panel is rebuilt at most this often
RESAMPLES = 200  # bootstrap resamples for the leaderboard's intervals


@dataclass
class Panel:
    campaign: Campaign
    status: CampaignStatus
    quality: Quality
    pay: PayReport
    figures: Figures
    ties: int = 0  # units whose majority is a tie
    seq: int = 0  # the log's length when this panel was built
    built_at: float = 0.0
    build_seconds: float = 0.0
    pay_by_expert: dict[str, PayLine] = field(default_factory=dict)

    @property
    def target(self) -> int:
        return self.status.items * self.campaign.spec.overlap

    @property
    def gold(self) -> tuple[int, int]:
        """(correct, answered) gold items over all experts."""
        experts = self.quality.experts
        return sum(e.gold_correct for e in experts), sum(e.gold_answers for e in experts)


async def build_panel(coordinator: Coordinator, ledger: Ledger, status: CampaignStatus,
                      seq: int) -> Panel:
    started = time.perf_counter()
    campaign = await coordinator.catalog.campaign(status.id)
    quality = await campaign_quality(ledger, campaign, resamples=RESAMPLES)
    ties = sum(c.tie for c in quality.consensus)
    quality.consensus = []  # one row per unit: never shown, so not kept
    pay = await campaign_pay(ledger, campaign)
    figures = await campaign_figures(ledger, campaign.id)
    return Panel(campaign=campaign, status=status, quality=quality, pay=pay, figures=figures,
                 ties=ties, seq=seq, built_at=time.time(),
                 build_seconds=time.perf_counter() - started,
                 pay_by_expert={line.expert: line for line in pay.lines})


class Panels:
    """Panels by campaign id, rebuilt when the campaign's log has grown and the panel is
    older than FRESH_S (a quiet campaign's panel is reused until something happens)."""

    def __init__(self, coordinator: Coordinator, ledger: Ledger) -> None:
        self.coordinator = coordinator
        self.ledger = ledger
        self.kept: dict[str, Panel] = {}

    async def all(self) -> list[Panel]:
        found = []
        for status in await self.coordinator.list_campaigns():
            seq = await self.ledger.store.last_seq(status.id)
            kept = self.kept.get(status.id)
            if kept is None or (kept.seq != seq and time.time() - kept.built_at > FRESH_S):
                kept = await build_panel(self.coordinator, self.ledger, status, seq)
                self.kept[status.id] = kept
            else:
                kept.status = status  # counts are cheap and always current
            found.append(kept)
        return found
