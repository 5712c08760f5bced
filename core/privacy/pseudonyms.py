"""Pseudonyms for erased experts, applied to log events as they are read.

The provenance log is hash-chained, so an erased expert's events cannot be rewritten without
breaking the chain. Instead every reader sees them through this module: the expert's id and
the chats their cards went to are replaced by a stable pseudonym. The map is keyed by SHA-256
of the id (and of each `<channel>:<chat>`), so it is not itself a list of who asked to be erased.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, NamedTuple

ID_FIELDS = ("expert", "actor_id")  # event fields that name an expert


class Erasures(NamedTuple):
    """Who is erased: SHA-256 of an expert id, and of each of their chat handles
    (`telegram:<chat id>`, `slack:<DM channel>`), to the pseudonym shown instead."""

    experts: dict[str, str]
    handles: dict[str, str]


NONE = Erasures({}, {})


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_pseudonym() -> str:
    """Random, not derived from the id: knowing the id does not find the pseudonym."""
    return f"erased-{secrets.token_hex(6)}"


def pseudonymise(events: list[dict[str, Any]], erasures: Erasures) -> list[dict[str, Any]]:
    """The events as every report, export and listing may show them."""
    if not erasures.experts and not erasures.handles:
        return events
    aliases = _Aliases(erasures)
    return [_event(event, aliases) for event in events]


class _Aliases:
    """Looks values up by their digest, remembering each answer: a batch names few experts."""

    def __init__(self, erasures: Erasures) -> None:
        self.erasures = erasures
        self.known: dict[tuple[bool, str], str | None] = {}

    def expert(self, value: str) -> str | None:
        return self._find(False, value)

    def handle(self, value: str) -> str | None:
        return self._find(True, value)

    def _find(self, handle: bool, value: str) -> str | None:
        key = (handle, value)
        if key not in self.known:
            table = self.erasures.handles if handle else self.erasures.experts
            self.known[key] = table.get(digest(value))
        return self.known[key]


def _event(event: dict[str, Any], aliases: _Aliases) -> dict[str, Any]:
    changed = dict(event)
    for field in ID_FIELDS:
        value = event.get(field)
        if isinstance(value, str) and (alias := aliases.expert(value)):
            changed[field] = alias
    payload = event.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("message_id"), str):
        changed["payload"] = _message(payload, aliases)
    return changed


def _message(payload: dict[str, Any], aliases: _Aliases) -> dict[str, Any]:
    """A delivered card's message id is `<chat>:<message>`; a Telegram chat id is the person."""
    chat, sep, rest = payload["message_id"].partition(":")
    alias = aliases.handle(f"{payload.get('channel', '')}:{chat}") if sep else None
    return {**payload, "message_id": f"{alias}:{rest}"} if alias else payload
