"""Cards as Block Kit. Slack refuses a text object over 3000 characters and a message over 50
blocks (https://api.slack.com/reference/block-kit/blocks), so long texts are split into several
sections and a card too big for one message continues in the next; nothing is ever cut."""

from __future__ import annotations

from typing import Any

from adapters.slack.asks import (
    ASK_MODALS,
    approve_controls,
    ask_header,
    ask_modal,
    ask_outcome_text,
    proposal_blocks,
)
from adapters.slack.kit import TEXT_LIMIT, Block, escape
from adapters.slack.kit import button as _button
from adapters.slack.kit import input_block as _input
from adapters.slack.kit import mrkdwn as _mrkdwn
from adapters.slack.kit import option as _option
from adapters.slack.kit import sections as _sections
from core.domain.answers import Outcome
from core.domain.asks import is_ask_token
from core.domain.cards import Card
from core.domain.experts import ExpertStats
from core.domain.hard_cases import RATIONALE_CHARS
from core.domain.items import Turn
from core.service.judging import describe

BLOCK_LIMIT = 50  # blocks in one message
ALT_LIMIT = 2000  # an image block's alt_text and title
FLAG_REASONS = (("unsure", "Unsure"), ("harmful", "Harmful"), ("broken", "Broken"))
RECORDED = {
    "pairwise": "your choice", "rank": "your ranking", "rate": "your rating",
    "correct": "your correction", "verify": "your verdict", "label": "your labels",
    "write": "your answer", "skip": "a skip", "none_acceptable": "none acceptable",
    "flag": "your flag",
}
MODALS = {  # the button that opens a modal -> (callback_id, title, submit label)
    "el_open_rank": ("el_rank", "Rank the drafts", "Save ranking"),
    "el_open_correct": ("el_correct", "Correct the draft", "Save correction"),
    "el_open_write": ("el_write", "Write the answer", "Save answer"),
    "el_open_override": ("el_override", "Override the draft", "Save override"),
    "el_open_reject": ("el_reject", "Reject the call", "Reject"),  # a live ask's (asks.py)
    "el_open_edit": ("el_edit", "Edit the call", "Save edit"),
}


