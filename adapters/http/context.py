"""What the coordinator API's handlers share: the core objects and the API's own settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel, Field

from core.ports import Turns
from core.privacy.rights import Privacy
from core.provenance.ledger import Ledger
from core.service.asks import AskService
from core.service.coordinator import Coordinator

# Why an ask's callback URL may not be used (resolved now), or None: the bots wire the
# callbacks adapter's guard in, so the API and the sender judge a URL the same way.
CallbackCheck = Callable[[str], Awaitable[str | None]]


class ApiSettings(BaseModel):
    token: str | None = None  # None: the API is open, and only served on 127.0.0.1
    public_url: str = "http://127.0.0.1:8080"
    max_body: int = Field(default=16 << 20, gt=0)  # JSON bodies; items as JSON lines stream
    asks_per_minute: int = Field(default=600, gt=0)  # per API token, across web processes
    callbacks_signed: bool = False  # EXPERTLOOP_CALLBACK_SECRET is set


@dataclass(frozen=True)
class Api:
    coordinator: Coordinator
    ledger: Ledger
    privacy: Privacy  # an expert's own data: export and erasure
    settings: ApiSettings
    asks: AskService
    turns: Turns  # paces each token's asks (Redis's clock, shared by every web process)
    callback_refusal: CallbackCheck


API = web.AppKey("api", Api)


def api_of(request: web.Request) -> Api:
    return request.app[API]
