"""One campaign's panel on the dashboard: its progress counts, quality and pay reports and the
figures for its charts, built in the background from the campaign's tallies (one read of its
history: the archived segments' tallies are kept beside them, so only the tail is read) and kept
until the log grows (at most every FRESH_S while it grows), so a page view never waits long on
a large campaign."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from adapters.dashboard.figures import Figures, figures_from
from core.domain.campaigns import Campaign, CampaignStatus
from core.ports import History
from core.provenance.ledger import Ledger
from core.reports.audit import auto_accept_audit
from core.reports.history import history_of
from core.reports.models import ModelsReport, models_from
from core.reports.pay import PayLine, PayReport, pay_from
from core.reports.quality import Quality, quality_from
from core.service.coordinator import Coordinator

log = logging.getLogger(__name__)
FRESH_S = 20.0  # a growing campaign's panel is rebuilt at most this often
WAIT_S = 2.0  # a page waits this long for builds, then shows what it has
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
    models: ModelsReport | None = None  # how experts treat each model's drafts

    @property
    def target(self) -> int:
        return self.status.items * self.campaign.spec.overlap_min  # more only while disputed

    @property
    def gold(self) -> tuple[int, int]:
        """(correct, answered) gold items over all experts."""
        experts = self.quality.experts
        return sum(e.gold_correct for e in experts), sum(e.gold_answers for e in experts)


class Shown(NamedTuple):
    """A campaign as the page shows it: the latest panel (None before the first is built)."""

    status: CampaignStatus
    panel: Panel | None
    building: bool
    error: str | None = None


async def build_panel(coordinator: Coordinator, ledger: Ledger, status: CampaignStatus,
                      seq: int, history: History | None = None) -> Panel:
    """One read of the campaign's tallies (`history`; the plain reader of the ledger when
    None) gives quality, figures, pay and the models report."""
    started = time.perf_counter()
    campaign = await coordinator.campaign(status.id)
    tallies = await history_of(ledger, history).tallies(campaign)
    quality = quality_from(tallies.quality, campaign, resamples=RESAMPLES, consensus=False)
    figures = figures_from(tallies.figures)
    pay = pay_from(tallies.figures, campaign)
    models = models_from(tallies.models_with_made(), campaign,
                         await auto_accept_audit(ledger, campaign))
    return Panel(campaign=campaign, status=status, quality=quality, pay=pay, figures=figures,
                 ties=quality.ties, seq=seq, built_at=time.time(), models=models,
                 build_seconds=time.perf_counter() - started,
                 pay_by_expert={line.expert: line for line in pay.lines})


class Panels:
    """Panels by campaign id. A panel is rebuilt when its campaign's log has grown and the
    panel is older than FRESH_S; a quiet campaign's panel is reused until something happens."""

    def __init__(self, coordinator: Coordinator, ledger: Ledger, wait_s: float = WAIT_S,
                 history: History | None = None) -> None:
        self.coordinator = coordinator
        self.ledger = ledger
        self.history = history
        self.wait_s = wait_s
        self.kept: dict[str, Panel] = {}
        self.errors: dict[str, str] = {}
        self.building: dict[str, asyncio.Task[Panel]] = {}

    async def all(self) -> list[Shown]:
        statuses = await self.coordinator.list_campaigns()
        for status in statuses:
            seq = await self.coordinator.last_seq(status.id)
            kept = self.kept.get(status.id)
            stale = kept is None or (kept.seq != seq and time.time() - kept.built_at > FRESH_S)
            if stale and status.id not in self.building:
                self._start(status, seq)
        if self.building:
            await asyncio.wait(list(self.building.values()), timeout=self.wait_s)
        return [self._shown(status) for status in statuses]

    async def stop(self) -> None:
        tasks = list(self.building.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, status: CampaignStatus, seq: int) -> None:
        task = asyncio.create_task(build_panel(self.coordinator, self.ledger, status, seq,
                                               self.history))
        self.building[status.id] = task
        task.add_done_callback(lambda done: self._finish(status.id, done))

    def _finish(self, campaign_id: str, task: asyncio.Task[Panel]) -> None:
        self.building.pop(campaign_id, None)
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("dashboard panel for %s failed", campaign_id, exc_info=task.exception())
            self.errors[campaign_id] = repr(task.exception())
            return
        self.errors.pop(campaign_id, None)
        self.kept[campaign_id] = task.result()

    def _shown(self, status: CampaignStatus) -> Shown:
        kept = self.kept.get(status.id)
        if kept is not None:
            kept.status = status  # counts are cheap and always current
        return Shown(status, kept, status.id in self.building, self.errors.get(status.id))
