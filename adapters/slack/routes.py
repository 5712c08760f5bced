"""`POST /slack/events` on the shared aiohttp app: events, interactivity and slash commands.
Bolt verifies the signature and refuses a timestamp older than five minutes with 401
(https://api.slack.com/authentication/verifying-requests-from-slack) before any listener runs."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

BOLT = web.AppKey("slack_bolt_app", AsyncApp)


def add_slack_routes(app: web.Application, bolt: AsyncApp) -> None:
    app[BOLT] = bolt
    app.router.add_post("/slack/events", slack_events)
    app.on_startup.append(_open_session)
    app.on_cleanup.append(_close_session)


async def _open_session(app: web.Application) -> None:
    """One keep-alive session for every Web API call; slack_sdk opens one per call otherwise."""
    client = app[BOLT].client
    if client.session is None:
        client.session = aiohttp.ClientSession()


async def _close_session(app: web.Application) -> None:
    session = app[BOLT].client.session
    if session is not None:
        await session.close()


async def slack_events(request: web.Request) -> web.Response:
    bolt_response = await request.app[BOLT].async_dispatch(await to_bolt_request(request))
    return await to_aiohttp_response(bolt_response)
