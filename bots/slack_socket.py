"""Slack wiring: settings from the environment, Socket Mode (`expertloop slack-socket`), the
events route on the web process, the worker's handling of the presses it kept, and linking
by email. Off when SLACK_BOT_TOKEN is unset."""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from adapters.slack.app import build_app
from adapters.slack.channel import SlackChannel, SlackSettings, build_channel, keep_alive
from adapters.slack.inbox import CHANNEL, press_drain
from adapters.slack.routes import add_slack_routes
from bots.runtime import Runtime, channel_off, stop_on_signals
from bots.settings import Settings
from core.health import Backoff, wait_until_up

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
    return build_channel(found, runtime.service, runtime.coordinator), found


def add_slack(app: web.Application, runtime: Runtime) -> None:
    """`POST /slack/events` when both SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set."""
    built = build(runtime)
    if built is not None and built[1].signing_secret is not None:
        add_slack_routes(app, *built, runtime.settings.backoff())


def drainer(runtime: Runtime) -> SlackChannel | None:
    built = build(runtime)
    return built[0] if built is not None else None


async def handle_presses(runtime: Runtime, stop: asyncio.Event) -> None:
    """The worker's share of `POST /slack/events`: until `stop`, handle the button presses the
    web processes kept (a Slack or Redis outage is waited out: the presses stay in Redis)."""
    built = build(runtime)
    if built is None:
        return
    channel, settings = built
    async with keep_alive(channel.messenger.client):
        if await _slack_answers(channel, runtime.settings.backoff(), stop):
            await press_drain(channel, settings).run_until(stop)


async def _slack_answers(channel: SlackChannel, backoff: Backoff, stop: asyncio.Event) -> bool:
    """Wait until Slack answers auth.test (False if stopped first), the channel degraded in
    /healthz meanwhile. Bolt asks it before its first listener; failing there, each press
    would use up its tries and be set aside."""
    return await wait_until_up(channel.service.store, CHANNEL,
                               channel.messenger.client.auth_test, backoff, stop)


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
