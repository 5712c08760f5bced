"""The Slack channel's state and work shared by its listeners and the worker: record an
answer and show it, and owe what Slack refused (the workers' delivery loop sends it)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiohttp
from pydantic import BaseModel, Field, SecretStr
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import WHY_LATER, answered_card, home_view, outcome_text
from adapters.slack.images import ImageStores, SlackImages
from adapters.slack.messenger import CHANNEL, MessageRef, Pacer, SlackMessenger
from core.domain.answers import Answer, Outcome
from core.domain.asks import decision_words as ask_said
from core.domain.asks import is_ask_token
from core.ports import Stores
from core.service.coordinator import Coordinator
from core.service.delivery import deliver, owe_card
from core.service.service import Service

log = logging.getLogger("expertloop.slack")
SAVE_FAILED = "Not saved: something went wrong on our side. Please tap again."
UPDATE_FAILED = "Saved. Slack would not update this card just now; it will shortly."
SHOW_FAILED = ("Saved. Slack would not take the next card just now; it follows shortly "
               "(or `/expertloop next` brings it).")


class SlackSettings(BaseModel):
    bot_token: SecretStr
    signing_secret: SecretStr | None = None  # needed for HTTP; Socket Mode connects out instead
    api_url: str = "https://slack.com/api/"
    post_interval_s: float = 1.0  # chat.postMessage pacing per channel, across processes
    push_interval_s: float = Field(default=30.0, gt=0)  # look at an idle expert this often


@asynccontextmanager
async def keep_alive(client: AsyncWebClient) -> AsyncIterator[None]:
    """One keep-alive HTTP session for every Web API call; slack_sdk opens one per call
    otherwise, a new connection each time."""
    session = client.session = client.session or aiohttp.ClientSession()
    try:
        yield
    finally:
        await session.close()
        client.session = None


def web_client(settings: SlackSettings) -> AsyncWebClient:
    """A Web API client that waits out 429s (Retry-After), 5xx and dropped connections."""
    return AsyncWebClient(token=settings.bot_token.get_secret_value(), base_url=settings.api_url,
                          retry_handlers=[AsyncConnectionErrorRetryHandler(),
                                          AsyncRateLimitErrorRetryHandler(max_retry_count=5),
                                          AsyncServerErrorRetryHandler(max_retry_count=3)])


def identity(user: str) -> str:
    """The expert identity a workspace member acts as: `slack:U123`."""
    return f"{CHANNEL}:{user}"


class SlackChannel:
    """What the listeners share: the service, the coordinator (for joins), one messenger, and
    the store that keeps the channel's inbox and outbox."""

    def __init__(self, service: Service, coordinator: Coordinator, messenger: SlackMessenger,
                 stores: Stores) -> None:
        self.service = service
        self.coordinator = coordinator
        self.messenger = messenger
        self.stores = stores

    async def expert_for(self, user: str) -> str | None:
        return await self.service.expert_id_for_identity(identity(user))

    async def answer(self, user: str, given: Answer, origin: MessageRef | None, *,
                     tell_failure: bool = True, said: str = "") -> None:
        """Record, update the card, post the next one. A repeat (double click, retry) finds
        the first outcome: the card is updated again and no second card is posted. Raises if
        the answer was not recorded; once it is, what Slack refuses is owed, not raised.
        `said`: a live ask's decision in words, when the listener knows more than the answer
        (an edit's changed arguments)."""
        if given.rationale is not None and origin is not None and origin.blocks:
            # its reason came with it: the answered card offers no "Add a reason"
            origin = origin._replace(blocks=[b for b in origin.blocks
                                             if b.get("block_id") != WHY_LATER])
        if is_ask_token(given.lease):
            said = said or ask_said(given.decision)
        messenger = self.messenger.replying_to(origin, said)
        try:
            outcome = await self.service.submit(given)
        except Exception:  # Slack does not resend an interaction: tell the expert instead,
            if tell_failure:  # unless the inbox tries it again
                await _tell_quietly(messenger, user, SAVE_FAILED)
            raise
        sending = [messenger.show_outcome(user, outcome)]
        if outcome.next is not None and not outcome.replayed:
            sending.append(deliver(self.service, messenger, user, outcome.next))
        # Both at once: the next card need not wait a Slack round trip for the old one's update.
        sent = await asyncio.gather(*sending, return_exceptions=True)
        await self._owe_unsent(user, given.expert, messenger, outcome, sent)

    async def _owe_unsent(self, user: str, expert_id: str, messenger: SlackMessenger,
                          outcome: Outcome, sent: Sequence[object]) -> None:
        """The answer is recorded: what did not reach the expert (the card's update, the next
        card) goes to the outbox, and the first failure is logged. Not raised: the answer is
        done, and the outbox, not a second try of the press, sends what is owed."""
        failures = [result for result in sent if isinstance(result, BaseException)]
        if not failures:
            return
        card = len(sent) > 1 and isinstance(sent[1], BaseException)
        await self.owe(user, expert_id,
                       messenger.origin if isinstance(sent[0], BaseException) else None,
                       outcome, card=card, said=messenger.said)
        await _tell_quietly(messenger, user, SHOW_FAILED if card else UPDATE_FAILED)
        log.warning("slack refused what follows an answer; owed", exc_info=failures[0])

    async def owe(self, user: str, expert_id: str, origin: MessageRef | None,
                  outcome: Outcome, *, card: bool = True, said: str = "") -> None:
        """Into the outbox: the card update and the expert's live task, resent by the workers'
        delivery loop (core/service/delivery.py)."""
        if origin is not None and outcome.status == "recorded":
            update = {"kind": "update", "channel": origin.channel, "ts": origin.ts,
                      "text": outcome_text(outcome, said),
                      "blocks": answered_card(origin.blocks or [], outcome, said)}
            await self.stores.outbox.outbox_put(CHANNEL, f"update:{origin.channel}:{origin.ts}",
                                        json.dumps(update))
        if card:
            await owe_card(self.stores.outbox, CHANNEL, user, expert_id)

    async def send_next(self, user: str, expert_id: str) -> None:
        await deliver(self.service, self.messenger, user,
                      await self.service.next_task(expert_id))

    async def link_by_email(self, expert_id: str, email: str) -> str:
        """The identity of the workspace member with this email, linked to the expert."""
        found = await self.messenger.client.users_lookupByEmail(email=email)
        member = identity(found["user"]["id"])
        await self.coordinator.link(expert_id, member)
        return member

    async def publish_home(self, user: str) -> None:
        expert_id = await self.expert_for(user)
        stats = await self.service.stats(expert_id) if expert_id else None
        await self.messenger.client.views_publish(user_id=user, view=home_view(stats))


def build_channel(settings: SlackSettings, service: Service, coordinator: Coordinator,
                  stores: Stores, images: ImageStores | None = None) -> SlackChannel:
    """`stores` keep what Slack needs across processes: pacing, the inbox and the outbox;
    `images`, where a card's images are read and their uploads kept (without them, a card
    with images is refused rather than shown without them)."""
    client = web_client(settings)
    shown = (SlackImages(client, images, stores.turns)
             if images is not None else None)
    messenger = SlackMessenger(client, service.clock,
                               Pacer(stores.turns, settings.post_interval_s), images=shown)
    return SlackChannel(service, coordinator, messenger, stores)


async def _tell_quietly(messenger: SlackMessenger, user: str, text: str) -> None:
    try:
        await messenger.tell(user, text)
    except Exception:
        log.exception("could not tell %s: %s", user, text)
