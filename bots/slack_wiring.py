"""Slack wiring: settings from the environment, Socket Mode (`expertloop slack-socket`), the
events route on the web process, Slack for the workers' delivery loop, and linking by email.
Off when SLACK_BOT_TOKEN is unset."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from adapters.redis.uploads import RedisUploads
from adapters.slack.app import build_app
from adapters.slack.channel import SlackChannel, SlackSettings, build_channel
from adapters.slack.delivery import SlackDelivery
from adapters.slack.images import ImageStores
from adapters.slack.routes import add_slack_routes
from bots.runtime import Runtime, channel_off, stop_on_signals
from bots.settings import Settings

log = logging.getLogger(__name__)


def slack_settings(settings: Settings) -> SlackSettings | None:
    if settings.slack_bot_token is None:
        return None
    return SlackSettings(bot_token=settings.slack_bot_token,
                         signing_secret=settings.slack_signing_secret,
                         api_url=settings.slack_api_url,
                         push_interval_s=settings.slack_push_interval_s)


def build(runtime: Runtime) -> tuple[SlackChannel, SlackSettings] | None:
    found = slack_settings(runtime.settings)
    if found is None:
        return None
    images = ImageStores(runtime.media, RedisUploads(runtime.store.client, runtime.store.scripts))
    return build_channel(found, runtime.service, runtime.coordinator, runtime.store.roles(),
                         images), found


def add_slack(app: web.Application, runtime: Runtime) -> None:
    """`POST /slack/events` when both SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set."""
    built = build(runtime)
    if built is not None and built[1].signing_secret is not None:
        add_slack_routes(app, *built, runtime.settings.backoff())


def slack_delivery(runtime: Runtime) -> SlackDelivery | None:
    """Slack for the workers' delivery loop, when it is on."""
    built = build(runtime)
    return SlackDelivery(*built) if built is not None else None


async def socket(runtime: Runtime, args: argparse.Namespace) -> int:
    """Socket Mode: Slack delivers over a websocket this process opens, so no public URL."""
    built, app_token = build(runtime), runtime.settings.slack_app_token
    if built is None or app_token is None:
        return await channel_off("Slack", "SLACK_BOT_TOKEN and SLACK_APP_TOKEN must both be set",
                                 args)
    handler = AsyncSocketModeHandler(build_app(*built), app_token.get_secret_value())
    stop = stop_on_signals()
    await handler.connect_async()
    try:
        await stop.wait()
    finally:
        await handler.close_async()
    return 0


async def slack_identity(runtime: Runtime, expert_id: str, identity: str) -> str | None:
    """`slack:someone@example.com` links the member with that email (users.lookupByEmail);
    returns the identity linked, or None when `identity` is not an email."""
    if not identity.startswith("slack:") or "@" not in identity:
        return None
    built = build(runtime)
    if built is None:
        raise SystemExit("error: SLACK_BOT_TOKEN is not set, so emails cannot be looked up")
    return await built[0].link_by_email(expert_id, identity.split(":", 1)[1])
