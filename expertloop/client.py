"""The synchronous client, on the standard library alone (urllib), for agents and scripts
that are not async: `ask(...)` posts the question and blocks until an expert decides."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from typing import Any, Unpack

from expertloop.decision import Decision
from expertloop.wire import (
    POLL_S,
    REQUEST_SLACK_S,
    RETRY_DELAYS,
    AskOptions,
    Endpoint,
    Retry,
    ask_body,
    gave_up,
    next_wait,
    reply_of,
)

NETWORK = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


class Client:
    """One expertloop server; every request retries the network and restarts, never twice
    asking: a POST repeats its call_id, and the server answers a repeat with the same ask."""

    def __init__(self, base_url: str | None = None, token: str | None = None) -> None:
        self.endpoint = Endpoint.resolve(base_url, token)

    def ask(self, question: str, **options: Unpack[AskOptions]) -> Decision:
        """POST the ask, then long-poll until it is decided or its deadline passed."""
        return self.wait(self.post(ask_body(question, **options)))

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._send("POST", self.endpoint.asks(), body)

    def view(self, ask_id: str, wait: float | None = None) -> dict[str, Any]:
        return self._send("GET", self.endpoint.asks(ask_id, wait), timeout=(wait or 0))

    def withdraw(self, ask_id: str) -> Decision:
        return Decision.from_view(self._send("DELETE", self.endpoint.asks(ask_id)))

    def wait(self, view: dict[str, Any]) -> Decision:
        """Long polls of POLL_S until the status is no longer pending or the deadline passed."""
        while (wait := next_wait(view)) is not None:
            view = self.view(view["id"], min(wait, POLL_S))
        return Decision.from_view(view)

    def _send(self, method: str, url: str, body: dict[str, Any] | None = None,
              timeout: float = 0) -> dict[str, Any]:
        for delay in RETRY_DELAYS:
            try:
                return self._once(method, url, body, timeout + REQUEST_SLACK_S)
            except Retry as error:
                time.sleep(error.after or delay)
        try:
            return self._once(method, url, body, timeout + REQUEST_SLACK_S)
        except Retry as error:
            raise gave_up(error) from error

    def _once(self, method: str, url: str, body: dict[str, Any] | None,
              timeout: float) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data, self.endpoint.headers(), method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return reply_of(reply.status, dict(reply.headers), reply.read().decode())
        except urllib.error.HTTPError as error:
            return reply_of(error.code, dict(error.headers), error.read().decode())
        except NETWORK as error:
            raise Retry(f"{type(error).__name__}: {error}") from error


def ask(question: str, *, base_url: str | None = None, token: str | None = None,
        **options: Unpack[AskOptions]) -> Decision:
    """Ask an expert and block until the decision or the deadline (`AskOptions`: kind,
    proposal, drafts, context, to, quorum, deadline_s, on_timeout, urgent, pay, call_id,
    callback, asker)."""
    return Client(base_url, token).ask(question, **options)