def prompt_blocks(prompt: str | list[Turn], heading: str = "Prompt") -> list[Block]:
    """A plain prompt as one section; a conversation as one section per turn, headed by its
    role (a long turn takes several, split like any long text)."""
    if isinstance(prompt, str):
        return _sections(heading, prompt)
    head = {"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"*Conversation* ({len(prompt)} turns)"}]}
    return [head, *[block for turn in prompt
                    for block in _sections(turn.role.capitalize(), turn.content)]]


def estimate_line(card: Card) -> str:
    line = f"~{max(1, round(card.estimate.seconds / 60))} min"
    if card.estimate.pay is not None:
        line += f" · {card.estimate.pay:.2f} {card.estimate.currency or ''}".rstrip()
    return line + (" (estimate)" if card.estimate.pilot else "")


def render_card(card: Card, files: list[str] | None = None,
                now_ms: int | None = None) -> list[list[Block]]:
    """One or more messages; the last one carries the controls and is the card's message.
    `files`: the Slack file of each of the card's images, shown at the top; `now_ms`: when it
    is sent, for a live ask's time left."""
    title = ("Final call: " if card.adjudication else "") + card.title
    content = [_mrkdwn(f"*{escape(title)}*"), *_under_title(card, now_ms),
               *image_blocks(card, files or []), *_instructions(card),
               *prompt_blocks(card.prompt, "Question" if card.ask else "Prompt")]
    for draft in card.drafts:
        content += [{"type": "divider"}, *_sections(f"Draft {draft.label}", draft.text)]
    content += [*prior_blocks(card), *proposal_blocks(card)]
    controls = [*_why_note(card),
                {"type": "actions", "block_id": "answer",
                 "elements": _held(card, CONTROLS[card.kind](card))}]
    if card.ask is None:  # an ask wants a call: no skip, none acceptable or flag
        controls.append({"type": "actions", "block_id": "others",
                         "elements": _held(card, _others(card))})
    room = BLOCK_LIMIT - 1  # one for the "continued" note
    messages = []
    while len(content) + len(controls) > BLOCK_LIMIT:
        messages.append([*content[:room], _continued()])
        content = content[room:]
    messages.append([*content, *controls])
    return messages


def _under_title(card: Card, now_ms: int | None) -> list[Block]:
    """A live ask says who asks, by when and for what pay; a task, what it takes."""
    if card.ask is not None:
        return ask_header(card, now_ms)
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": estimate_line(card)}]}]


def _instructions(card: Card) -> list[Block]:
    return _sections("Instructions", card.instructions) \
        if card.instructions.strip() or card.ask is None else []


def image_blocks(card: Card, files: list[str]) -> list[Block]:
    """An image block per image, naming its uploaded file; Slack requires the alt text
    (https://docs.slack.dev/reference/block-kit/blocks/image-block), which shows as its title
    too, so the expert reads what the image is meant to be."""
    return [{"type": "image", "block_id": f"image_{n}", "slack_file": {"id": file_id},
             "alt_text": image.alt[:ALT_LIMIT],
             "title": {"type": "plain_text", "text": image.alt[:ALT_LIMIT]}}
            for n, (image, file_id) in enumerate(zip(card.images, files, strict=True))]


def prior_blocks(card: Card) -> list[Block]:
    """An adjudication: the earlier answers, unblinded (who said what, and why), above the
    controls; the expert's choice is the final call."""
    if not card.adjudication:
        return []
    blocks: list[Block] = [{"type": "divider"}, _mrkdwn(
        "*Final call.* The earlier answers:" if card.prior else
        "*Final call.* No earlier answers are on record.")]
    for prior in card.prior:
        blocks += _sections(prior.expert, prior.decision)
        if prior.rationale:
            blocks.append({"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"Why: {escape(prior.rationale)}"[:TEXT_LIMIT]}]})
    return blocks


WHY_LATER = "why_later"  # on an optional card: the answered card offers "Add a reason"
HELD = "el_open_why:"  # a press that opens the reason's modal, holding the choice
NEEDS_REASON = ("el_choose", "el_rate", "el_verify", "el_label", "el_labels", "el_none")


def _why_note(card: Card) -> list[Block]:
    if card.rationale == "none":
        return []
    required = card.rationale == "required"
    text = ("Your answer needs one line on why: a short form asks for it." if required else
            "You may add one line on why, after your answer or in its form.")
    return [{"type": "context", "block_id": "why_needed" if required else WHY_LATER,
             "elements": [{"type": "mrkdwn", "text": text}]}]


def _held(card: Card, elements: list[Block]) -> list[Block]:
    """A card whose answer needs a reason: each answering control opens a short modal that
    carries the choice and asks for it (Slack opens a modal only on a fresh trigger, so the
    press itself does it: https://docs.slack.dev/interactivity/handling-user-interaction)."""
    if card.rationale != "required":
        return elements
    return [{**e, "action_id": HELD + e["action_id"]}
            if e["action_id"].partition(":")[0] in NEEDS_REASON else e for e in elements]


def _continued() -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": "_continued below…_"}]}


def _pairwise(card: Card) -> list[Block]:
    return [_button("A is better", "el_choose:A", f"{card.lease}|A"),
            _button("B is better", "el_choose:B", f"{card.lease}|B"),
            _button("Tie", "el_choose:tie", f"{card.lease}|tie")]


def _rate(card: Card) -> list[Block]:
    """Buttons for a short scale, a menu for a long one (the campaign allows at most 100
    points, a static_select's most options)."""
    low, high = (card.scale.min, card.scale.max) if card.scale else (1, 5)
    if high - low < 10:
        return [_button(str(n), f"el_rate:{n}", f"{card.lease}|{n}") for n in range(low, high + 1)]
    options = [_option(str(n), f"{card.lease}|{n}") for n in range(low, high + 1)]
    return [{"type": "static_select", "action_id": "el_rate",
             "placeholder": {"type": "plain_text", "text": "Score"}, "options": options}]


def _verify(card: Card) -> list[Block]:
    return [_button("Accept", "el_verify", f"{card.lease}|accept", "primary"),
            _button("Override…", "el_open_override", card.lease)]


def _label(card: Card) -> list[Block]:
    if not card.multi and len(card.labels) <= 20:
        return [_button(label, f"el_label:{n}", f"{card.lease}|{label}")
                for n, label in enumerate(card.labels)]
    options = [_option(label, label) for label in card.labels]
    pick = "multi_static_select" if card.multi else "static_select"
    return [{"type": pick, "action_id": "el_labels_pick", "options": options,
             "placeholder": {"type": "plain_text", "text": "Choose labels"}},
            _button("Save labels", "el_labels", f"{card.lease}|labels", "primary")]


def _modal_button(text: str, action_id: str) -> Any:
    return lambda card: [_button(text, action_id, card.lease, "primary")]


CONTROLS = {
    "pairwise": _pairwise, "rate": _rate, "verify": _verify, "label": _label,
    "rank": _modal_button("Rank…", "el_open_rank"),
    "correct": _modal_button("Correct…", "el_open_correct"),
    "write": _modal_button("Write…", "el_open_write"),
    "approve": approve_controls,
}


def _others(card: Card) -> list[Block]:
    return [_button("Skip", "el_skip", f"{card.lease}|skip"),
            _button("None acceptable", "el_none", f"{card.lease}|none"),
            {"type": "overflow", "action_id": "el_flag",
             "options": [_option(f"Flag: {text}", f"{card.lease}|{reason}")
                         for reason, text in FLAG_REASONS]}]


def render_modal(card: Card, opener: str, metadata: str) -> Block:
    """The modal a button opens; editors start from the draft so the expert edits, not retypes."""
    if opener in ASK_MODALS:
        return ask_modal(card, opener, metadata)
    callback_id, title, submit = MODALS[opener]
    if opener == "el_open_rank":
        blocks = _rank_inputs(card)
    else:
        draft = card.drafts[0].text if card.drafts and opener != "el_open_write" else ""
        blocks = _text_inputs(draft)
        if opener == "el_open_override":  # its reason is the answer's line of why too
            blocks.append(_input("reason", "Why override?", {"type": "plain_text_input",
                                                             "action_id": "reason"}))
    if card.rationale != "none" and opener != "el_open_override":
        blocks.append(rationale_input(card.rationale == "required"))
    return {"type": "modal", "callback_id": callback_id, "private_metadata": metadata,
            "title": {"type": "plain_text", "text": title},
            "submit": {"type": "plain_text", "text": submit},
            "close": {"type": "plain_text", "text": "Cancel"}, "blocks": blocks}


def rationale_input(required: bool) -> Block:
    block = _input("rationale", "Why? One line" + ("" if required else " (optional)"),
                   {"type": "plain_text_input", "action_id": "rationale",
                    "max_length": RATIONALE_CHARS})
    return block if required else {**block, "optional": True}


def why_modal(decision: dict[str, object], metadata: str) -> Block:
    """After a press on a card whose answer needs a reason: the choice, held in the
    metadata (`<lease>|<channel>|<ts>|<decision JSON>`), and the reason asked for."""
    said = describe(decision, [], [])
    return {"type": "modal", "callback_id": "el_why", "private_metadata": metadata,
            "title": {"type": "plain_text", "text": "One line on why"},
            "submit": {"type": "plain_text", "text": "Save answer"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [_mrkdwn(f"*Your answer:* {escape(said)}"[:TEXT_LIMIT]),
                       rationale_input(True)]}


def reason_modal(metadata: str) -> Block:
    """"Add a reason" on an answered card: the optional line of why, after the answer."""
    return {"type": "modal", "callback_id": "el_reason", "private_metadata": metadata,
            "title": {"type": "plain_text", "text": "Add a reason"},
            "submit": {"type": "plain_text", "text": "Save reason"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [rationale_input(True)]}


def _text_inputs(draft: str) -> list[Block]:
    """An input holds at most 3000 characters, so a longer draft spans several, joined back
    exactly on submission."""
    pieces = [draft[i:i + TEXT_LIMIT] for i in range(0, len(draft), TEXT_LIMIT)] or [""]
    blocks = []
    for n, piece in enumerate(pieces):
        element: Block = {"type": "plain_text_input", "action_id": "text", "multiline": True,
                          "max_length": TEXT_LIMIT}
        if piece:
            element["initial_value"] = piece
        label = "Text" if len(pieces) == 1 else f"Text, part {n + 1} of {len(pieces)}"
        blocks.append(_input(f"text_{n}", label, element))
    return blocks


def _rank_inputs(card: Card) -> list[Block]:
    options = [_option(f"Draft {d.label}", d.label) for d in card.drafts]
    return [_input(f"place_{n}", f"Place {n + 1}" + (" (best)" if n == 0 else ""),
                   {"type": "static_select", "action_id": "draft", "options": options,
                    "placeholder": {"type": "plain_text", "text": "Choose a draft"}})
            for n in range(len(card.drafts))]


def outcome_text(outcome: Outcome, said: str = "") -> str:
    """`said`: a live ask's decision in words (core.domain.asks.decision_words), which the
    outcome does not hold."""
    if is_ask_token(outcome.lease):
        return ask_outcome_text(outcome, said)
    if outcome.status == "refused":
        return f"Not saved: {outcome.reason or 'try again'}"
    what = RECORDED.get(outcome.decision or "", "your answer")
    seconds = f" in {outcome.active_seconds:.0f} s" if outcome.active_seconds is not None else ""
    return f":white_check_mark: Saved {what}{seconds}."


def answered_card(shown: list[Block], outcome: Outcome, said: str = "") -> list[Block]:
    """The card as it was, without its controls, and what was recorded."""
    kept = [b for b in shown if b.get("type") not in ("actions", "input")][:BLOCK_LIMIT - 2]
    line = escape(outcome_text(outcome, said))[:TEXT_LIMIT]
    done = [*kept, {"type": "context", "elements": [{"type": "mrkdwn", "text": line}]}]
    if outcome.status == "recorded" and outcome.decision not in ("skip", "flag") and any(
            b.get("block_id") == WHY_LATER for b in kept):
        done.append({"type": "actions", "block_id": "reason", "elements": [
            _button("Add a reason", "el_open_reason", outcome.lease)]})
    return done


def home_view(stats: ExpertStats | None) -> Block:
    """The App Home tab: the expert's figures and a Start or Pause button."""
    if stats is None:
        blocks = [_mrkdwn("*expertloop*\nYour Slack account is not linked to an expert yet. "
                          "Ask your coordinator, or run `/expertloop join <token>`.")]
        return {"type": "home", "blocks": blocks}
    return {"type": "home", "blocks": [
        _mrkdwn("*expertloop*: " + ("paused" if stats.paused else "taking tasks")),
        _mrkdwn(stats_text(stats)),
        {"type": "actions", "block_id": "home", "elements": [
            _button("Start", "el_home_start", "start", "primary") if stats.paused else
            _button("Pause", "el_home_pause", "pause")]},
    ]}


def stats_text(stats: ExpertStats) -> str:
    return "\n".join(f"*{label}:* {escape(value)}" for label, value in stats.lines())
