"""The basic loop a user relies on: post, take a task, answer it, prove the record."""

from __future__ import annotations

from core.domain.answers import Answer
from core.domain.campaigns import CampaignSpec
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import Choose
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items


async def test_post_answer_and_verify(service: Service, coordinator: Coordinator,
                                      ledger: Ledger) -> None:
    spec = CampaignSpec(id="c1", title="Better answer?", kind="pairwise", overlap=2)
    items = [{"id": f"q{i}", "prompt": "Q?", "drafts": [{"text": "yes", "model": "m1"},
                                                        {"text": "no", "model": "m2"}]}
             for i in range(3)]
    await coordinator.post_campaign(spec, spool_items(spec, items))
    await coordinator.add_expert(Expert(id="dr-lee", name="Dr. Lee"))

    card = await service.next_task("dr-lee")
    assert isinstance(card, Card)
    first = await service.submit(Answer(expert="dr-lee", lease=card.lease,
                                        decision=Choose(choice="A")))
    again = await service.submit(Answer(expert="dr-lee", lease=card.lease,
                                        decision=Choose(choice="B")))

    assert first.status == "recorded" and again.replayed and again.seq == first.seq
    status = await coordinator.status("c1")
    assert (status.answers, status.in_progress) == (1, 1)
    await ledger.seal("c1")
    assert (await ledger.verify("c1")).ok
