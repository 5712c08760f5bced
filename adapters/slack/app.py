"""The Slack channel as a Bolt AsyncApp. Every listener acknowledges first (Slack wants a reply
within 3 seconds), translates the payload, then awaits the core."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, SecretStr
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.answers import (
    InvalidPayload,
    answer_from_block_action,
    answer_from_view_submission,
)
from adapters.slack.blocks import (
    answered_card,
    home_view,
    outcome_text,
    render_modal,
    stats_text,
)
from adapters.slack.messenger import MessageRef, Pacer, SlackMessenger
from core.answers import Answer, Outcome
from core.cards import Card
from core.coordinator import Coordinator
from core.delivery import deliver
from core.errors import ExpertloopError
from core.service import Service

log = logging.getLogger("expertloop.slack")
Ack = Callable[..., Awaitable[None]]
Body = dict[str, Any]
HELP = ("`/expertloop next` your next task · `pause` · `resume` · `stats` · "
        "`join <token>` link this Slack account to your expert profile · `help`")
NOT_LINKED = ("Your Slack account is not linked to an expert yet. Ask your coordinator, "
              "or run `/expertloop join <token>` with the token they gave you.")
SAVE_FAILED = "Not saved: something went wrong on our side. Please tap again."
SHOW_FAILED = ("Saved. Slack would not take the next card just now; it follows shortly "
               "(or `/expertloop next` brings it).")


class SlackSettings(BaseModel):
    bot_token: SecretStr
    signing_secret: SecretStr | None = None  # needed for HTTP; Socket Mode connects out instead
    api_url: str = "https://slack.com/api/"
    post_interval_s: float = 1.0  # chat.postMessage pacing per channel


def web_client(settings: SlackSettings) -> AsyncWebClient:
    """A Web API client that waits out 429s (Retry-After), 5xx and dropped connections."""
    return AsyncWebClient(token=settings.bot_token.get_secret_value(), base_url=settings.api_url,
                          retry_handlers=[AsyncConnectionErrorRetryHandler(),
                                          AsyncRateLimitErrorRetryHandler(max_retry_count=5),
                                          AsyncServerErrorRetryHandler(max_retry_count=3)])


class SlackChannel:
    """What the listeners share: the service, the coordinator (for joins), one messenger."""

    def __init__(self, service: Service, coordinator: Coordinator,
                 messenger: SlackMessenger) -> None:
        self.service = service
        self.coordinator = coordinator
        self.messenger = messenger

    async def expert_for(self, user: str) -> str | None:
        return await self.service.store.expert_for_identity(f"slack:{user}")

    async def answer(self, user: str, given: Answer, origin: MessageRef | None) -> None:
        """Record, update the card, post the next one. A repeat (double click, retry) finds
        the first outcome: the card is updated again and no second card is posted."""
        messenger = self.messenger.replying_to(origin)
        try:
            outcome = await self.service.submit(given)
        except Exception:  # Slack does not resend an interaction: tell the expert instead
            await _tell_quietly(messenger, user, SAVE_FAILED)
            raise
        shown = False
        try:
            await messenger.show_outcome(user, outcome)
            shown = True
            if outcome.next is not None and not outcome.replayed:
                await deliver(self.service, messenger, user, outcome.next)
        except Exception:  # recorded: owe the expert the confirmation and the live task
            await self.owe(user, given.expert, None if shown else messenger.origin, outcome)
            await _tell_quietly(messenger, user, SHOW_FAILED)
            raise

    async def owe(self, user: str, expert_id: str, origin: MessageRef | None,
                  outcome: Outcome) -> None:
        """Into the outbox: the card update and the expert's live task, resent by `drain`."""
        store = self.service.store
        if origin is not None and outcome.status == "recorded":
            update = {"kind": "update", "channel": origin.channel, "ts": origin.ts,
                      "text": outcome_text(outcome),
                      "blocks": answered_card(origin.blocks or [], outcome)}
            await store.outbox_put("slack", f"update:{origin.channel}:{origin.ts}",
                                   json.dumps(update))
        await store.outbox_put("slack", f"card:{user}",
                               json.dumps({"kind": "card", "user": user, "expert": expert_id}))

    async def drain(self, limit: int = 100) -> int:
        """Send what the outbox holds; an entry leaves only once Slack took it. A card is the
        expert's live task asked afresh (`next_task` hands the same lease back), so a card
        owed twice is still sent once."""
        store, sent = self.service.store, 0
        for key, raw in (await store.outbox_items("slack", limit)).items():
            entry = json.loads(raw)
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
            await store.outbox_done("slack", key)
            sent += 1
        return sent

    async def send_next(self, user: str, expert_id: str) -> None:
        await deliver(self.service, self.messenger, user,
                      await self.service.next_task(expert_id))

    async def push(self, expert_id: str) -> bool:
        """Offer work unasked: never in quiet hours or Slack do-not-disturb, never a notice."""
        expert = await self.service.store.load_expert(expert_id)
        users = [i.split(":", 1)[1] for i in (expert.identities if expert else [])
                 if i.startswith("slack:")]
        if not users or await self.messenger.in_dnd(users[0]):
            return False
        task = await self.service.next_task(expert_id, pushed=True)
        if isinstance(task, Card):
            await deliver(self.service, self.messenger, users[0], task)
        return isinstance(task, Card)

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
                               Pacer(settings.post_interval_s))
    return SlackChannel(service, coordinator, messenger)


