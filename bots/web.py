"""The web process: one aiohttp application that later issues extend with the Slack events,
Telegram webhook, coordinator API and web chat routes of DESIGN.md."""

from __future__ import annotations

import asyncio

from aiohttp import web
from redis.exceptions import RedisError

from adapters.web.routes import add_chat_routes
from bots.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)


def build_app(runtime: Runtime) -> web.Application:
    app = web.Application(client_max_size=16 << 20)
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    add_chat_routes(app, runtime.service, runtime.store)
    return app


async def healthz(request: web.Request) -> web.Response:
    """503 while Redis is away, so a load balancer (and the platforms) try again later."""
    runtime = request.app[RUNTIME]
    try:
        await asyncio.wait_for(runtime.client.ping(), timeout=2)
    except (RedisError, OSError, TimeoutError) as exc:
        return web.json_response({"ok": False, "redis": str(exc) or "unreachable"}, status=503)
    return web.json_response({"ok": True, "redis": "ok"})


async def serve(runtime: Runtime, stop: asyncio.Event) -> None:
    """Run the web process until `stop` is set."""
    runner = web.AppRunner(build_app(runtime), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, runtime.settings.host, runtime.settings.port)
    await site.start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
