"""Posting one signed callback. A 2xx is delivered; anything else (another status, a redirect,
a timeout, a refused connection, a refused address) comes back as the reason, for the caller to
retry later. A redirect is never followed: a 3xx counts as a failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

import aiohttp

from adapters.callbacks.guard import CallbackGuard
from adapters.callbacks.signing import signed_headers


class CallbackSender:
    """One HTTP session for a worker's life: `async with CallbackSender(...) as sender`."""

    def __init__(self, secret: str, guard: CallbackGuard, timeout_s: float = 10.0,
                 now_s: Callable[[], float] = time.time) -> None:
        self.secret, self.guard, self.timeout_s, self.now_s = secret, guard, timeout_s, now_s
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CallbackSender:
        connector = aiohttp.TCPConnector(resolver=self.guard.resolver(), limit=100)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            headers={"User-Agent": "expertloop-callback"})
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self.session is not None:
            await self.session.close()

    async def send(self, url: str, body: str, delivery: str) -> str | None:
        """None once the agent took it (a 2xx); else why not. Each try is signed afresh (a
        new timestamp) under the same delivery id."""
        assert self.session is not None, "use the sender as an async context manager"
        if why := self.guard.url_refusal(url):
            return why
        data = body.encode()
        headers = signed_headers(self.secret, int(self.now_s()), data, delivery)
        try:
            async with self.session.post(url, data=data, headers=headers,
                                         allow_redirects=False) as response:
                await response.read()
                return _failure(response)
        except TimeoutError:
            return f"no answer within {self.timeout_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"


def _failure(response: aiohttp.ClientResponse) -> str | None:
    if 200 <= response.status < 300:
        return None
    if 300 <= response.status < 400:
        where = response.headers.get("Location", "")
        return f"HTTP {response.status}: a redirect to {where or '?'}, not followed"
    return f"HTTP {response.status}"
