"""A Card as Telegram shows it: HTML text in parts of at most 4096 characters, and an inline
keyboard whose buttons carry `<action>|<lease>|<arg>` (at most 64 bytes, never state)."""

from __future__ import annotations

from html import escape
from typing import NamedTuple

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from adapters.telegram.ask_cards import header_html, proposal_text
from core.domain.asks import decision_words as said
from core.domain.cards import Card
from core.domain.items import Turn, draft_label
from core.domain.kinds import Decision, KindOptions, Scale

TEXT_LIMIT = 4096  # https://core.telegram.org/bots/api#sendmessage, after entity parsing
DATA_LIMIT = 64  # bytes of callback_data
NEXT = "next|-|-"
Rows = list[list[InlineKeyboardButton]]


class Controls(NamedTuple):
    """What a keyboard needs; rebuilt from the campaign's options and the draft count on a tap."""

    lease: str
    options: KindOptions
    n_drafts: int
    why_first: bool = False  # a text answer that needs a reason: the bot asks for it first
    ask: bool = False  # a live ask wants a call: no Skip, None acceptable or Flag


def controls_from_card(card: Card) -> Controls:
    options = KindOptions(kind=card.kind, scale=card.scale, labels=tuple(card.labels),
                          multi=card.multi)
    return Controls(card.lease, options, len(card.drafts), card.rationale == "required",
                    card.ask is not None)


def data(action: str, lease: str, arg: str = "-") -> str:
    value = f"{action}|{lease}|{arg}"
    if len(value.encode()) > DATA_LIMIT:
        raise ValueError(f"callback_data over {DATA_LIMIT} bytes: {value!r}")
    return value


def _button(text: str, action: str, lease: str, arg: str = "-") -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=data(action, lease, arg))


def card_keyboard(c: Controls, rank: str = "", chosen: str = "") -> InlineKeyboardMarkup:
    """The kind's own buttons, then Skip, None acceptable and Flag on every card."""
    rows = KIND_ROWS[c.options.kind.value](c, rank, chosen)
    n = _base36(c.n_drafts)
    if not c.ask:
        rows.append([_button("Skip", "s", c.lease), _button("None acceptable", "n", c.lease),
                     _button("Flag…", "f", c.lease, n)])
    return InlineKeyboardMarkup(rows)


def flag_keyboard(c: Controls) -> InlineKeyboardMarkup:
    reasons = [_button(text, "F", c.lease, code) for code, text in
               (("h", "Harmful"), ("u", "Unsure"), ("b", "Broken"))]
    return InlineKeyboardMarkup([reasons, [_button("« Back", "x", c.lease,
                                                   _base36(c.n_drafts))]])


def next_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Next task", callback_data=NEXT)]])


def _pairwise(c: Controls, rank: str, chosen: str) -> Rows:
    return [[_button("A is better", "p", c.lease, "A"), _button("B is better", "p", c.lease, "B"),
             _button("Tie", "p", c.lease, "tie")]]


def _rank(c: Controls, rank: str, chosen: str) -> Rows:
    """The order so far rides in each button, so a tap needs no stored state."""
    n = _base36(c.n_drafts)
    left = [draft_label(i) for i in range(c.n_drafts) if draft_label(i) not in rank]
    rows = [[_button(label, "k", c.lease, n + rank + label) for label in left[i:i + 6]]
            for i in range(0, len(left), 6)]
    shown = " > ".join(rank) or "tap the best draft first"
    rows.append([InlineKeyboardButton(f"Order: {shown}", callback_data=data("k", c.lease,
                                                                             n + rank))])
    controls = [_button("Undo", "k", c.lease, n + rank[:-1])] if rank else []
    if not left:
        controls.append(_button("Confirm", "K", c.lease, rank))
    return [*rows, controls] if controls else rows


def _rate(c: Controls, rank: str, chosen: str) -> Rows:
    scale = c.options.scale or Scale()
    scores = [_button(str(s), "r", c.lease, str(s)) for s in range(scale.min, scale.max + 1)]
    return [scores[i:i + 6] for i in range(0, len(scores), 6)]


def _correct(c: Controls, rank: str, chosen: str) -> Rows:
    return [[_button("✏️ Correct draft A (reply with text)", "e", c.lease, _why(c))]]


def _verify(c: Controls, rank: str, chosen: str) -> Rows:
    return [[_button("Accept", "v", c.lease, "ok"), _button("Override…", "o", c.lease)]]


def _label(c: Controls, rank: str, chosen: str) -> Rows:
    labels = c.options.labels
    if not c.options.multi:
        return [[_button(label, "l", c.lease, _base36(i))] for i, label in enumerate(labels)]
    rows = []
    for i, label in enumerate(labels):
        code = _base36(i)
        on = code in chosen
        toggled = chosen.replace(code, "") if on else "".join(sorted(chosen + code))
        rows.append([_button(("☑ " if on else "☐ ") + label, "m", c.lease, toggled or "-")])
    if chosen:
        rows.append([_button("Save labels", "l", c.lease, chosen)])
    return rows


def _write(c: Controls, rank: str, chosen: str) -> Rows:
    return [[_button("✍️ Write the answer (reply with text)", "w", c.lease, _why(c))]]


def _why(c: Controls) -> str:
    """A text reply cannot wait in a prompt for its reason, so the reason is asked first."""
    return "why" if c.why_first else "-"


def _approve(c: Controls, rank: str, chosen: str) -> Rows:
    """A live ask's call: Approve at one tap; Reject and Edit ask for a reply (the reason, the
    arguments as JSON)."""
    return [[_button("✅ Approve", "a", c.lease, "ok")],
            [_button("Reject…", "j", c.lease), _button("Edit…", "d", c.lease)]]


