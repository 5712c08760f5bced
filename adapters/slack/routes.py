"""`POST /slack/events` on the shared aiohttp app: events, interactivity and slash commands.
Bolt verifies the signature and refuses a timestamp older than five minutes with 401
(https://api.slack.com/authentication/verifying-requests-from-slack) before any listener runs."""

from __future__ import annotations

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

BOLT = web.AppKey("slack_bolt_app", AsyncApp)


def add_slack_routes(app: web.Application, bolt: AsyncApp) -> None:
    app[BOLT] = bolt
    app.router.add_post("/slack/events", slack_events)


async def slack_events(request: web.Request) -> web.Response:
    bolt_response = await request.app[BOLT].async_dispatch(await to_bolt_request(request))
    return await to_aiohttp_response(bolt_response)
