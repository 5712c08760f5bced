"""The Slack Messenger: cards go to the expert's direct message with the bot; an answered card
is updated in place so its buttons are gone and it says what was recorded."""

from __future__ import annotations

import asyncio
import time
from typing import Any, NamedTuple

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import Block, answered_card, outcome_text, render_card
from adapters.slack.images import SlackImages, shown_as
from core.domain.answers import Outcome
from core.domain.cards import Card
from core.errors import CardRefused
from core.ports import Clock, Delivery, Turns

CHANNEL = "slack"  # the channel's name: on answers, identities (slack:U123) and its Redis keys


class MessageRef(NamedTuple):
    """The message an interaction came from, and its blocks when Slack sent them along."""

    channel: str
    ts: str
    blocks: list[Block] | None = None


TRANSIENT = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
             "request_timeout"}  # https://api.slack.com/methods/chat.postMessage#errors


def refusal(exc: SlackApiError) -> str | None:
    """Slack's words when it refused a call for good: `ok: false` (invalid_blocks,
    channel_not_found, ...) or a 4xx other than 429; None for what may pass on a later try
    (a 429 the client stopped waiting out, a 5xx, an error Slack lists as temporary)."""
    status = exc.response.status_code
    error = str(exc.response.get("error") or "")
    if status == 429 or status >= 500 or error in TRANSIENT:
        return None
    details = exc.response.get("errors") or exc.response.get("response_metadata") or ""
    return f"{error or status}: {details}" if details else (error or str(status))


class Pacer:
    """chat.postMessage allows about one message per second per channel
    (https://api.slack.com/methods/chat.postMessage#rate_limiting). Each channel's next free
    slot is kept in Redis (through the store), so every process that posts (web processes,
    Socket Mode, workers) spaces its messages with all the others' instead of drawing 429s."""

    def __init__(self, store: Turns, interval_s: float = 1.0) -> None:
        self.store = store
        self.interval_s = interval_s

    async def wait(self, channel: str) -> None:
        if self.interval_s <= 0:
            return
        delay_ms = await self.store.next_slot(f"{CHANNEL}:{channel}",
                                              round(self.interval_s * 1000))
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)


class SlackMessenger:
    """`address` is the expert's Slack user id (U123)."""

    channel = CHANNEL

    def __init__(self, client: AsyncWebClient, clock: Clock, pacer: Pacer,
                 origin: MessageRef | None = None, images: SlackImages | None = None,
                 said: str = "") -> None:
        self.client = client
        self.clock = clock
        self.pacer = pacer
        self.origin = origin
        self.images = images  # None: no media store wired, so a card with images is refused
        self.said = said  # a live ask's decision in words, for the answered card
        self._dms: dict[str, str] = {}

    def replying_to(self, origin: MessageRef | None, said: str = "") -> SlackMessenger:
        """The same messenger, answering an interaction with the message it came from."""
        twin = SlackMessenger(self.client, self.clock, self.pacer, origin, self.images, said)
        twin._dms = self._dms
        return twin

    async def dm(self, user: str) -> str:
        if user not in self._dms:
            opened = await self.client.conversations_open(users=user)
            self._dms[user] = opened["channel"]["id"]
        return self._dms[user]

    async def post(self, channel: str, blocks: list[Block], text: str) -> str:
        await self.pacer.wait(channel)
        sent = await self.client.chat_postMessage(channel=channel, blocks=blocks, text=text)
        return str(sent["ts"])

    async def send_card(self, address: str, card: Card) -> Delivery:
        """Raises CardRefused when Slack refuses the card for good (see `refusal`)."""
        asked = self.clock.now_ms()
        try:
            channel = await self.dm(address)
            ts = await self._post_card(channel, card)
        except SlackApiError as exc:
            reason = refusal(exc)
            if reason is None:
                raise
            raise CardRefused(reason) from exc
        went = tuple({"sha256": image.sha256, "as": shown_as(image)} for image in card.images)
        return Delivery(message_id=f"{channel}:{ts}", at=self._landed(ts, asked), images=went)

    async def _post_card(self, channel: str, card: Card) -> str:
        """The card's messages; the last one's ts. A cached file Slack no longer has (deleted
        since) is forgotten and the images uploaded again, once."""
        files = await self._files(card)
        try:
            return await self._post_messages(channel, card, files)
        except SlackApiError as exc:
            if not files or "invalid slack file" not in str(exc.response.get("errors")):
                raise
            await self.images.forget(card, files)  # type: ignore[union-attr]
            return await self._post_messages(channel, card, await self._files(card))

    async def _files(self, card: Card) -> list[str]:
        if not card.images:
            return []
        if self.images is None:
            raise CardRefused("this card has images and no media store is wired to Slack")
        return await self.images.files_for(card)

    async def _post_messages(self, channel: str, card: Card, files: list[str]) -> str:
        ts = ""
        for blocks in render_card(card, files, self.clock.now_ms()):
            ts = await self.post(channel, blocks, f"New task: {card.title}")
        return ts

    def _landed(self, ts: str, asked: int) -> int:
        """When Slack stamped the message (its `ts` is epoch seconds), kept between our asking
        and our hearing back, so a skewed clock never moves an expert's time."""
        try:
            stamped = int(float(ts) * 1000)
        except ValueError:
            stamped = asked
        return min(max(stamped, asked), self.clock.now_ms())

    async def send_notice(self, address: str, text: str) -> Delivery:
        channel = await self.dm(address)
        blocks = [{"type": "section", "text": {"type": "plain_text", "text": text[:3000]}}]
        ts = await self.post(channel, blocks, text[:3000])
        return Delivery(message_id=f"{channel}:{ts}", at=self.clock.now_ms())

    async def show_outcome(self, address: str, outcome: Outcome) -> None:
        """A refusal is told to the expert alone and leaves the card as it is."""
        if outcome.status == "refused":
            await self.tell(address, outcome_text(outcome, self.said))
        elif self.origin is not None:
            blocks = answered_card(self.origin.blocks or [], outcome, self.said)
            await self.client.chat_update(channel=self.origin.channel, ts=self.origin.ts,
                                          blocks=blocks, text=outcome_text(outcome, self.said))

    async def tell(self, address: str, text: str) -> None:
        """An ephemeral line in the expert's DM with the bot."""
        channel = self.origin.channel if self.origin else await self.dm(address)
        await self.client.chat_postEphemeral(channel=channel, user=address, text=text)

    async def in_dnd(self, user: str) -> bool:
        """Slack's do-not-disturb: snoozed, or inside the scheduled window
        (https://api.slack.com/methods/dnd.info)."""
        info: Any = await self.client.dnd_info(user=user)
        now = time.time()
        scheduled = bool(info.get("dnd_enabled")) and (
            info.get("next_dnd_start_ts", 0) <= now < info.get("next_dnd_end_ts", 0))
        return bool(info.get("snooze_enabled")) or scheduled
