"""Every card and modal the Slack adapter renders is one Slack accepts: random cards of every
kind, up to the limits a campaign allows, through the same Block Kit checks the emulator runs
(tests/emulators/block_kit.py: slack_sdk's models plus the documented rules they leave out)."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import MODALS, answered_card, home_view, render_card, render_modal
from core.domain.answers import Outcome
from core.domain.campaigns import LABEL_CHARS, MOST_LABELS, MOST_SCALE_POINTS
from core.domain.cards import AskInfo, Card, CardDraft, Estimate
from core.domain.experts import ExpertStats
from core.domain.kinds import DRAFTS_PER_KIND, Kind, Scale
from tests.emulators.block_kit import refusals_of_message, refusals_of_view
from tests.emulators.slack import BOT_TOKEN, SlackEmulator

OPENERS = {Kind.rank: ["el_open_rank"], Kind.correct: ["el_open_correct"],
           Kind.write: ["el_open_write"], Kind.verify: ["el_open_override"],
           Kind.approve: ["el_open_reject", "el_open_edit"]}
PIECES = ["&", "<", ">", "&amp;", "\n", "\n\n", " ", "*", "_", "`", "|", "é", "😀", "word",
          "a longer run of words ", "x" * 60]


def texts(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Texts with Slack's escapes, newlines and wide characters, reaching `max_size` without
    drawing every character (a short run, repeated)."""
    run = st.lists(st.sampled_from(PIECES), min_size=1, max_size=8).map("".join)
    return st.builds(lambda part, times: (part * times)[:max_size], run,
                     st.integers(1, max_size)).filter(lambda t: len(t) >= min_size)


def labels() -> st.SearchStrategy[list[str]]:
    label = st.text(string.ascii_letters + string.digits + " &<>|-'é", min_size=1,
                    max_size=LABEL_CHARS).filter(str.strip)
    return st.lists(label, min_size=1, max_size=MOST_LABELS, unique=True)


@st.composite
def cards(draw: st.DrawFn) -> Card:
    kind = draw(st.sampled_from(list(Kind)))
    low, high = DRAFTS_PER_KIND[kind]
    drafts = [CardDraft(label=string.ascii_uppercase[n], text=draw(texts(0, 12_000)))
              for n in range(draw(st.integers(low, high)))]
    options: dict[str, Any] = {}
    if kind == Kind.rate:
        start = draw(st.integers(-50, 50))
        points = draw(st.integers(2, MOST_SCALE_POINTS))
        options["scale"] = Scale(min=start, max=start + points - 1)
    if kind == Kind.label:
        options.update(labels=draw(labels()), multi=draw(st.booleans()))
    if kind == Kind.approve:  # a live ask's call, with arguments of any shape and size
        args = draw(st.dictionaries(texts(1, 300), st.none() | st.integers() | texts(0, 4000),
                                    max_size=120))
        options["ask"] = AskInfo(ask="ask_1", asker=draw(texts(1, 80)), deadline_at=10**12,
                                 pay=draw(st.none() | st.floats(0, 1000)), currency="EUR",
                                 function=draw(texts(1, 200)), args=args)
    return Card(lease="7.kq3vx9p2mzt4bw8rh", campaign="c1", title=draw(texts(1, 200)),
                instructions=draw(texts(0, 8_000)), kind=kind, item="q1",
                prompt=draw(texts(1, 12_000)), drafts=drafts, allowed=[kind.value],
                expires_at=0, resumed=draw(st.booleans()),
                estimate=Estimate(seconds=draw(st.integers(1, 100_000)),
                                  pay=draw(st.none() | st.floats(0, 10_000)), currency="EUR",
                                  pilot=draw(st.booleans())), **options)


