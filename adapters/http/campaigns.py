"""Campaign routes of the coordinator API: post, list, status, state changes, more items,
exports, quality, models, pay and provenance. Bodies are pydantic models; long output streams."""

from __future__ import annotations

import json

from aiohttp import web

from adapters.http.context import api_of
from core.domain.campaigns import CampaignSpec
from core.domain.qualification import counts as qualification_counts
from core.errors import ExpertloopError, InvalidCampaign, Problem
from core.ports import History
from core.reports.exports import Export
from core.reports.models import campaign_models
from core.reports.pay import campaign_pay, pay_csv
from core.reports.quality import campaign_quality
from core.reports.trainers import ExportOptions
from core.service.staging import ItemSpool, spool_items

STATE_ACTIONS = ("pause", "resume", "close")
# What exports and reports read the log through (bots/web.py sets it); absent, the plain reader.
HISTORY = web.AppKey("history", History)


def history_of(request: web.Request) -> History | None:
    return request.app.get(HISTORY)


async def post_campaign(request: web.Request) -> web.Response:
    """A campaign spec with its items inline, checked whole before anything is stored."""
    api = api_of(request)
    body = json.loads(await request.text())
    if not isinstance(body, dict):
        raise InvalidCampaign([Problem("a campaign is a JSON object", source="body")])
    items = body.pop("items", [])
    spec = CampaignSpec.model_validate(body)
    spool = spool_items(spec, items if isinstance(items, list) else [items], source="body")
    try:
        spool.check()
        campaign = await api.coordinator.post_campaign(spec, spool, actor_id="api")
    finally:
        spool.close()
    return web.json_response({"id": campaign.id, "items": spool.count}, status=201)


async def list_campaigns(request: web.Request) -> web.Response:
    found = await api_of(request).coordinator.list_campaigns()
    return web.json_response([status.model_dump(mode="json") for status in found])


async def get_campaign(request: web.Request) -> web.Response:
    status = await api_of(request).coordinator.status(request.match_info["id"])
    return web.json_response(status.model_dump(mode="json"))


async def change_state(request: web.Request) -> web.Response:
    campaign_id, action = request.match_info["id"], request.path.rsplit("/", 1)[1]
    state = await api_of(request).coordinator.change_state(campaign_id, action, "api")
    return web.json_response({"id": campaign_id, "state": state.value})


async def post_items(request: web.Request) -> web.Response:
    """JSON lines of any size, read as they arrive; all or none of them are added."""
    api = api_of(request)
    campaign = await api.coordinator.campaign(request.match_info["id"])
    spool = ItemSpool(campaign.spec, "body")
    try:
        number = 0
        async for raw in request.content:
            number += 1
            line = raw.decode("utf-8", errors="replace")
            if line.strip():
                spool.add_json(line, number)
        spool.check()
        added = await api.coordinator.add_items(campaign.id, spool, actor_id="api")
    finally:
        spool.close()
    return web.json_response({"id": campaign.id, "added": added}, status=201)


async def export(request: web.Request) -> web.StreamResponse:
    """Streamed row by row: no campaign is ever held in memory whole. The model's own
    decisions come only with `include_model=true`, marked `decided_by: model`."""
    api = api_of(request)
    campaign = await api.coordinator.campaign(request.match_info["id"])
    status = await api.coordinator.status(campaign.id)  # one shape per file: see trainers.py
    options = ExportOptions(include_model=_flag(request, "include_model"))
    run = Export(api.ledger, campaign, request.query.get("format", "trail"), options,
                 conversations=status.conversations, history=history_of(request))
    csv = run.format == "csv"
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv" if csv else "application/x-ndjson",
        "Content-Disposition": f'attachment; filename="{campaign.id}.{run.format}.'
                               f'{"csv" if csv else "jsonl"}"'})
    await response.prepare(request)
    async for line in run.lines():
        await response.write(line.encode())
    await response.write_eof()
    return response


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise ExpertloopError(f"{name} is true or false, not {value!r}")
    return value in ("true", "1")


async def adjudicate(request: web.Request) -> web.Response:
    """Send an item to an adjudicator: 202 when queued, 200 when it waited already."""
    api = api_of(request)
    body = json.loads(await request.text() or "{}")
    item = body.get("item") if isinstance(body, dict) else None
    if not isinstance(item, str) or not item:
        raise ExpertloopError('send {"item": "<item id>"}: the item to adjudicate')
    campaign = await api.coordinator.campaign(request.match_info["id"])
    queued = await api.coordinator.adjudicate(campaign.id, item, "api")
    notes = ([] if queued else ["it waits for an adjudicator already"]) + (
        [] if campaign.spec.adjudicate else ["this campaign has adjudicate: false, so no "
                                             "adjudicator is offered its items"])
    return web.json_response({"id": campaign.id, "item": item, "queued": queued,
                              "state": "awaiting_adjudication", "notes": notes},
                             status=202 if queued else 200)


async def qualification(request: web.Request) -> web.Response:
    """Every expert's standing in the campaign's qualification, and the counts."""
    api = api_of(request)
    campaign_id = request.match_info["id"]
    results = await api.coordinator.qualification(campaign_id)
    return web.json_response({
        "id": campaign_id, "counts": qualification_counts(results).model_dump(),
        "experts": [result.model_dump() for result in results]})


async def quality(request: web.Request) -> web.Response:
    api = api_of(request)
    campaign = await api.coordinator.campaign(request.match_info["id"])
    report = await campaign_quality(api.ledger, campaign, history=history_of(request))
    return web.json_response(text=report.model_dump_json())


async def models(request: web.Request) -> web.Response:
    """How experts treat each model's drafts: accepted, edited, overridden, per day."""
    api = api_of(request)
    campaign = await api.coordinator.campaign(request.match_info["id"])
    report = await campaign_models(api.ledger, campaign, history=history_of(request))
    return web.json_response(text=report.model_dump_json())


async def pay(request: web.Request) -> web.Response:
    api = api_of(request)
    campaign = await api.coordinator.campaign(request.match_info["id"])
    report = await campaign_pay(api.ledger, campaign, history=history_of(request))
    if request.query.get("format") == "csv":
        return web.Response(text="".join(pay_csv(report)), content_type="text/csv")
    return web.json_response(text=report.model_dump_json())


async def verify(request: web.Request) -> web.Response:
    """Seal what is new, then recompute the chain; 200 either way, `ok` says which."""
    api = api_of(request)
    campaign = await api.coordinator.campaign(request.match_info["campaign"])
    await api.ledger.seal(campaign.id)
    verdict = await api.ledger.verify(campaign.id)
    return web.json_response({**verdict.model_dump(mode="json"), "summary": verdict.line()})
