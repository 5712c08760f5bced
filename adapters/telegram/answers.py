"""From Telegram updates to core Answers. Pure: no I/O, no service calls.

A button's `callback_data` is `<action>|<lease>|<arg>` (Telegram allows 64 bytes:
https://core.telegram.org/bots/api#inlinekeyboardbutton); a reply answers the ForceReply prompt
whose last line is `ref: <stage> <lease> <card message id>`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from telegram import CallbackQuery, Message

from adapters.telegram.ask_cards import BadArguments, args_from_reply
from core.domain.answers import Answer
from core.domain.hard_cases import RATIONALE_CHARS
from core.domain.kinds import (
    Approve,
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

FLAGS = {"h": "harmful", "u": "unsure", "b": "broken"}
REF = re.compile(r"^ref: (correct|write|reason|override|why|more|reject|edit) (\S{3,40}) (\d+)$",
                 re.MULTILINE)
TAP = re.compile(r"^tap: ([a-zA-Z])\|(\S{1,40})$", re.MULTILINE)  # the choice a `why` prompt holds
REASON_MARK = "Reason given:\n"


class InvalidTap(ValueError):
    """The button or reply does not make a decision (forged, or from an older bot)."""


class Tap(NamedTuple):
    action: str
    lease: str
    arg: str


class Prompt(NamedTuple):
    """The ForceReply prompt a reply answers: what it asks for, for which task and card."""

    stage: str
    lease: str
    card_message: int
    reason: str | None
    tap: Tap | None = None  # `why`: the tapped choice, recorded once its reason arrives


def tap_from_data(data: str | None) -> Tap:
    parts = (data or "").split("|")
    if len(parts) != 3 or not parts[1]:
        raise InvalidTap("not one of our buttons")
    return Tap(*parts)


def answer_from_callback_query(query: CallbackQuery, tap: Tap, expert_id: str,
                               labels: Sequence[str] = (), acted_at: int | None = None) -> Answer:
    """A final tap (`tap`: its data, parsed once by the listener); the callback query id
    de-duplicates platform retries."""
    return Answer(expert=expert_id, lease=tap.lease, decision=_decision(tap, labels),
                  channel="telegram", event_id=f"tg:cb:{query.id}", acted_at=acted_at)


def _decision(tap: Tap, labels: Sequence[str]) -> Decision:
    action, arg = tap.action, tap.arg
    try:
        if action == "p" and arg in ("A", "B", "tie"):
            return Choose(choice=arg)
        if action == "r":
            return Rate(score=int(arg))
        if action == "v" and arg == "ok":
            return Verify(verdict="accept")
        if action == "l":
            return Label(labels=[labels[int(i, 36)] for i in arg])
        if action == "K":
            return Rank(order=list(arg))
        if action == "F" and arg in FLAGS:
            return Flag(reason=FLAGS[arg])
        if action == "a" and arg == "ok":  # a live ask's Approve; Reject and Edit are replies
            return Approve(verdict="approved")
    except (ValueError, IndexError) as exc:
        raise InvalidTap("not one of our buttons") from exc
    simple: dict[str, Decision] = {"s": Skip(), "n": NoneAcceptable()}
    if action in simple:
        return simple[action]
    raise InvalidTap("not one of our buttons")


def prompt_from_reply(message: Message, bot_id: int) -> Prompt:
    """The prompt this message replies to; only the bot's own prompts count."""
    prompt = message.reply_to_message
    if prompt is None or prompt.from_user is None or prompt.from_user.id != bot_id:
        raise InvalidTap("reply to one of my prompts")
    found = REF.search(prompt.text or "")
    if found is None:
        raise InvalidTap("that message does not ask for an answer")
    head, _, reason = (prompt.text or "").partition(REASON_MARK)
    tapped = TAP.search(head)
    tap = Tap(tapped[1], found[2], tapped[2]) if tapped else None
    return Prompt(found[1], found[2], int(found[3]), reason or None, tap)


def answer_from_reply(message: Message, prompt: Prompt, expert_id: str,
                      acted_at: int | None = None) -> Answer:
    """The expert's reply (to `prompt`, parsed once by the listener) is the full text: a
    correction, an answer, or an override."""
    text = message.text or ""
    decisions: dict[str, Decision] = {
        "correct": Correct(text=text), "write": Write(text=text),
        "override": Verify(verdict="override", text=text, reason=prompt.reason or ""),
    }
    if prompt.stage not in decisions:
        raise InvalidTap("that prompt asks for a reason, not an answer")
    return Answer(expert=expert_id, lease=prompt.lease, decision=decisions[prompt.stage],
                  channel="telegram", event_id=f"tg:msg:{message.chat_id}:{message.message_id}",
                  acted_at=acted_at, rationale=_one_line(prompt.reason))


def answer_from_ask_reply(message: Message, prompt: Prompt, expert_id: str,
                          acted_at: int | None = None) -> Answer:
    """The reply to a live ask's Reject prompt (the reason, required) or Edit prompt (the
    arguments, one JSON object; anything else is refused with JSON's own words)."""
    text = message.text or ""
    if prompt.stage == "reject":
        reason = " ".join(text.split())
        if not reason:
            raise InvalidTap("a rejection needs its reason")
        decision = Approve(verdict="rejected", comment=reason)
    elif prompt.stage == "edit":
        try:
            decision = Approve(verdict="edited", args=args_from_reply(text))
        except BadArguments as exc:
            raise InvalidTap(str(exc)) from exc
    else:
        raise InvalidTap("that prompt does not answer an ask")
    return Answer(expert=expert_id, lease=prompt.lease, decision=decision, channel="telegram",
                  event_id=f"tg:msg:{message.chat_id}:{message.message_id}", acted_at=acted_at)


def answer_from_why(message: Message, prompt: Prompt, expert_id: str,
                    labels: Sequence[str] = (), acted_at: int | None = None) -> Answer:
    """The reply to a `why` prompt: the choice its tap held, recorded with this line of why."""
    if prompt.tap is None:
        raise InvalidTap("that message does not hold an answer")
    return Answer(expert=expert_id, lease=prompt.lease, decision=_decision(prompt.tap, labels),
                  channel="telegram", event_id=f"tg:msg:{message.chat_id}:{message.message_id}",
                  acted_at=acted_at, rationale=_one_line(message.text))


def _one_line(text: str | None) -> str | None:
    return " ".join((text or "").split())[:RATIONALE_CHARS] or None
