"""The coordinator API's route table, registered on the shared web app and described by the
OpenAPI document at `GET /api/openapi.json` from the same table."""

from __future__ import annotations

from typing import Any, NamedTuple

from aiohttp import web

from adapters.http import asks, campaigns, experts, openapi, privacy
from adapters.http.context import API, Api
from adapters.http.middleware import Handler, api_errors, bearer_auth
from core.reports.exports import FORMATS

ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
STATUS = {"$ref": "#/components/schemas/CampaignStatus"}
FORMAT = {"name": "format", "in": "query", "schema": {"type": "string", "enum": list(FORMATS),
                                                     "default": "trail"}}
ASK = {"$ref": "#/components/schemas/AskView"}
WAIT = {"name": "wait", "in": "query", "schema": {"type": "number", "minimum": 0, "maximum": 60,
                                                  "default": 0},
        "description": "long poll: answer at once when decided, else after this many seconds"}
ASK_LIST = [{"name": "status", "in": "query", "schema": {"type": "string", "enum": list(
    asks.STATUSES)}}, {"name": "limit", "in": "query", "schema": {
        "type": "integer", "minimum": 1, "maximum": asks.MAX_LIST, "default": 100}}]
INCLUDE_MODEL = {"name": "include_model", "in": "query", "schema": {
    "type": "boolean", "default": False}, "description": "add the rows the model decided alone "
    "(auto-accepted), marked decided_by: model; left out by default"}


class Route(NamedTuple):
    method: str
    path: str
    handler: Handler
    doc: dict[str, Any]


ROUTES = [
    Route("POST", "/api/campaigns", campaigns.post_campaign, openapi.operation(
        "Post a campaign with its items", body="CampaignPost", ok=201)),
    Route("GET", "/api/campaigns", campaigns.list_campaigns, openapi.operation(
        "List campaigns with progress", returns={"type": "array", "items": STATUS})),
    Route("GET", "/api/campaigns/{id}", campaigns.get_campaign, openapi.operation(
        "A campaign's progress counts", params=[ID], returns=STATUS)),
    *(Route("POST", f"/api/campaigns/{{id}}/{action}", campaigns.change_state,
            openapi.operation(f"{action.title()} a campaign", params=[ID]))
      for action in campaigns.STATE_ACTIONS),
    Route("POST", "/api/campaigns/{id}/items", campaigns.post_items, openapi.operation(
        "Add items as JSON lines, streamed", body="Item", body_type="application/x-ndjson",
        ok=201, params=[ID])),
    Route("GET", "/api/campaigns/{id}/export", campaigns.export, openapi.operation(
        "Export answers, streamed as JSON lines (CSV for format=csv); format=labels gives the "
        "final label per item. Every row says decided_by: expert, adjudicator or model",
        params=[ID, FORMAT, INCLUDE_MODEL], media=("application/x-ndjson", "text/csv"))),
    Route("POST", "/api/campaigns/{id}/adjudicate", campaigns.adjudicate, openapi.operation(
        "Send an item to an adjudicator for the final call: 202 queued, 200 when it waits "
        "already", params=[ID], body="Adjudicate", ok=202)),
    Route("GET", "/api/campaigns/{id}/qualification", campaigns.qualification,
          openapi.operation("Each expert's qualification result (in_progress, passed, failed; "
                            "right of answers, share) and the counts", params=[ID])),
    Route("GET", "/api/campaigns/{id}/quality", campaigns.quality, openapi.operation(
        "Agreement, gold accuracy, fast answers, majorities, model leaderboard", params=[ID])),
    Route("GET", "/api/campaigns/{id}/models", campaigns.models, openapi.operation(
        "How experts treat each model's drafts: made, shown, decided, accepted as is, edited "
        "(edit_ratio distribution), overridden, wins and losses, per UTC day; per expert, "
        "acceptances faster than reading", params=[ID],
        returns={"$ref": "#/components/schemas/ModelsReport"})),
    Route("GET", "/api/campaigns/{id}/pay", campaigns.pay, openapi.operation(
        "The pay ledger per expert, with top-ups to the hourly floor", params=[ID],
        media=("application/json", "text/csv"))),
    Route("POST", "/api/experts", experts.post_expert, openapi.operation(
        "Add an expert; returns their web chat link", body="Expert", ok=201)),
    Route("GET", "/api/experts/{id}", experts.get_expert, openapi.operation(
        "An expert's profile", params=[ID])),
    Route("PATCH", "/api/experts/{id}", experts.patch_expert, openapi.operation(
        "Change an expert's profile: only the fields sent (level, roles, name, skills, ...)",
        params=[ID], body="ExpertUpdate")),
    Route("POST", "/api/experts/{id}/invite", experts.post_invite, openapi.operation(
        "A new web chat link for an expert (the old one stops working)", ok=201,
        params=[ID])),
    Route("POST", "/api/experts/{id}/requalify/{campaign}", experts.requalify,
          openapi.operation("Let an expert take a campaign's qualification again", params=[
              ID, {**ID, "name": "campaign"}])),
    Route("GET", "/api/experts/{id}/export", privacy.export_expert, openapi.operation(
        "Everything held about an expert, as one JSON document (tokens as digests only)",
        params=[ID])),
    Route("POST", "/api/experts/{id}/erase", privacy.erase_expert, openapi.operation(
        "Erase an expert: profile, accounts, links and invites go; their answers stay in the "
        "log under a pseudonym", params=[ID])),
    Route("POST", "/api/asks", asks.post_ask, openapi.operation(
        "Ask experts for a live decision (body at most 256 KiB); a repeat call_id with the "
        "same body gives the same ask (200), with another body 409", body="AskRequest",
        ok=201, returns=ASK, also={200: "the same ask, posted before under this call_id",
                                   429: "too many asks from this token; see Retry-After"})),
    Route("GET", "/api/asks", asks.list_asks, openapi.operation(
        "Recent asks, newest first", params=ASK_LIST,
        returns={"type": "array", "items": ASK})),
    Route("GET", "/api/asks/{id}", asks.get_ask, openapi.operation(
        "Where an ask stands; with wait=N, when decided or after N s", params=[ID, WAIT],
        returns=ASK)),
    Route("DELETE", "/api/asks/{id}", asks.delete_ask, openapi.operation(
        "Withdraw a pending ask; experts holding it are told it is no longer needed",
        params=[ID], returns=ASK)),
    Route("GET", "/api/provenance/{campaign}/verify", asks.verify, openapi.operation(
        "Seal and recompute a campaign's hash chain (`asks`: the live asks' log)", params=[
            {**ID, "name": "campaign"}])),
]


def add_api_routes(app: web.Application, api: Api) -> None:
    """Middlewares go on before the app is frozen: auth and the error shape for /api only."""
    app[API] = api
    app.middlewares.extend([api_errors, bearer_auth])
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    app.router.add_get("/api/openapi.json", openapi_json)


async def openapi_json(request: web.Request) -> web.Response:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = route.doc
    return web.json_response(openapi.document(paths))
