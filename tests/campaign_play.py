"""Shared by the report and export tests: post a campaign of given items, and let an expert work
through it with a chosen decision and time per card, through the service as a channel would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.domain.answers import Answer
from core.domain.campaigns import Campaign, CampaignSpec
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import Decision, Skip
from core.domain.timing import SetClock
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items

Decide = Callable[[Card], Decision | None]


async def post_items(coordinator: Coordinator, items: list[dict[str, Any]],
                     **spec: Any) -> Campaign:
    made = CampaignSpec(**{"id": "c1", "title": "Report me", **spec})
    spool = spool_items(made, items)
    try:
        return await coordinator.post_campaign(made, spool)
    finally:
        spool.close()


async def add_expert(coordinator: Coordinator, expert_id: str) -> None:
    await coordinator.add_expert(Expert(id=expert_id, name=expert_id.title()))


async def work(service: Service, clock: SetClock, expert: str, decide: Decide,
               seconds: float | Callable[[Card], float] = 30.0, limit: int = 10_000) -> int:
    """Answer cards until none is left; `decide` returning None skips. Returns answers given."""
    answered = 0
    for _ in range(limit):
        task = await service.next_task(expert)
        if not isinstance(task, Card):
            return answered
        await service.opened(task.lease, expert)
        clock.advance(seconds(task) if callable(seconds) else seconds)
        decision = decide(task)
        outcome = await service.submit(Answer(expert=expert, lease=task.lease,
                                              decision=decision or Skip(), channel="web"))
        assert outcome.status == "recorded", outcome.reason
        answered += decision is not None
    return answered


def draft_index(card: Card, text: str) -> str:
    """The label under which a draft with this text is shown on the card."""
    return next(d.label for d in card.drafts if d.text == text)