KIND_ROWS = {"pairwise": _pairwise, "rank": _rank, "rate": _rate, "correct": _correct,
             "verify": _verify, "label": _label, "write": _write, "approve": _approve}


def card_parts(card: Card, limit: int = TEXT_LIMIT, now_ms: int | None = None) -> list[str]:
    """The card as HTML messages, each within `limit`; a long draft is split, never cut.
    `now_ms`: when it is sent, for a live ask's time left."""
    title = ("Final call: " if card.adjudication else "") + card.title
    pieces = [f"<b>{escape(title)}</b>\n{_under_title(card, now_ms)}"]
    if card.instructions.strip() or card.ask is None:
        pieces.append(f"<i>{escape(card.instructions.strip())}</i>")
    pieces += prompt_pieces(card.prompt, limit, "Question" if card.ask else "Prompt")
    for draft in card.drafts:
        pieces += _quoted(f"Draft {draft.label}", draft.text, limit)
    if card.ask is not None and card.ask.function is not None:
        pieces += _quoted(f"Proposed call: {card.ask.function}", proposal_text(card), limit)
    return _pack([*pieces, *prior_pieces(card, limit), *_why_note(card)], limit)


def _under_title(card: Card, now_ms: int | None) -> str:
    """A live ask says who asks, by when and for what pay; a task, what it takes."""
    if card.ask is not None:
        return header_html(card.ask, now_ms)
    minutes = max(1, round(card.estimate.seconds / 60))
    pay = (f" · {card.estimate.pay:.2f} {escape(card.estimate.currency or '')}"
           if card.estimate.pay is not None else "")
    return f"<i>~{minutes} min{pay}</i>"


def prior_pieces(card: Card, limit: int = TEXT_LIMIT) -> list[str]:
    """An adjudication: the earlier answers, unblinded (who said what, and why), above the
    buttons; the expert's tap is the final call."""
    if not card.adjudication:
        return []
    pieces = ["<b>Final call.</b> The earlier answers:" if card.prior else
              "<b>Final call.</b> No earlier answers are on record."]
    for prior in card.prior:  # room kept in the last piece for the line of why
        pieces += _quoted(f"{prior.expert}:", prior.decision, limit - 600)
        if prior.rationale:
            pieces[-1] += f"\n<i>Why: {escape(prior.rationale, quote=False)}</i>"
    return pieces


def _why_note(card: Card) -> list[str]:
    if card.rationale == "required":
        return ["<i>Your answer needs one line on why: I ask for it after your tap.</i>"]
    if card.rationale == "optional":
        return ["<i>You may add one line on why after your answer.</i>"]
    return []


def prompt_pieces(prompt: str | list[Turn], limit: int = TEXT_LIMIT,
                  heading: str = "Prompt") -> list[str]:
    """A plain prompt under one heading; a conversation turn by turn, each under its role
    ("User:"), so `_pack` breaks the messages between turns and a long turn alone is split."""
    if isinstance(prompt, str):
        return _quoted(heading, prompt, limit)
    pieces = [f"<b>Conversation</b> <i>({len(prompt)} turns)</i>"]
    for turn in prompt:
        pieces += _quoted(f"{turn.role.capitalize()}:", turn.content, limit)
    return pieces


def _quoted(title: str, raw: str, limit: int) -> list[str]:
    head = f"<b>{escape(title)}</b>\n"
    room = limit - len(head) - len("<blockquote></blockquote>") - len(" (cont.)")
    chunks = split_escaped(raw, room)
    return [f"<b>{escape(title)}{' (cont.)' if i else ''}</b>\n<blockquote>{chunk}</blockquote>"
            for i, chunk in enumerate(chunks)]


def split_escaped(raw: str, limit: int) -> list[str]:
    """Escape `raw` and cut it into pieces of at most `limit` characters, at a line or word
    break where one is near, never inside an entity like `&amp;`."""
    out: list[str] = []
    cur: list[str] = []
    size = 0
    for ch in raw or " ":
        piece = escape(ch, quote=False)
        if size + len(piece) > limit:
            cut = _break_at(cur)
            out.append("".join(cur[:cut]))
            cur = cur[cut:]
            size = sum(map(len, cur))
        cur.append(piece)
        size += len(piece)
    out.append("".join(cur))
    return out


def _break_at(cur: list[str]) -> int:
    for i in range(len(cur) - 1, len(cur) // 2, -1):
        if cur[i] in ("\n", " "):
            return i + 1
    return len(cur)


def _pack(pieces: list[str], limit: int) -> list[str]:
    parts: list[str] = []
    for piece in pieces:
        if parts and len(parts[-1]) + 2 + len(piece) <= limit:
            parts[-1] += "\n\n" + piece
        else:
            parts.append(piece)
    return parts


def describe(decision: Decision) -> str:
    """What was recorded, in a few words for the edited card."""
    match decision.type:
        case "pairwise":
            choice = getattr(decision, "choice", "")
            return "a tie" if choice == "tie" else f"{choice} is better"
        case "rank":
            return "ranking " + " > ".join(getattr(decision, "order", []))
        case "rate":
            return f"rating {getattr(decision, 'score', '')}"
        case "label":
            return "labels: " + ", ".join(getattr(decision, "labels", []))
        case "verify":
            return "accepted" if getattr(decision, "verdict", "") == "accept" else "override"
        case "flag":
            return f"flag ({getattr(decision, 'reason', '')})"
        case "approve":
            return said(decision)
        case other:
            return other.replace("_", " ")


def _base36(n: int) -> str:
    return "0123456789abcdefghijklmnopqrstuvwxyz"[n]
