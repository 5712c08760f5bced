"""The Block Kit pieces every Slack surface is built of (cards, ask cards, modals), and the
limits they must keep (https://docs.slack.dev/reference/block-kit/blocks)."""

from __future__ import annotations

from typing import Any

Block = dict[str, Any]

TEXT_LIMIT = 3000  # characters in one text object or plain_text_input
SECTION_ROOM = TEXT_LIMIT - 100  # room left for a heading line in the first piece


def escape(text: str) -> str:
    """Slack's mrkdwn needs only these three escaped (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def split_text(text: str, limit: int = SECTION_ROOM) -> list[str]:
    """Pieces whose escaped form fits `limit`, preferring to break after a newline or space."""
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end, size = start, 0
        while end < len(text) and size + len(escape(text[end])) <= limit:
            size += len(escape(text[end]))
            end += 1
        if end < len(text):
            cut = max(text.rfind("\n", start, end), text.rfind(" ", start, end))
            end = cut + 1 if cut > start + limit // 2 else end
        pieces.append(text[start:end])
        start = end
    return pieces or [""]


def sections(heading: str, text: str) -> list[Block]:
    """A long text under its heading, in as many sections as it takes; nothing is cut."""
    pieces = split_text(text)
    blocks = []
    for n, piece in enumerate(pieces):
        head = heading if n == 0 else f"{heading} (continued, {n + 1}/{len(pieces)})"
        body = escape(piece) if piece.strip() else "_(empty)_"
        blocks.append(mrkdwn(f"*{head}*\n{body}"))
    return blocks


def mrkdwn(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def context(text: str, block_id: str | None = None) -> Block:
    block: Block = {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
    if block_id:
        block["block_id"] = block_id
    return block


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    made: Block = {"type": "button", "text": {"type": "plain_text", "text": text},
                   "action_id": action_id, "value": value}
    if style:
        made["style"] = style
    return made


def option(text: str, value: str) -> Block:
    return {"text": {"type": "plain_text", "text": text}, "value": value}


def input_block(block_id: str, label: str, element: Block) -> Block:
    return {"type": "input", "block_id": block_id, "element": element,
            "label": {"type": "plain_text", "text": label}}


def modal(callback_id: str, title: str, submit: str, metadata: str,
          blocks: list[Block]) -> Block:
    return {"type": "modal", "callback_id": callback_id, "private_metadata": metadata,
            "title": {"type": "plain_text", "text": title},
            "submit": {"type": "plain_text", "text": submit},
            "close": {"type": "plain_text", "text": "Cancel"}, "blocks": blocks}
