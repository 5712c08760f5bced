"""The web process: one aiohttp application that later issues extend with the Slack events,
Telegram webhook, coordinator API and web chat routes of DESIGN.md."""

from __future__ import annotations

import asyncio

from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.dashboard.routes import add_dashboard_routes
from adapters.http.campaigns import HISTORY
from adapters.http.context import Api, ApiSettings
from adapters.http.middleware import Handler, error
from adapters.http.routes import add_api_routes
from adapters.web.routes import add_chat_routes
from bots.asks_jobs import callback_guard
from bots.channels import TOKENS, add_channel_routes
from bots.runtime import Runtime
from bots.settings import Settings
from core.errors import ExpertloopError
from core.privacy.rights import Privacy
from core.reports.quality import preload
from core.service.health import ChannelHealth

RUNTIME = web.AppKey("runtime", Runtime)
INBOXES = tuple(TOKENS)  # channels whose webhooks keep requests for the workers
PRELOAD = web.AppKey("preload", asyncio.Task[None])


def build_app(runtime: Runtime) -> web.Application:
    settings = runtime.settings
    api = ApiSettings(token=settings.api_token.get_secret_value() if settings.api_token else None,
                      public_url=settings.public_url(), max_body=settings.max_body,
                      asks_per_minute=settings.asks_per_minute,
                      callbacks_signed=settings.callback_secret is not None)
    app = web.Application(client_max_size=api.max_body, middlewares=[unavailable_without_redis])
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    add_chat_routes(app, runtime.service, runtime.store, runtime.media)
    add_channel_routes(app, runtime)  # the webhooks of the channels whose tokens are set
    add_api_routes(app, Api(runtime.coordinator, runtime.ledger,
                            Privacy(runtime.store.roles(), runtime.ledger), api,
                            runtime.service.asks, runtime.store.roles().turns,
                            callback_guard(settings).refusal))
    app[HISTORY] = runtime.history  # exports and reports read the log through it
    add_dashboard_routes(app, runtime.coordinator, runtime.ledger, api.token,
                         asks=runtime.service.asks, history=runtime.history)
    app.on_startup.append(_preload_statistics)
    return app


async def _preload_statistics(app: web.Application) -> None:
    app[PRELOAD] = asyncio.create_task(asyncio.to_thread(preload))


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_exposure(settings: Settings) -> None:
    """An API without a token is only for this machine; anywhere else it needs one."""
    if settings.api_token is None and settings.host not in LOCAL_HOSTS:
        raise ExpertloopError(f"refusing to serve on {settings.host} without "
                              "EXPERTLOOP_API_TOKEN: the coordinator API would be open")


async def healthz(request: web.Request) -> web.Response:
    """503 while Redis is away, so a load balancer (and the platforms) try again later. The
    backlog is what the webhooks kept and no worker has handled yet: a number that only grows
    means no worker is running."""
    runtime = request.app[RUNTIME]
    try:
        await asyncio.wait_for(runtime.client.ping(), timeout=2)
        backlog = {channel: await runtime.store.inbox_size(channel) for channel in INBOXES}
        channels = {channel: (await channel_health(runtime, channel)).model_dump()
                    for channel in INBOXES}
    except (RedisError, OSError, TimeoutError) as exc:
        return web.json_response({"ok": False, "redis": str(exc) or "unreachable"}, status=503)
    return web.json_response({"ok": True, "redis": "ok", "backlog": backlog,
                              "channels": channels})


async def channel_health(runtime: Runtime, channel: str) -> ChannelHealth:
    """As the processes that try the platform noted it; `off` without its token. A degraded
    channel leaves /healthz at 200: everything else is served, and it comes up by itself."""
    health = await runtime.store.channel_health(channel)
    token = TOKENS[channel]
    if getattr(runtime.settings, token.lower()) is None:
        return health.model_copy(update={"state": "off", "reason": f"{token} is not set"})
    return health


RETRY_AFTER_S = 2


@web.middleware
async def unavailable_without_redis(request: web.Request, handler: Handler
                                    ) -> web.StreamResponse:
    """A request that fails while Redis is unreachable answers 503 with Retry-After: nothing
    was recorded, and Telegram and Slack send it again on a non-2xx. PTB's and Bolt's error
    handlers swallow the Redis error and answer 500, so a 500 is checked with a ping."""
    try:
        response = await handler(request)
    except (RedisConnectionError, RedisTimeoutError):  # BusyLoadingError too: Redis is loading
        return unavailable()
    except web.HTTPInternalServerError:
        if await redis_reachable(request.app[RUNTIME]):
            raise
        return unavailable()
    if response.status == 500 and not await redis_reachable(request.app[RUNTIME]):
        return unavailable()
    return response


def unavailable() -> web.Response:
    response = error(503, "the store is unavailable; nothing was recorded, send it again",
                     [{"loc": ["redis"], "msg": "unreachable"}])
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


async def redis_reachable(runtime: Runtime) -> bool:
    try:
        await asyncio.wait_for(runtime.client.ping(), timeout=1)
    except (RedisError, OSError, TimeoutError):
        return False
    return True


async def serve(runtime: Runtime, stop: asyncio.Event) -> None:
    """Run the web process until `stop` is set."""
    check_exposure(runtime.settings)
    runner = web.AppRunner(build_app(runtime), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, runtime.settings.host, runtime.settings.port)
    await site.start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
