"""`POST /slack/events` on the shared aiohttp app: events, interactivity and slash commands.

Every request's signature and timestamp are checked here first, as Bolt would check them
(https://api.slack.com/authentication/verifying-requests-from-slack): forged, unsigned or over
five minutes old gets 401 and nothing is kept or run. A button press is then kept in the
Redis inbox and acknowledged with an empty 200, so a crash after the 200 loses nothing, and
the web process stays quick for the next request; the workers hand kept presses to Bolt
(adapters/slack/inbox.py says which requests wait). Everything else goes to Bolt inline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from adapters.slack.app import build_app
from adapters.slack.channel import SlackChannel, SlackSettings, keep_alive
from adapters.slack.inbox import KEPT_TTL_MS, press_to_keep
from adapters.slack.messenger import CHANNEL
from core.ports import Clock, Health, Inbox
from core.service.health import Backoff, watched


@dataclass
class SlackRoutes:
    """What the route needs: the inline Bolt app, the check of Slack's signature, the inbox
    that keeps the presses, where Slack's health is noted, and the clock that says when."""

    inline: AsyncApp
    verifier: SignatureVerifier
    inbox: Inbox
    health: Health
    clock: Clock
    backoff: Backoff


SLACK = web.AppKey("slack_routes", SlackRoutes)


def add_slack_routes(app: web.Application, channel: SlackChannel, settings: SlackSettings,
                     backoff: Backoff | None = None) -> None:
    if settings.signing_secret is None:
        raise ValueError("POST /slack/events needs SLACK_SIGNING_SECRET")
    app[SLACK] = SlackRoutes(build_app(channel, settings),
                             SignatureVerifier(settings.signing_secret.get_secret_value()),
                             channel.stores.inbox, channel.stores.health, channel.service.clock,
                             backoff or Backoff())
    app.router.add_post("/slack/events", slack_events)
    app.cleanup_ctx.append(_lifecycle)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """auth.test at start, and again in the background while Slack does not answer, so
    /healthz tells whether this process can reach Slack; presses are kept meanwhile."""
    routes = app[SLACK]
    async with keep_alive(routes.inline.client), watched(
            routes.health, CHANNEL, routes.inline.client.auth_test, routes.backoff):
        yield


async def slack_events(request: web.Request) -> web.Response:
    routes = request.app[SLACK]
    body = (await request.read()).decode("utf-8", "replace")
    if not _signed(routes.verifier, body, request):
        return web.Response(status=401, text="invalid signature or timestamp")
    kept = press_to_keep(body)
    if kept is None:
        bolt_response = await routes.inline.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)
    await routes.inbox.inbox_put(CHANNEL, kept.request_id, kept.lane, kept.payload,
                                 KEPT_TTL_MS, routes.clock.now_ms())
    return web.Response(status=200)


def _signed(verifier: SignatureVerifier, body: str, request: web.Request) -> bool:
    try:
        return verifier.is_valid(body, request.headers.get("X-Slack-Request-Timestamp"),
                                 request.headers.get("X-Slack-Signature"))
    except ValueError:  # a timestamp that is not a number
        return False
