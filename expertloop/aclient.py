"""The asyncio client, on aiohttp: `await aask(...)` for agents that run in an event loop."""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Any, Unpack

import aiohttp

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


class AsyncClient:
    """The sync `Client`'s twin over one aiohttp session; use it with `async with`, or call
    `aclose()`. Retries and call_id behave the same: nothing is asked twice."""

    def __init__(self, base_url: str | None = None, token: str | None = None,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.endpoint = Endpoint.resolve(base_url, token)
        self._session = session
        self._owned = session is None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None

    async def ask(self, question: str, **options: Unpack[AskOptions]) -> Decision:
        """POST the ask, then long-poll until it is decided or its deadline passed."""
        return await self.wait(await self.post(ask_body(question, **options)))

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._send("POST", self.endpoint.asks(), body)

    async def view(self, ask_id: str, wait: float | None = None) -> dict[str, Any]:
        return await self._send("GET", self.endpoint.asks(ask_id, wait), wait_s=wait or 0)

    async def withdraw(self, ask_id: str) -> Decision:
        return Decision.from_view(await self._send("DELETE", self.endpoint.asks(ask_id)))

    async def wait(self, view: dict[str, Any]) -> Decision:
        while (wait := next_wait(view)) is not None:
            view = await self.view(view["id"], min(wait, POLL_S))
        return Decision.from_view(view)

    async def _send(self, method: str, url: str, body: dict[str, Any] | None = None,
                    wait_s: float = 0) -> dict[str, Any]:
        for delay in RETRY_DELAYS:
            try:
                return await self._once(method, url, body, wait_s + REQUEST_SLACK_S)
            except Retry as error:
                await asyncio.sleep(error.after or delay)
        try:
            return await self._once(method, url, body, wait_s + REQUEST_SLACK_S)
        except Retry as error:
            raise gave_up(error) from error

    async def _once(self, method: str, url: str, body: dict[str, Any] | None,
                    limit_s: float) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        data = json.dumps(body) if body is not None else None
        try:
            async with self._session.request(
                    method, url, data=data, headers=self.endpoint.headers(),
                    timeout=aiohttp.ClientTimeout(total=limit_s)) as reply:
                return reply_of(reply.status, dict(reply.headers), await reply.text())
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
                TimeoutError) as error:
            raise Retry(f"{type(error).__name__}: {error}") from error


async def aask(question: str, *, base_url: str | None = None, token: str | None = None,
               **options: Unpack[AskOptions]) -> Decision:
    """Ask an expert and wait for the decision or the deadline, without blocking the loop."""
    async with AsyncClient(base_url, token) as client:
        return await client.ask(question, **options)
