"""Showing tasks on a channel, the same way for every channel: send the card, then tell the
core when and where it was delivered, so the expert's time starts when they could see it."""

from __future__ import annotations

from core.answers import Answer, Outcome
from core.cards import Card, NextTask
from core.ports import Messenger
from core.service import Service


async def deliver(service: Service, messenger: Messenger, address: str, task: NextTask) -> None:
    if isinstance(task, Card):
        landed = await messenger.send_card(address, task)
        await service.delivered(task.lease, landed.at, messenger.channel, landed.message_id)
    else:
        await messenger.send_notice(address, task.message)


async def answer(service: Service, messenger: Messenger, address: str,
                 given: Answer) -> Outcome:
    """Record an answer, show what happened to it, then show what comes next."""
    outcome = await service.submit(given)
    await messenger.show_outcome(address, outcome)
    if outcome.next is not None:
        await deliver(service, messenger, address, outcome.next)
    return outcome
