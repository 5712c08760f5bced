"""Serving an emulator on this machine only: 127.0.0.1, and port 0 unless a test reserved one,
so parallel runs never collide and nothing listens beyond the loopback."""

from __future__ import annotations

from aiohttp import web


async def listen(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    """The runner (to clean up) and the port the app answers on."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
