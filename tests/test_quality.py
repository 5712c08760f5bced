"""Quality reports over campaigns answered through the service: alpha against Krippendorff's own
published example, agreement, gold, fast answers, majorities and the model leaderboard."""

from __future__ import annotations

import random

import pytest

from core.domain.cards import Card
from core.domain.kinds import Choose, Label, Rank, Rate
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.reports.quality import campaign_quality, leaderboard
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.campaign_play import add_expert, draft_index, post_items, work

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the example with missing
# values: 4 observers, 12 units, values 1-5, None where an observer gave no value.
RELIABILITY = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


async def test_alpha_matches_krippendorffs_published_example(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    items = [{"id": f"u{n + 1:02d}", "prompt": f"Unit {n + 1}", "drafts": [{"text": "x"}]}
             for n in range(12)]
    campaign = await post_items(coordinator, items, kind="rate", overlap=4,
                                scale={"min": 1, "max": 5})
    for coder, values in RELIABILITY.items():
        await add_expert(coordinator, coder)

        def decide(card: Card, values: list[int | None] = values) -> Rate | None:
            value = values[int(card.item[1:]) - 1]
            return None if value is None else Rate(score=value)

        await work(service, clock, coder, decide)

    report = await campaign_quality(ledger, campaign)

    alphas = {a.distance: a.value for a in report.alpha}
    assert alphas == {"nominal": pytest.approx(0.743, abs=5e-4),
                      "ordinal": pytest.approx(0.815, abs=5e-4),
                      "interval": pytest.approx(0.849, abs=5e-4)}
    assert report.answers == 41 and report.skipped == 7
    assert {a.units for a in report.alpha} == {11}  # unit 12 has one value: nothing to pair
    by_unit = {c.unit: c for c in report.consensus}
    assert by_unit["u06"].tie and sorted(by_unit["u06"].tied) == [1, 2, 3, 4]
    assert by_unit["u02"].value == 2 and by_unit["u02"].votes == {"2": 3, "3": 1}


async def test_agreement_with_the_others_and_gold_accuracy(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    items = [{"id": f"q{n}", "prompt": f"Kind of {n}?", "drafts": []} for n in range(4)]
    items += [{"id": "gold", "prompt": "Surely a cat?", "drafts": [], "gold": "cat"}]
    campaign = await post_items(coordinator, items, kind="label", overlap=4,
                                labels=["cat", "dog"], gold_rate=1.0)
    for expert in ("ann", "bob", "cy", "dee"):
        await add_expert(coordinator, expert)
        contrary = expert == "cy"
        await work(service, clock, expert,
                   lambda card, c=contrary: Label(labels=["dog" if c else "cat"]))

    report = await campaign_quality(ledger, campaign)

    experts = {e.expert: e for e in report.experts}
    assert experts["ann"].agreement == 1.0 and experts["cy"].agreement == 0.0
    assert experts["ann"].gold_accuracy == 1.0 and experts["cy"].gold_accuracy == 0.0
    assert experts["cy"].gold_answers == 1
    assert report.alpha[0].distance == "nominal" and report.alpha[0].value is not None
    assert all(c.value == "cat" and not c.tie for c in report.consensus)


async def test_fast_answers_list_an_expert_with_three_of_their_last_ten(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    pair = [{"text": "One.", "model": "m1"}, {"text": "Two.", "model": "m2"}]
    items = [{"id": f"q{n}", "prompt": f"Q{n}?", "drafts": pair} for n in range(12)]
    campaign = await post_items(coordinator, items, kind="pairwise", overlap=3)
    for expert in ("ann", "bob"):
        await add_expert(coordinator, expert)
        await work(service, clock, expert, lambda card: Choose(choice="A"), seconds=60)
    await add_expert(coordinator, "rush")
    times = iter([60.0] * 8 + [3.0, 60.0, 4.0, 2.0])
    await work(service, clock, "rush", lambda card: Choose(choice="A"),
               seconds=lambda card: next(times))

    report = await campaign_quality(ledger, campaign)

    assert report.median_seconds == 60.0 and report.fast_below_seconds == 24.0
    experts = {e.expert: e for e in report.experts}
    assert experts["rush"].fast_answers == 3 and experts["rush"].listed_fast
    assert not experts["ann"].listed_fast and experts["ann"].fast_answers == 0


async def test_bradley_terry_ranks_the_clearly_better_model_first(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    models = [("strong", "v2"), ("middling", "v1"), ("weak", "")]
    rng = random.Random(3)
    items = []
    for n in range(30):
        shown = rng.sample(models, 3)
        items.append({"id": f"q{n}", "prompt": f"Q{n}?",
                      "drafts": [{"text": f"{m} says {n}", "model": m, "model_version": v}
                                 for m, v in shown]})
    campaign = await post_items(coordinator, items, kind="rank", overlap=2)

    def decide(card: Card) -> Rank:
        quality = {"strong": 3, "middling": 2, "weak": 1}
        noisy = sorted(card.drafts, key=lambda d: -quality[d.text.split()[0]] - rng.random() * 1.5)
        return Rank(order=[d.label for d in noisy])

    for expert in ("ann", "bob"):
        await add_expert(coordinator, expert)
        await work(service, clock, expert, decide)

    report = await campaign_quality(ledger, campaign, resamples=100)

    board = report.leaderboard
    assert [s.model for s in board][0] == "strong@v2" and board[-1].model == "weak"
    assert [s.rank for s in board] == [1, 2, 3]
    top = board[0]
    assert top.low is not None and top.high is not None and top.low <= top.score <= top.high
    assert top.matches == 60 * 2 // 1 and top.wins > top.losses
    assert report.alpha[0].distance == "ordinal" and report.alpha[0].value is not None


async def test_pairwise_leaderboard_counts_ties_as_draws(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    items = [{"id": f"q{n}", "prompt": f"Q{n}?",
              "drafts": [{"text": "good", "model": "good"}, {"text": "bad", "model": "bad"}]}
             for n in range(6)]
    campaign = await post_items(coordinator, items, kind="pairwise")
    await add_expert(coordinator, "ann")
    calls = iter(range(100))

    def decide(card: Card) -> Choose:
        if next(calls) == 0:
            return Choose(choice="tie")
        return Choose(choice=draft_index(card, "good"))  # type: ignore[arg-type]

    await work(service, clock, "ann", decide)

    report = await campaign_quality(ledger, campaign, resamples=0)

    assert [s.model for s in report.leaderboard] == ["good", "bad"]
    assert report.leaderboard[0].ties == 1 and report.leaderboard[0].wins == 5
    assert report.leaderboard[0].low is None  # no resamples asked for


def test_a_leaderboard_of_one_match_has_scores_but_no_intervals() -> None:
    """The first answer of a campaign: too little to resample, not an error."""
    board = leaderboard([("model-x", "model-y", 1)], resamples=50, seed=1)
    assert [s.model for s in board] == ["model-x", "model-y"]
    assert all(s.low is None and s.high is None for s in board)


def test_a_model_that_never_lost_still_leads_the_board_with_its_own_score() -> None:
    matches = [("best", "mid", 1)] * 20 + [("mid", "worst", 1)] * 18 + [("worst", "mid", 1)] * 2
    board = leaderboard(matches, resamples=50, seed=1)
    assert [s.model for s in board] == ["best", "mid", "worst"]
    assert board[0].score > board[1].score > board[2].score
    assert board[0].losses == 0 and board[0].low is not None and board[0].low > board[1].score
