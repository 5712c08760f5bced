"""Invite links into the bot: `https://t.me/<bot>?start=<token>` opens the chat and sends
`/start <token>` (https://core.telegram.org/bots/features#deep-linking)."""

from __future__ import annotations

from telegram import Bot

from adapters.telegram.app import TelegramSettings


async def invite_link(settings: TelegramSettings, token: str) -> str:
    """For a process without a running bot (the CLI): getMe tells the bot's name."""
    async with Bot(settings.token.get_secret_value(), base_url=settings.api_url) as bot:
        return deep_link(bot, token)


def deep_link(bot: Bot, token: str) -> str:
    """`bot` must be initialized (it knows its username)."""
    return f"https://t.me/{bot.username}?start={token}"
