"""The HTTP contract both clients speak (POST /api/asks, GET /api/asks/{id}?wait=N): the
request body, where the server is, when to retry and how long to keep polling. Kept apart from
the transports so the sync and async clients differ only in how they send a request."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from expertloop.decision import AskFailed

DEFAULT_URL = "http://127.0.0.1:8080"  # `expertloop serve` without PORT
POLL_S = 30.0  # one long poll; the server allows up to 60
GRACE_S = 10.0  # past the deadline, the worker's tick (every second) still has to expire it
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # ~16 s of a server restarting or unreachable
RETRY_STATUS = frozenset({429, 502, 503, 504})
REQUEST_SLACK_S = 15.0  # a long poll's reply may take `wait` plus this before it is a failure

To = str | Sequence[str] | Mapping[str, Any] | None
Quorum = int | Mapping[str, int] | None


class CallOptions(TypedDict, total=False):
    """What every ask may add besides who answers and what it asks (defaults in `ask_body`)."""

    context: str
    quorum: Quorum  # 1 (the first answer decides) or N (all of N experts)
    on_timeout: str  # expire | reject | escalate
    urgent: bool
    pay: Mapping[str, Any] | None  # {"per_ask": 2.0, "currency": "EUR"}
    callback: str | Mapping[str, Any] | None  # a URL the decision is POSTed to, signed
    asker: str | None  # who the card says is asking


class AskOptions(CallOptions, total=False):
    """Everything an ask takes besides its question (the API's POST body): one definition for
    `ask`, `aask` and both clients."""

    kind: str  # approve | choose | verify | write
    proposal: Mapping[str, Any] | None  # approve: {"function", "args"}
    drafts: Iterable[str | Mapping[str, Any]] | None  # choose: two; verify: one
    to: To  # an expert id, a list of them, or {"skills", "level"} / {"experts"}
    deadline_s: int
    call_id: str | None  # a tool call's id: a repeat is the same ask


@dataclass(frozen=True)
class Endpoint:
    """Where the server is and the bearer token for its /api."""

    base_url: str
    token: str | None = None

    @classmethod
    def resolve(cls, base_url: str | None = None, token: str | None = None) -> Endpoint:
        """Arguments first, then EXPERTLOOP_URL / EXPERTLOOP_API_TOKEN, then the local default."""
        url = base_url or os.environ.get("EXPERTLOOP_URL") or DEFAULT_URL
        return cls(url.rstrip("/"), token or os.environ.get("EXPERTLOOP_API_TOKEN") or None)

    def headers(self) -> dict[str, str]:
        found = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            found["Authorization"] = f"Bearer {self.token}"
        return found

    def asks(self, ask_id: str | None = None, wait: float | None = None) -> str:
        url = f"{self.base_url}/api/asks" + (f"/{ask_id}" if ask_id else "")
        return url + (f"?wait={int(wait)}" if wait is not None else "")


def ask_body(question: str, *, kind: str = "approve", proposal: Mapping[str, Any] | None = None,
             drafts: Iterable[str | Mapping[str, Any]] | None = None, context: str = "",
             to: To = None, quorum: Quorum = None, deadline_s: int = 900,
             on_timeout: str = "expire", urgent: bool = False,
             pay: Mapping[str, Any] | None = None, call_id: str | None = None,
             callback: str | Mapping[str, Any] | None = None,
             asker: str | None = None) -> dict[str, Any]:
    """The POST body; a fresh call_id unless given, so a retried POST is the same ask."""
    body: dict[str, Any] = {"call_id": call_id or f"call_{uuid.uuid4().hex}", "kind": kind,
                            "question": question, "context": context,
                            "deadline_s": deadline_s, "on_timeout": on_timeout,
                            "urgent": urgent}
    optional = {"proposal": dict(proposal) if proposal is not None else None,
                "drafts": drafts_of(drafts) if drafts is not None else None,
                "to": to_of(to), "quorum": quorum_of(quorum),
                "pay": dict(pay) if pay is not None else None,
                "callback": {"url": callback} if isinstance(callback, str) else callback,
                "asker": asker}
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def to_of(to: To) -> dict[str, Any] | None:
    """`"dr-lee"` and `["dr-lee", "dr-kim"]` name experts; a mapping is the API's `to` as is."""
    if to is None:
        return None
    if isinstance(to, str):
        return {"experts": [to]}
    if isinstance(to, Mapping):
        return dict(to)
    return {"experts": list(to)}


def quorum_of(quorum: Quorum) -> dict[str, int] | None:
    """An int N is `all_of: N` (1 is `any_of: 1`); a mapping is the API's quorum as is."""
    if quorum is None or isinstance(quorum, Mapping):
        return dict(quorum) if quorum is not None else None
    return {"any_of": 1} if quorum == 1 else {"all_of": int(quorum)}


def drafts_of(drafts: Iterable[str | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A plain string is a draft's text; a mapping is a campaign item's draft as is."""
    return [{"text": draft} if isinstance(draft, str) else dict(draft) for draft in drafts]


def until(view: Mapping[str, Any], now: float | None = None) -> float:
    """When to stop waiting (epoch s): the ask's current deadline (escalation moves it) plus
    the grace the worker needs to record the timeout."""
    expires = view.get("expires_at")
    if isinstance(expires, int | float):
        at = expires / 1000 if expires > 10**11 else float(expires)
    elif isinstance(expires, str) and expires:
        at = datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp()
    else:
        at = (now if now is not None else time.time()) + POLL_S
    return at + GRACE_S


def next_wait(view: Mapping[str, Any], now: float | None = None) -> float | None:
    """Seconds for the next long poll, or None: decided, or past the deadline."""
    if view.get("status") != "pending":
        return None
    left = until(view, now) - (now if now is not None else time.time())
    return None if left <= 0 else max(1.0, min(POLL_S, left))


def failure(status: int, payload: Any) -> AskFailed:
    """The server's JSON error (`{"error", "detail"}`) as an AskFailed."""
    if isinstance(payload, Mapping):
        message = str(payload.get("error") or payload)
        detail = payload.get("detail")
        return AskFailed(f"{status}: {message}", status,
                         detail if isinstance(detail, list) else None)
    return AskFailed(f"{status}: {str(payload)[:300]}", status)


def retry_after(headers: Mapping[str, str], delay: float) -> float:
    """A 429's Retry-After, when the server says how long; else our own backoff."""
    try:
        return max(delay, float(headers.get("Retry-After", "")))
    except ValueError:
        return delay


class Retry(Exception):
    """A failure worth the same request again: the network, a restart (502-504) or a 429."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


def reply_of(status: int, headers: Mapping[str, str], text: str) -> dict[str, Any]:
    """A 2xx's JSON; raises Retry for a status worth retrying and AskFailed for the rest."""
    try:
        payload: Any = json.loads(text) if text else {}
    except ValueError:
        payload = text
    if 200 <= status < 300 and isinstance(payload, dict):
        return payload
    if status in RETRY_STATUS:
        raise Retry(f"HTTP {status}", retry_after(headers, 0.0) or None)
    raise failure(status, payload)


def gave_up(error: Retry) -> AskFailed:
    return AskFailed(f"the server did not answer after {len(RETRY_DELAYS)} retries: {error}")