def build_app(channel: SlackChannel, settings: SlackSettings) -> AsyncApp:
    app = AsyncApp(client=channel.messenger.client,
                   signing_secret=settings.signing_secret.get_secret_value()
                   if settings.signing_secret else "")
    listeners = Listeners(channel)
    app.action(re.compile(r"^el_(choose|rate|verify|label|labels|skip|none|flag)$"))(
        listeners.on_button)
    app.action("el_labels_pick")(listeners.on_touch)
    app.action(re.compile(r"^el_open_"))(listeners.on_open_modal)
    app.view(re.compile(r"^el_(rank|correct|write|override)$"))(listeners.on_view)
    app.command("/expertloop")(listeners.on_command)
    app.event("app_home_opened")(listeners.on_home_opened)
    app.action("el_home_start")(listeners.on_start)
    app.action("el_home_pause")(listeners.on_pause)
    app.error(listeners.on_error)
    return app


class Listeners:
    def __init__(self, channel: SlackChannel) -> None:
        self.channel = channel
        self.commands: dict[str, Callable[[str, str, list[str]], Awaitable[str]]] = {
            "next": self._next, "pause": self._pause, "resume": self._resume,
            "stats": self._stats, "join": self._join}

    async def on_button(self, ack: Ack, body: Body) -> None:
        await ack()
        user = body["user"]["id"]
        expert_id = await self._linked(user)
        if expert_id is None:
            return
        origin = _origin(body)
        try:
            given = answer_from_block_action(expert_id, body)
        except InvalidPayload as exc:
            await self.channel.messenger.replying_to(origin).tell(user, f"Not saved: {exc}")
            return
        await self.channel.answer(user, given, origin)

    async def on_touch(self, ack: Ack, body: Body) -> None:
        """A menu changed: the expert started working on the card (their first interaction)."""
        await ack()
        for block in body.get("message", {}).get("blocks", []):
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == "el_labels":
                    await self.channel.service.opened(element["value"].split("|")[0])
                    return

    async def on_open_modal(self, ack: Ack, body: Body) -> None:
        """Correct, write, override and rank open a modal built from the expert's live card."""
        await ack()
        user, action = body["user"]["id"], body["actions"][0]
        expert_id = await self._linked(user)
        if expert_id is None:
            return
        origin = _origin(body)
        task = await self.channel.service.next_task(expert_id)
        if not isinstance(task, Card) or task.lease != action["value"]:
            await self.channel.messenger.replying_to(origin).tell(
                user, "This task is no longer yours (its time ran out or it was answered); "
                      "nothing was recorded.")
            await deliver(self.channel.service, self.channel.messenger, user, task)
            return
        await self.channel.service.opened(task.lease)
        metadata = f"{task.lease}|{origin.channel if origin else ''}|{origin.ts if origin else ''}"
        await self.channel.messenger.client.views_open(
            trigger_id=body["trigger_id"],
            view=render_modal(task, action["action_id"], metadata))

    async def on_view(self, ack: Ack, body: Body) -> None:
        """An invalid modal is answered in place (response_action errors) and stays open."""
        user = body["user"]["id"]
        expert_id = await self.channel.expert_for(user)
        if expert_id is None:
            await ack(response_action="errors", errors={"text_0": NOT_LINKED})
            return
        try:
            given = answer_from_view_submission(expert_id, body)
        except InvalidPayload as exc:
            first = next(iter(body["view"]["state"]["values"]), "text_0")
            await ack(response_action="errors", errors={first: str(exc)})
            return
        await ack()
        _, channel, ts = (body["view"].get("private_metadata", "") + "||").split("|")[:3]
        origin = MessageRef(channel, ts) if channel and ts else None
        await self.channel.answer(user, given, origin)

    async def on_command(self, ack: Ack, command: Body) -> None:
        words = str(command.get("text", "")).split()
        verb, args = (words[0].lower(), words[1:]) if words else ("help", [])
        user = command["user_id"]
        run = self.commands.get(verb)
        expert_id = await self.channel.expert_for(user)
        if run is None:
            await ack(text=HELP)
        elif expert_id is None and verb != "join":
            await ack(text=NOT_LINKED)
        else:
            await ack(text=await run(user, expert_id or "", args))
        if verb in ("next", "resume") and expert_id is not None:
            await self.channel.send_next(user, expert_id)

    async def _next(self, user: str, expert_id: str, args: list[str]) -> str:
        return "Your next task is in your direct messages with me."

    async def _pause(self, user: str, expert_id: str, args: list[str]) -> str:
        await self.channel.service.set_paused(expert_id, True)
        return "Paused: no new tasks until you `/expertloop resume`."

    async def _resume(self, user: str, expert_id: str, args: list[str]) -> str:
        await self.channel.service.set_paused(expert_id, False)
        return "Welcome back: your next task is in your direct messages with me."

    async def _stats(self, user: str, expert_id: str, args: list[str]) -> str:
        return stats_text(await self.channel.service.stats(expert_id))

    async def _join(self, user: str, expert_id: str, args: list[str]) -> str:
        if len(args) != 1:
            return "Usage: `/expertloop join <token>` with the token your coordinator sent."
        try:
            expert = await self.channel.coordinator.redeem_invite(args[0], f"slack:{user}")
        except ExpertloopError as exc:
            return f"Not linked: {exc}"
        if expert is None:
            return "Not linked: this token is unknown, used already or expired."
        return f"Linked: you are {expert.name} here now. `/expertloop next` starts a task."

    async def on_home_opened(self, ack: Ack, event: Body) -> None:
        await ack()
        if event.get("tab", "home") == "home":
            await self.channel.publish_home(event["user"])

    async def on_start(self, ack: Ack, body: Body) -> None:
        await self._home_toggle(ack, body, paused=False)

    async def on_pause(self, ack: Ack, body: Body) -> None:
        await self._home_toggle(ack, body, paused=True)

    async def _home_toggle(self, ack: Ack, body: Body, paused: bool) -> None:
        await ack()
        user = body["user"]["id"]
        expert_id = await self.channel.expert_for(user)
        if expert_id is None:
            return
        await self.channel.service.set_paused(expert_id, paused)
        await self.channel.publish_home(user)
        if not paused:
            await self.channel.send_next(user, expert_id)

    async def on_error(self, error: Exception, body: Body) -> None:
        log.exception("slack listener failed", exc_info=error)

    async def _linked(self, user: str) -> str | None:
        expert_id = await self.channel.expert_for(user)
        if expert_id is None:
            await self.channel.messenger.tell(user, NOT_LINKED)
        return expert_id


async def _tell_quietly(messenger: SlackMessenger, user: str, text: str) -> None:
    try:
        await messenger.tell(user, text)
    except Exception:
        log.exception("could not tell %s: %s", user, text)


def _origin(body: Body) -> MessageRef | None:
    container = body.get("container", {})
    if container.get("type") != "message":
        return None
    return MessageRef(container["channel_id"], container["message_ts"],
                      body.get("message", {}).get("blocks"))