OUTCOMES = [Outcome(status="recorded", lease="7.kq3vx9p2mzt4bw8rh", decision=decision,
                    active_seconds=42.0)
            for decision in ("pairwise", "rank", "label", "skip", "flag", None)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(card=cards(), outcome=st.sampled_from(OUTCOMES))
def test_every_card_and_modal_is_one_slack_accepts(card: Card, outcome: Outcome) -> None:
    messages = render_card(card)

    for n, blocks in enumerate(messages):
        assert refusals_of_message(blocks) == [], f"message {n + 1} of {len(messages)}"
    assert refusals_of_message(answered_card(messages[-1], outcome)) == []
    for opener in OPENERS.get(card.kind, []):
        view = render_modal(card, opener, f"{card.lease}|DUANN|1800000001.000100")
        assert refusals_of_view(view) == [], opener


def test_every_kind_has_its_controls_and_the_openers_cover_every_modal() -> None:
    """The property above reaches each modal: every opener a card can show is in OPENERS."""
    assert sorted(o for openers in OPENERS.values() for o in openers) == sorted(MODALS)
    assert set(OPENERS) | {Kind.pairwise, Kind.rate, Kind.label} == set(Kind)


@pytest.mark.parametrize("stats", [None, ExpertStats(), ExpertStats(paused=True, answers=3)])
def test_the_app_home_is_one_slack_accepts(stats: ExpertStats | None) -> None:
    assert refusals_of_view(home_view(stats)) == []


def old_pairwise_controls() -> list[dict[str, Any]]:
    """The pairwise controls as cards carried them before: one action_id for three buttons."""
    buttons = [{"type": "button", "text": {"type": "plain_text", "text": text},
                "action_id": "el_choose", "value": f"1.abc|{choice}"}
               for text, choice in (("A is better", "A"), ("B is better", "B"), ("Tie", "tie"))]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": "*Which is better?*"}},
            {"type": "actions", "block_id": "answer", "elements": buttons}]


async def test_the_emulator_refuses_a_duplicate_action_id_as_slack_does(
        slack: SlackEmulator) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.url)

    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="DUANN", text="t", blocks=old_pairwise_controls())

    assert refused.value.response.status_code == 200
    assert refused.value.response["error"] == "invalid_blocks"
    assert refused.value.response["errors"] == [
        "duplicate action_id [json-pointer:/blocks/1/elements/1/action_id]",
        "duplicate action_id [json-pointer:/blocks/1/elements/2/action_id]"]
    assert slack.dm("UANN") == []


@pytest.mark.parametrize(("blocks", "pointer"), [
    ([{"type": "section", "block_id": "x", "text": {"type": "mrkdwn", "text": "a"}},
      {"type": "divider", "block_id": "x"}], "/blocks/1/block_id"),
    ([{"type": "divider"}] * 51, "/blocks"),
    ([{"type": "carousel_of_dreams"}], "/blocks/0/type"),
    ([{"type": "section", "text": {"type": "mrkdwn", "text": ""}}], "/blocks/0/text/text"),
    ([{"type": "actions", "elements": [
        {"type": "button", "action_id": "b", "value": "v",
         "text": {"type": "plain_text", "text": "x" * 76}}]}], "/blocks/0/elements/0"),
    ([{"type": "actions", "elements": [
        {"type": "overflow", "action_id": "o", "options": [
            {"text": {"type": "plain_text", "text": str(n)}, "value": str(n)}
            for n in range(6)]}]}], "/blocks/0/elements/0"),
    ([{"type": "actions", "elements": [
        {"type": "static_select", "action_id": "s", "options": [
            {"text": {"type": "plain_text", "text": str(n)}, "value": str(n)}
            for n in range(101)]}]}], "/blocks/0/elements/0"),
])
def test_a_message_slack_refuses_is_refused_at_the_field_at_fault(
        blocks: list[dict[str, Any]], pointer: str) -> None:
    assert any(error.endswith(f"[json-pointer:{pointer}]")
               for error in refusals_of_message(blocks)), refusals_of_message(blocks)


def test_a_view_slack_refuses_is_refused() -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "a"}}
    too_many = {"type": "modal", "title": {"type": "plain_text", "text": "t"},
                "blocks": [section] * 101}
    long_title = {"type": "modal", "title": {"type": "plain_text", "text": "x" * 25},
                  "blocks": [section]}

    assert "no more than 100 items allowed [json-pointer:/view/blocks]" in refusals_of_view(
        too_many)
    assert refusals_of_view(long_title) == [
        "title must be between 1 and 24 characters [json-pointer:/view]"]
