"""The chat channels a deployment runs: each one whose token is set, in the web process (its
routes, its line in /healthz) and in the workers (one delivery loop each). A new channel is
an adapter plus a line here; nothing else names a platform."""

from __future__ import annotations

from aiohttp import web

from bots.runtime import Runtime
from bots.slack_wiring import add_slack, slack_delivery
from bots.telegram_wiring import add_telegram, telegram_delivery
from core.service.delivery import Channel, DeliveryLoop

TOKENS = {"telegram": "TELEGRAM_BOT_TOKEN", "slack": "SLACK_BOT_TOKEN"}  # absent: off


def add_channel_routes(app: web.Application, runtime: Runtime) -> None:
    """`POST /telegram/webhook` and `POST /slack/events`, for the channels whose tokens are
    set."""
    add_telegram(app, runtime)
    add_slack(app, runtime)


def delivery_loops(runtime: Runtime) -> list[DeliveryLoop]:
    """One per channel that is on, in this order each tick."""
    found: list[Channel | None] = [telegram_delivery(runtime), slack_delivery(runtime)]
    return [delivery_loop(runtime, channel) for channel in found if channel is not None]


def delivery_loop(runtime: Runtime, channel: Channel) -> DeliveryLoop:
    return DeliveryLoop(runtime.service, channel, runtime.settings.backoff())
