"""Simulated experts for the demo and benchmarks: they take tasks through the same service a
real channel uses, think for a plausible, varied time, and answer each kind sensibly."""

from __future__ import annotations

import asyncio
import contextlib
import random

from core.domain.answers import Answer
from core.domain.cards import Card, Idle
from core.domain.items import prompt_text
from core.domain.kinds import (
    Choose,
    Correct,
    Decision,
    Flag,
    Label,
    NoneAcceptable,
    Rank,
    Rate,
    Skip,
    Verify,
    Write,
)
from core.service.service import Service


def decide(card: Card, rng: random.Random) -> Decision:
    """A plausible decision: mostly real answers, now and then a skip, a flag or a rejection."""
    roll = rng.random()
    if roll < 0.03:
        return Skip()
    if roll < 0.05:
        return Flag(reason=rng.choice(["unsure", "broken"]), note="simulated")
    if roll < 0.08 and card.drafts:
        return NoneAcceptable(note="simulated")
    return _answer(card, rng)


def _answer(card: Card, rng: random.Random) -> Decision:
    labels = [draft.label for draft in card.drafts]
    first = card.drafts[0].text if card.drafts else ""
    answers: dict[str, Decision] = {
        "pairwise": Choose(choice=rng.choices(["A", "B", "tie"], [0.55, 0.35, 0.1])[0]),
        "rank": Rank(order=rng.sample(labels, len(labels))),
        "rate": Rate(score=rng.randint(card.scale.min, card.scale.max) if card.scale else 3),
        "correct": Correct(text=first.replace(".", ";", 1) + "\n(checked)"),
        "verify": (Verify(verdict="accept") if rng.random() < 0.8 else
                   Verify(verdict="override", text=first + " (corrected)", reason="imprecise")),
        "label": Label(labels=[rng.choice(card.labels)]) if card.labels else Skip(),
        "write": Write(text=f"An expert answer to: {prompt_text(card.prompt)[:60]}"),
    }
    return answers[card.kind.value]


async def expert_loop(service: Service, expert_id: str, stop: asyncio.Event, *,
                      speed: float = 20.0, seed: int | None = None) -> int:
    """Work until stopped or out of tasks for a while; returns how many answers were recorded."""
    rng = random.Random(seed)
    recorded = 0
    while not stop.is_set():
        task = await service.next_task(expert_id)
        if isinstance(task, Idle):
            await _pause(stop, 2.0)
            continue
        await service.delivered(task.lease, channel="simulated")
        think = rng.lognormvariate(0, 0.5) * task.estimate.seconds / speed
        await _pause(stop, think * 0.2)
        await service.opened(task.lease, expert_id)
        await _pause(stop, think * 0.8)
        outcome = await service.submit(Answer(expert=expert_id, lease=task.lease,
                                              decision=decide(task, rng), channel="simulated"))
        recorded += outcome.status == "recorded" and not outcome.replayed
    return recorded


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.0))
