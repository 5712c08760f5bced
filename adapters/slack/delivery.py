"""Slack as the workers' delivery loop (core/service/delivery.py) sees it: auth.test says it is up,
pushes wait out the member's do-not-disturb, and an owed edit is a chat.update."""

from __future__ import annotations

import asyncio
import json
import logging

from slack_sdk.errors import SlackApiError

from adapters.slack.asks import notice_card
from adapters.slack.blocks import render_card
from adapters.slack.channel import SlackChannel, SlackSettings, keep_alive
from adapters.slack.inbox import press_drain
from adapters.slack.messenger import CHANNEL, SlackMessenger, refusal
from core.domain.cards import Card
from core.domain.experts import Expert

log = logging.getLogger("expertloop.slack")


class SlackDelivery:
    name = CHANNEL

    def __init__(self, channel: SlackChannel, settings: SlackSettings) -> None:
        self.channel = channel
        self.settings = settings
        self.push_interval_ms = round(settings.push_interval_s * 1000)

    async def probe(self) -> None:
        """auth.test: Bolt asks it before its first listener; failing there, each kept press
        would use up its tries and be set aside."""
        await self.channel.messenger.client.auth_test()

    async def handle_kept(self, stop: asyncio.Event) -> None:
        """The presses `POST /slack/events` kept, through the channel's own listeners, on one
        keep-alive HTTP session."""
        async with keep_alive(self.channel.messenger.client):
            await press_drain(self.channel, self.settings).run_until(stop)

    def messenger_for(self, expert: Expert | None) -> SlackMessenger:
        return self.channel.messenger

    async def may_disturb(self, address: str) -> bool:
        """Asked only once the core allows a push: dnd.info is rate-limited."""
        return not await self.channel.messenger.in_dnd(address)

    async def send_edit(self, entry: str) -> None:
        """The card update `SlackChannel.owe` kept: its buttons gone, the outcome shown."""
        update = json.loads(entry)
        await self.channel.messenger.client.chat_update(
            channel=update["channel"], ts=update["ts"], text=update["text"],
            blocks=update["blocks"])

    async def retire_ask(self, address: str, token: str, message_ids: list[str],
                         card: Card | None, shown_at: int | None, text: str) -> None:
        """A live ask's card nobody needs to answer any more: each message recorded at its
        delivery (`<channel>:<ts>`) is updated to the card as sent, without its controls, and
        why (chat.update). A message Slack no longer has is done."""
        shown = render_card(card, [], shown_at)[-1] if card is not None else []
        for message_id in message_ids:
            channel, _, ts = message_id.partition(":")
            try:
                await self.channel.messenger.client.chat_update(
                    channel=channel, ts=ts, text=text, blocks=notice_card(shown, text))
            except SlackApiError as exc:
                if refusal(exc) is None:
                    raise  # Slack may take it later: the notice is tried again
                log.warning("slack refused the notice on %s: %s", message_id, refusal(exc))

    def worth_retrying(self, exc: Exception) -> bool:
        return True  # a refusal for good comes back as CardRefused, which `deliver` handles

    async def close(self) -> None:
        """Nothing held: the keep-alive session ends with `handle_kept`."""
