"""Showing tasks on a channel, the same way for every channel: send the card, then tell the
core when and where it was delivered, so the expert's time starts when they could see it."""

from __future__ import annotations

import logging
from contextlib import suppress

from core.answers import Answer, Outcome
from core.cards import Card, NextTask
from core.errors import CardRefused
from core.ports import Messenger
from core.service import Service

log = logging.getLogger("expertloop.delivery")
REFUSED_NOTICE = ("A task could not be shown here, so it went back to the pool. "
                  "Ask for your next task to go on.")


async def deliver(service: Service, messenger: Messenger, address: str, task: NextTask) -> None:
    if isinstance(task, Card):
        try:
            landed = await messenger.send_card(address, task)
        except CardRefused as exc:
            await _refused(service, messenger, address, task, str(exc))
            return
        await service.delivered(task.lease, landed.at, messenger.channel, landed.message_id)
    else:
        await messenger.send_notice(address, task.message)


async def _refused(service: Service, messenger: Messenger, address: str, card: Card,
                   error: str) -> None:
    """A card the platform will never take: its slot goes back to the pool at once, so the
    expert is never left holding a task they cannot see, and they are told in a line."""
    log.error("%s refused the card of lease %s: %s", messenger.channel, card.lease, error)
    await service.give_back(card.lease, messenger.channel, error)
    await service.store.count_trouble(messenger.channel, "refused_cards", None)
    with suppress(Exception):  # the platform may refuse this too (a bot blocked by the user)
        await messenger.send_notice(address, REFUSED_NOTICE)


async def answer(service: Service, messenger: Messenger, address: str,
                 given: Answer) -> Outcome:
    """Record an answer, show what happened to it, then show what comes next."""
    outcome = await service.submit(given)
    await messenger.show_outcome(address, outcome)
    if outcome.next is not None:
        await deliver(service, messenger, address, outcome.next)
    return outcome
