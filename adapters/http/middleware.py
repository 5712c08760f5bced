"""Bearer-token auth and one error shape for every /api route:
`{"error": "...", "detail": [{"loc": [...], "msg": "..."}]}` with a 4xx that says what is wrong."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from adapters.http.context import api_of
from core.errors import Conflict, ExpertloopError, InvalidAnswer, InvalidCampaign, NotFound

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str, detail: list[dict[str, object]] | None = None
          ) -> web.Response:
    return web.json_response({"error": message, "detail": detail or []}, status=status)


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except InvalidCampaign as exc:
        return error(422, str(exc), [p.as_dict() for p in exc.problems])
    except ValidationError as exc:
        return error(422, "invalid body", [{"loc": list(e["loc"]), "msg": e["msg"]}
                                           for e in exc.errors()])
    except json.JSONDecodeError as exc:
        return error(400, f"body is not JSON: {exc.msg}", [{"loc": ["body"], "msg": exc.msg,
                                                            "line": exc.lineno}])
    except UnicodeDecodeError as exc:
        return error(400, "body is not UTF-8", [{"loc": ["body"], "msg": exc.reason}])
    except NotFound as exc:
        return error(404, str(exc))
    except (Conflict, InvalidAnswer) as exc:
        return error(409, str(exc))
    except ExpertloopError as exc:
        return error(400, str(exc))
    except web.HTTPRequestEntityTooLarge as exc:
        return error(413, "body too large", [{"loc": ["body"], "msg": exc.text or ""}])
    except web.HTTPException as exc:  # aiohttp's own refusals (no such route, method): same shape
        if exc.status < 400:
            raise
        refused = error(exc.status, f"{exc.reason}: {request.method} {request.path}")
        if "Allow" in exc.headers:
            refused.headers["Allow"] = exc.headers["Allow"]
        return refused


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Compared in constant time, so a wrong token's timing says nothing about the right one."""
    if not request.path.startswith("/api/") or request.path == "/api/openapi.json":
        return await handler(request)
    expected = api_of(request).settings.token
    if expected is None:
        return await handler(request)
    sent = request.headers.get("Authorization", "")
    scheme, _, token = sent.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        return error(401, "missing or wrong API token: send Authorization: Bearer <token>")
    return await handler(request)
