"""Campaigns of every kind answered by simulated experts through the service, over a few hours
of the test clock: what the dashboard tests look at."""

from __future__ import annotations

import random
from typing import Any

from bots.simulate import decide
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.campaign_play import post_items, work

MODELS = [("gpt-x", "2026-09"), ("llama-y", "70b"), ("mistral-z", "")]
DRAFTS = {"pairwise": 2, "rank": 3, "rate": 1, "correct": 1, "verify": 1, "label": 1,
          "write": 0}
OPTIONS: dict[str, dict[str, Any]] = {"rate": {"scale": {"min": 1, "max": 5}},
                                      "label": {"labels": ["accurate", "unsafe", "vague"]}}
EXPERTS = ("eve", "ana", "ben", "cho", "dev")  # eve, the hasty one, goes first


def items(kind: str, count: int, rng: random.Random) -> list[dict[str, Any]]:
    found = []
    for n in range(count):
        models = rng.sample(MODELS, DRAFTS[kind]) if DRAFTS[kind] > 1 else MODELS[:DRAFTS[kind]]
        drafts = [{"text": f"Draft by {m} for {n}.", "model": m, "model_version": v}
                  for m, v in models]
        found.append({"id": f"q{n}", "prompt": f"Question {n}?", "drafts": drafts})
    if kind == "pairwise":
        found.append({"id": "gold", "prompt": "Known?", "drafts": [
            {"text": "Right.", "model": "gpt-x"}, {"text": "Wrong.", "model": "llama-y"}],
            "gold": 0})
    return found


async def seed(coordinator: Coordinator, service: Service, clock: SetClock,
               kinds: tuple[str, ...] = tuple(DRAFTS), count: int = 8, overlap: int = 3,
               seed: int = 7) -> None:
    """Post one campaign per kind (id = kind) and let the experts answer all of them, one
    expert working for a stretch of time after another, with one hasty expert."""
    rng = random.Random(seed)
    for kind in kinds:
        await post_items(coordinator, items(kind, count, rng), id=kind,
                         title=f"{kind.title()} check", kind=kind, overlap=overlap,
                         pay={"per_task": 0.5, "currency": "USD", "min_hourly": 30},
                         time_limit_s=600, **OPTIONS.get(kind, {}))
    for name in EXPERTS:
        await coordinator.add_expert(Expert(id=name, name=name.title()))

    def seconds(card: Card) -> float:
        return rng.uniform(1, 3) if expert == "eve" else rng.lognormvariate(3.3, 0.5)

    share = -(-(count + 1) * overlap * len(kinds) // len(EXPERTS))  # everyone takes a turn
    for expert in EXPERTS:
        await work(service, clock, expert, lambda card: decide(card, rng), seconds, share)
        clock.advance(1800)
