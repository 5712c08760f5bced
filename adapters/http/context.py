"""What the coordinator API's handlers share: the core objects and the API's own settings."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel, Field

from core.privacy.rights import Privacy
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator


class ApiSettings(BaseModel):
    token: str | None = None  # None: the API is open, and only served on 127.0.0.1
    public_url: str = "http://127.0.0.1:8080"
    max_body: int = Field(default=16 << 20, gt=0)  # JSON bodies; items as JSON lines stream


@dataclass(frozen=True)
class Api:
    coordinator: Coordinator
    ledger: Ledger
    privacy: Privacy  # an expert's own data: export and erasure
    settings: ApiSettings


API = web.AppKey("api", Api)


def api_of(request: web.Request) -> Api:
    return request.app[API]
