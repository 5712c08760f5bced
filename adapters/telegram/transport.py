"""python-telegram-bot's HTTP transport on aiohttp instead of httpx.

Why: under load the default httpx transport spends most of an answer's CPU in its connection
pool bookkeeping and in a failed `import sniffio` that httpcore retries on every request
(bench/telegram_ingest.py showed it); aiohttp is already the web process's HTTP stack. PTB makes
the transport pluggable (`ApplicationBuilder().request(...)`,
https://docs.python-telegram-bot.org/en/stable/telegram.request.baserequest.html), and status
codes still become PTB's own errors (RetryAfter, BadRequest, ...) above this layer."""

from __future__ import annotations

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

Timeout = float | None


class AiohttpRequest(BaseRequest):
    """One aiohttp session for every Bot API call of a bot; opened in `initialize`."""

    def __init__(self, connections: int = 256, read_timeout: float = 5.0,
                 connect_timeout: float = 5.0) -> None:
        self.connections = connections
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.connections)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: object = BaseRequest.DEFAULT_NONE,
                         write_timeout: object = BaseRequest.DEFAULT_NONE,
                         connect_timeout: object = BaseRequest.DEFAULT_NONE,
                         pool_timeout: object = BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("AiohttpRequest is not initialized")
        timeout = aiohttp.ClientTimeout(
            sock_read=_given(read_timeout, self._read_timeout),
            connect=_given(connect_timeout, self._connect_timeout))
        try:
            async with self._session.request(method, url, data=_body(request_data),
                                             timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


def _given(value: object, default: float) -> Timeout:
    """PTB passes DEFAULT_NONE for "use your default" and None for "no limit"."""
    if isinstance(value, (int, float)) or value is None:
        return value
    return default


def _body(request_data: RequestData | None) -> aiohttp.FormData | dict[str, str] | None:
    """Form fields as httpx would send them (nested values JSON-encoded), files as multipart."""
    if request_data is None:
        return None
    fields = request_data.json_parameters
    files = request_data.multipart_data
    if not files:
        return fields
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in files.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form
