"""The Slack channel's state and work shared by its listeners and the worker: record an
answer and show it, push work, keep and drain the outbox of what Slack refused."""

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

from adapters.slack.blocks import answered_card, home_view, outcome_text
from adapters.slack.messenger import MessageRef, Pacer, SlackMessenger
from core.answers import Answer, Outcome
from core.cards import Card
from core.coordinator import Coordinator
from core.delivery import deliver
from core.service import Service

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


class SlackChannel:
    """What the listeners share: the service, the coordinator (for joins), one messenger."""

    def __init__(self, service: Service, coordinator: Coordinator,
                 messenger: SlackMessenger, push_interval_s: float = 30.0) -> None:
        self.service = service
        self.coordinator = coordinator
        self.messenger = messenger
        self.push_interval_s = push_interval_s

    async def expert_for(self, user: str) -> str | None:
        return await self.service.store.expert_for_identity(f"slack:{user}")

    async def answer(self, user: str, given: Answer, origin: MessageRef | None, *,
                     tell_failure: bool = True) -> None:
        """Record, update the card, post the next one. A repeat (double click, retry) finds
        the first outcome: the card is updated again and no second card is posted. Raises if
        the answer was not recorded; once it is, what Slack refuses is owed, not raised."""
        messenger = self.messenger.replying_to(origin)
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
                       outcome, card=card)
        await _tell_quietly(messenger, user, SHOW_FAILED if card else UPDATE_FAILED)
        log.warning("slack refused what follows an answer; owed", exc_info=failures[0])

    async def owe(self, user: str, expert_id: str, origin: MessageRef | None,
                  outcome: Outcome, *, card: bool = True) -> None:
        """Into the outbox: the card update and the expert's live task, resent by `drain`."""
        store = self.service.store
        if origin is not None and outcome.status == "recorded":
            update = {"kind": "update", "channel": origin.channel, "ts": origin.ts,
                      "text": outcome_text(outcome),
                      "blocks": answered_card(origin.blocks or [], outcome)}
            await store.outbox_put("slack", f"update:{origin.channel}:{origin.ts}",
                                   json.dumps(update))
        if card:
            await store.outbox_put("slack", f"card:{user}",
                                   json.dumps({"kind": "card", "user": user,
                                               "expert": expert_id}))

    async def drain(self, limit: int = 100) -> int:
        """Send what the outbox holds; an entry leaves only once Slack took it. A card is the
        expert's live task asked afresh (`next_task` hands the same lease back), so a card
        owed twice is still sent once."""
        store, sent = self.service.store, 0
        for key, owed in (await store.outbox_items("slack", limit)).items():
            entry = json.loads(owed.entry)
            try:
                if entry["kind"] == "card":
                    await self.send_next(entry["user"], entry["expert"])
                else:
                    await self.messenger.client.chat_update(
                        channel=entry["channel"], ts=entry["ts"], text=entry["text"],
                        blocks=entry["blocks"])
            except Exception:
                log.warning("outbox entry %s not sent yet", key, exc_info=True)
                continue
            sent += await store.outbox_done("slack", key, owed)
        return sent

    async def send_next(self, user: str, expert_id: str) -> None:
        await deliver(self.service, self.messenger, user,
                      await self.service.next_task(expert_id))

    async def push_idle(self) -> int:
        """Offer a card to every linked expert who is free for one; the worker calls this each
        tick, and any number of workers may. Returns how many cards went out."""
        store, pushed = self.service.store, 0
        campaigns = await store.list_campaigns()
        owed = await self._owed_cards()
        for expert_id in sorted(set((await store.identities_on("slack")).values())):
            try:
                pushed += await self.push(expert_id, campaigns, owed)
            except Exception:  # Slack or Redis away for this one: the next tick tries again
                log.warning("could not push to %s", expert_id, exc_info=True)
        return pushed

    async def push(self, expert_id: str, campaigns: list[str] | None = None,
                   owed: set[str] | None = None) -> bool:
        """Offer work unasked, one card at a time: never to a paused expert, in their quiet
        hours, in Slack's do-not-disturb, past their daily cap, or on top of a card still
        waiting for them, and never a notice. The claim on `push:slack:<expert>` lets one
        process at a time push one expert; it stays until it expires, so an expert is looked
        at (and dnd.info, a rate-limited method, asked) at most once per push interval."""
        store = self.service.store
        user = await self._pushable(expert_id, campaigns, owed)
        if user is None or not await store.take_turn(f"push:slack:{expert_id}",
                                                     round(self.push_interval_s * 1000)):
            return False
        if await self.messenger.in_dnd(user):
            return False
        task = await self.service.next_task(expert_id, pushed=True)
        if not isinstance(task, Card) or task.resumed:  # taken since we looked: shown by them
            return False
        try:
            await deliver(self.service, self.messenger, user, task)
        except Exception:  # leased but maybe not shown: owe it, and the drain resends it
            await store.outbox_put("slack", f"card:{user}",
                                   json.dumps({"kind": "card", "user": user, "expert": expert_id}))
            raise
        return True

    async def _pushable(self, expert_id: str, campaigns: list[str] | None,
                        owed: set[str] | None) -> str | None:
        """The expert's Slack user when nothing rules a push out, from reads of our own (no
        Slack call) before the claim: the core's rules, and no card owed to them."""
        store = self.service.store
        expert = await self.service.may_push(expert_id, campaigns if campaigns is not None
                                             else await store.list_campaigns())
        users = [i.split(":", 1)[1] for i in (expert.identities if expert else [])
                 if i.startswith("slack:")]
        if not users or users[0] in (owed if owed is not None else await self._owed_cards()):
            return None
        return users[0]

    async def _owed_cards(self) -> set[str]:
        """Users the outbox owes a card: the drain sends them their live task."""
        entries = await self.service.store.outbox_items("slack", 10_000)
        return {json.loads(owed.entry)["user"] for key, owed in entries.items()
                if key.startswith("card:")}

    async def link_by_email(self, expert_id: str, email: str) -> str:
        """The identity of the workspace member with this email, linked to the expert."""
        found = await self.messenger.client.users_lookupByEmail(email=email)
        identity = f"slack:{found['user']['id']}"
        await self.coordinator.link(expert_id, identity)
        return identity

    async def publish_home(self, user: str) -> None:
        expert_id = await self.expert_for(user)
        stats = await self.service.stats(expert_id) if expert_id else None
        await self.messenger.client.views_publish(user_id=user, view=home_view(stats))


def build_channel(settings: SlackSettings, service: Service,
                  coordinator: Coordinator) -> SlackChannel:
    messenger = SlackMessenger(web_client(settings), service.clock,
                               Pacer(service.store, settings.post_interval_s))
    return SlackChannel(service, coordinator, messenger, settings.push_interval_s)


async def _tell_quietly(messenger: SlackMessenger, user: str, text: str) -> None:
    try:
        await messenger.tell(user, text)
    except Exception:
        log.exception("could not tell %s: %s", user, text)
