"""Long polling, for a developer's laptop where Telegram cannot reach a webhook."""

from __future__ import annotations

import asyncio

from adapters.telegram.app import TelegramBot


async def run_polling(telegram: TelegramBot, stop: asyncio.Event, timeout_s: int = 10) -> None:
    """getUpdates until `stop` is set."""
    application = telegram.application
    assert application.updater is not None, "build_telegram(..., polling=True)"
    async with application:
        await application.updater.start_polling(timeout=timeout_s, drop_pending_updates=False)
        await application.start()
        try:
            await stop.wait()
        finally:
            await application.updater.stop()
            await application.stop()
