"""Answer checks for the seven task kinds, and what a decision means in the file's draft order."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from core.domain.items import Draft, Item
from core.domain.kinds import (
    Choose,
    Correct,
    Decision,
    Flag,
    Kind,
    KindOptions,
    Label,
    NoneAcceptable,
    Rank,
    Rate,
    Scale,
    Skip,
    Verify,
    Write,
    check_decision,
)
from core.domain.resolve import resolve
from core.errors import InvalidAnswer

DECISION = TypeAdapter(Decision)
PAIRWISE = KindOptions(kind=Kind.pairwise)
RANK = KindOptions(kind=Kind.rank)
LABELS = ("safe", "unsafe", "off-topic")
ONE_LABEL = KindOptions(kind=Kind.label, labels=LABELS)
MANY_LABELS = KindOptions(kind=Kind.label, labels=LABELS, multi=True)


def refused(options: KindOptions, n_drafts: int, decision: Decision) -> str:
    with pytest.raises(InvalidAnswer) as caught:
        check_decision(options, n_drafts, decision)
    return str(caught.value)


@pytest.mark.parametrize("choice", ["A", "B", "tie"])
def test_pairwise_accepts_a_b_or_tie(choice: str) -> None:
    check_decision(PAIRWISE, 2, Choose(choice=choice))


def test_pairwise_refuses_any_other_choice() -> None:
    with pytest.raises(ValidationError):
        DECISION.validate_python({"type": "pairwise", "choice": "C"})


@pytest.mark.parametrize("order", [["C", "A", "B"], ["A", "B", "C"]])
def test_rank_accepts_a_full_order(order: list[str]) -> None:
    check_decision(RANK, 3, Rank(order=order))


@pytest.mark.parametrize("order", [["A", "B"], ["A", "A", "B"], ["A", "B", "D"],
                                   ["A", "B", "C", "C"], []])
def test_rank_refuses_missing_duplicate_or_unknown_labels(order: list[str]) -> None:
    assert "A, B, C" in refused(RANK, 3, Rank(order=order))


@pytest.mark.parametrize("score", [1, 3, 5])
def test_rate_defaults_to_a_one_to_five_scale(score: int) -> None:
    check_decision(KindOptions(kind=Kind.rate), 1, Rate(score=score))


@pytest.mark.parametrize("score", [0, 6, -1])
def test_rate_refuses_off_the_default_scale(score: int) -> None:
    assert "between 1 and 5" in refused(KindOptions(kind=Kind.rate), 1, Rate(score=score))


def test_rate_uses_the_campaign_scale() -> None:
    options = KindOptions(kind=Kind.rate, scale=Scale(min=0, max=10))
    check_decision(options, 1, Rate(score=0))
    check_decision(options, 1, Rate(score=10))
    assert "between 0 and 10" in refused(options, 1, Rate(score=11))


def test_rate_refuses_a_fractional_score() -> None:
    with pytest.raises(ValidationError):
        DECISION.validate_python({"type": "rate", "score": 3.5})


def test_correct_needs_text() -> None:
    options = KindOptions(kind=Kind.correct)
    check_decision(options, 1, Correct(text="Take it with food."))
    assert "empty" in refused(options, 1, Correct(text=""))
    assert "empty" in refused(options, 1, Correct(text="  \n\t"))


def test_verify_accepts_a_plain_accept() -> None:
    check_decision(KindOptions(kind=Kind.verify), 1, Verify(verdict="accept"))


def test_verify_override_needs_text_and_reason() -> None:
    options = KindOptions(kind=Kind.verify)
    check_decision(options, 1, Verify(verdict="override", text="No.", reason="Bleeding risk."))
    assert "replacement text" in refused(options, 1, Verify(verdict="override", reason="Wrong"))
    assert "replacement text" in refused(
        options, 1, Verify(verdict="override", text=" ", reason="Wrong"))
    assert "reason" in refused(options, 1, Verify(verdict="override", text="No."))
    assert "reason" in refused(options, 1, Verify(verdict="override", text="No.", reason=""))


def test_label_accepts_one_of_the_campaign_labels() -> None:
    check_decision(ONE_LABEL, 1, Label(labels=["unsafe"]))


def test_label_refuses_an_unknown_label() -> None:
    assert "not a label of this campaign: rude" in refused(ONE_LABEL, 1, Label(labels=["rude"]))
    assert "rude" in refused(MANY_LABELS, 1, Label(labels=["safe", "rude"]))


def test_label_refuses_none_chosen() -> None:
    assert "at least one" in refused(MANY_LABELS, 1, Label(labels=[]))


def test_label_allows_several_only_when_multi() -> None:
    assert "exactly one" in refused(ONE_LABEL, 1, Label(labels=["safe", "off-topic"]))
    check_decision(MANY_LABELS, 1, Label(labels=["safe", "off-topic"]))


def test_label_refuses_the_same_label_twice() -> None:
    assert "twice" in refused(MANY_LABELS, 1, Label(labels=["safe", "safe"]))


def test_write_needs_text() -> None:
    options = KindOptions(kind=Kind.write)
    check_decision(options, 0, Write(text="Ask your doctor first."))
    assert "empty" in refused(options, 0, Write(text="   "))


ALL_OPTIONS = [KindOptions(kind=kind, labels=LABELS if kind == Kind.label else ())
               for kind in Kind]


@pytest.mark.parametrize("options", ALL_OPTIONS, ids=[kind.value for kind in Kind])
@pytest.mark.parametrize("decision", [
    Skip(), NoneAcceptable(), NoneAcceptable(note="all wrong"), Flag(reason="harmful"),
    Flag(reason="unsure", note="not my field"), Flag(reason="broken"),
], ids=["skip", "none", "none-note", "harmful", "unsure-note", "broken"])
def test_every_kind_accepts_skip_none_acceptable_and_flag(options: KindOptions,
                                                          decision: Decision) -> None:
    check_decision(options, 2, decision)


def test_an_unknown_flag_reason_does_not_parse() -> None:
    assert DECISION.validate_python({"type": "flag", "reason": "unsure"}) == Flag(reason="unsure")
    with pytest.raises(ValidationError):
        DECISION.validate_python({"type": "flag", "reason": "boring"})


@pytest.mark.parametrize(("options", "decision"), [
    (PAIRWISE, Rate(score=3)),
    (RANK, Choose(choice="A")),
    (KindOptions(kind=Kind.rate), Write(text="5")),
    (KindOptions(kind=Kind.correct), Verify(verdict="accept")),
    (KindOptions(kind=Kind.verify), Correct(text="fixed")),
    (ONE_LABEL, Rank(order=["A"])),
    (KindOptions(kind=Kind.write), Label(labels=["safe"])),
])
def test_a_decision_of_the_wrong_kind_is_refused(options: KindOptions, decision: Decision) -> None:
    assert f"this is a {options.kind} task" in refused(options, 2, decision)


def item(*texts: str) -> Item:
    return Item(id="q1", prompt="Q?", drafts=[Draft(text=text) for text in texts])


def test_resolve_maps_pairwise_labels_through_the_shuffle() -> None:
    """Draft 1 of the file was shown first (A), so choosing A means draft 1 won."""
    shown_swapped = [1, 0]
    assert resolve(Choose(choice="A"), shown_swapped, item("x", "y")) == {
        "winner": 1, "loser": 0, "tie": False}
    assert resolve(Choose(choice="B"), shown_swapped, item("x", "y")) == {
        "winner": 0, "loser": 1, "tie": False}
    assert resolve(Choose(choice="tie"), shown_swapped, item("x", "y"))["tie"] is True


def test_resolve_maps_a_ranking_to_file_indices() -> None:
    ranking = resolve(Rank(order=["B", "C", "A"]), [2, 0, 1], item("x", "y", "z"))
    assert ranking == {"ranking": [0, 1, 2]}


def test_resolve_gives_a_correction_as_a_diff_against_the_draft() -> None:
    draft = "Take two tablets.\nDrink water.\n"
    result = resolve(Correct(text="Take one tablet.\nDrink water.\n"), [0], item(draft))
    assert result["draft"] == 0
    assert "-Take two tablets.\n" in result["diff"]
    assert "+Take one tablet.\n" in result["diff"]
    assert " Drink water.\n" in result["diff"]


def test_resolve_gives_an_override_as_a_diff_and_an_accept_as_none() -> None:
    draft = item("Yes, at low doses.")
    override = resolve(Verify(verdict="override", text="No.", reason="bleeding"), [0], draft)
    assert override["accepted"] is False
    assert "-Yes, at low doses.\n" in override["diff"] and "+No.\n" in override["diff"]
    assert resolve(Verify(verdict="accept"), [0], draft) == {"draft": 0, "accepted": True}


def test_resolve_gives_an_empty_diff_for_unchanged_text() -> None:
    draft = "Generally no.\nAsk your doctor.\n"
    assert resolve(Correct(text=draft), [0], item(draft))["diff"] == ""
    unchanged = Verify(verdict="override", text=draft, reason="re-read")
    assert resolve(unchanged, [0], item(draft))["diff"] == ""
