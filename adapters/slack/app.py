"""The Slack channel as a Bolt AsyncApp. Every listener acknowledges first (Slack wants a reply
within 3 seconds), translates the payload, then awaits the core. One set of listeners serves
three ways in: HTTP requests answered inline, button presses the inbox drain hands over later
(`from_inbox=True`), and Socket Mode."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from adapters.slack.answers import (
    InvalidPayload,
    answer_from_block_action,
    answer_from_view_submission,
    held_metadata,
    rationale_from,
)
from adapters.slack.blocks import HELD, reason_modal, render_modal, stats_text, why_modal
from adapters.slack.channel import SlackChannel, SlackSettings, identity
from adapters.slack.messenger import MessageRef
from core.domain.answers import Answer
from core.domain.asks import decision_words as ask_said
from core.domain.asks import is_ask_token
from core.domain.cards import Card
from core.domain.kinds import Approve
from core.errors import ExpertloopError

log = logging.getLogger("expertloop.slack")
Ack = Callable[..., Awaitable[None]]
Body = dict[str, Any]
HELP = ("`/expertloop next` your next task · `pause` · `resume` · `stats` · "
        "`join <token>` link this Slack account to your expert profile · `help`")
# Presses that answer a card. An element's action_id is the name plus `:<choice>`: Slack wants
# action_ids unique within a block and refuses the message otherwise
# (https://docs.slack.dev/reference/block-kit/blocks/actions-block). Cards sent before that
# carry the bare name and are still answered.
ANSWERING = ("el_choose", "el_rate", "el_verify", "el_label", "el_labels", "el_skip", "el_none",
             "el_flag", "el_approve")
# When the web process kept a press: the drain puts it in the Bolt request's context, which
# Bolt hands to listeners as `context` (absent when the press came inline or by Socket Mode).
KEPT_AT = "expertloop_kept_at"
NOT_LINKED = ("Your Slack account is not linked to an expert yet. Ask your coordinator, "
              "or run `/expertloop join <token>` with the token they gave you.")


def build_app(channel: SlackChannel, settings: SlackSettings, *,
              from_inbox: bool = False) -> AsyncApp:
    """`from_inbox`: the app the inbox drain feeds. Its dispatch returns only once the listener is
    done (so a kept press is finished when it returns, or failed and tried again), and it does
    not check signatures: they were checked when the press was kept, and a press reclaimed from
    a dead process may be older than Bolt's five minutes."""
    app = AsyncApp(client=channel.messenger.client,
                   signing_secret=settings.signing_secret.get_secret_value()
                   if settings.signing_secret else "",
                   process_before_response=from_inbox,
                   request_verification_enabled=not from_inbox)
    listeners = Listeners(channel, from_inbox=from_inbox)
    for name in ANSWERING:
        app.action(re.compile(rf"^{name}(:.+)?$"))(listeners.on_button)
    app.action("el_labels_pick")(listeners.on_touch)
    app.action(re.compile(r"^el_open_(rank|correct|write|override|reject|edit)$"))(
        listeners.on_open_modal)
    app.action(re.compile(rf"^{HELD}"))(listeners.on_open_why)
    app.action("el_open_reason")(listeners.on_open_reason)
    app.view(re.compile(r"^el_(rank|correct|write|override|why|reject|edit)$"))(
        listeners.on_view)
    app.view("el_reason")(listeners.on_reason)
    app.command("/expertloop")(listeners.on_command)
    app.event("app_home_opened")(listeners.on_home_opened)
    app.action("el_home_start")(listeners.on_start)
    app.action("el_home_pause")(listeners.on_pause)
    app.error(listeners.on_error)
    return app


class Listeners:
    def __init__(self, channel: SlackChannel, *, from_inbox: bool = False) -> None:
        self.channel = channel
        self.from_inbox = from_inbox  # a failure is tried again by the drain: no "tap again"
        self.commands: dict[str, Callable[[str, str, list[str]], Awaitable[str]]] = {
            "next": self._next, "pause": self._pause, "resume": self._resume,
            "stats": self._stats, "join": self._join}

    async def on_button(self, ack: Ack, body: Body, context: AsyncBoltContext) -> None:
        await ack()
        user = body["user"]["id"]
        expert_id = await self._linked(user)
        if expert_id is None:
            return
        origin = _origin(body)
        try:
            given = answer_from_block_action(expert_id, body, _kept_at(context))
        except InvalidPayload as exc:
            await self.channel.messenger.replying_to(origin).tell(user, f"Not saved: {exc}")
            return
        await self.channel.answer(user, given, origin, tell_failure=not self.from_inbox)

    async def on_touch(self, ack: Ack, body: Body, context: AsyncBoltContext) -> None:
        """A menu changed: the expert started working on the card (their first interaction).
        Noted before the ack, one quick write, so it is in before any answer that follows."""
        leases = [element["value"].split("|")[0]
                  for block in body.get("message", {}).get("blocks", [])
                  if block.get("type") == "actions"
                  for element in block.get("elements", [])
                  if element.get("action_id", "").removeprefix(HELD) == "el_labels"]
        expert_id = await self.channel.expert_for(body["user"]["id"]) if leases else None
        if leases and expert_id is not None:
            await self.channel.service.opened(leases[0], expert_id, _kept_at(context))
        await ack()

    async def on_open_modal(self, ack: Ack, body: Body) -> None:
        """Correct, write, override and rank (and a live ask's reject and edit) open a modal
        built from the expert's live card."""
        await ack()
        user, action = body["user"]["id"], body["actions"][0]
        expert_id = await self._linked(user)
        if expert_id is None:
            return
        origin = _origin(body)
        card = await self._live_card(expert_id, str(action.get("value", "")))
        if card is None:
            await self.channel.messenger.replying_to(origin).tell(
                user, "This task is no longer yours (its time ran out or it was answered); "
                      "nothing was recorded.")
            await self.channel.send_next(user, expert_id)
            return
        await self.channel.service.opened(card.lease, expert_id)
        metadata = f"{card.lease}|{origin.channel if origin else ''}|{origin.ts if origin else ''}"
        await self.channel.messenger.client.views_open(
            trigger_id=body["trigger_id"], view=render_modal(card, action["action_id"], metadata))

    async def _live_card(self, expert_id: str, lease: str) -> Card | None:
        """The card a modal opens on, if it is still the expert's to answer: a live ask's own
        (an expert may hold several), else their live task."""
        service = self.channel.service
        if is_ask_token(lease):
            held = await service.holds_lease(expert_id, lease)
            return await service.asks.card(lease) if held else None
        task = await service.next_task(expert_id)
        return task if isinstance(task, Card) and task.lease == lease else None

    async def on_open_why(self, ack: Ack, body: Body) -> None:
        """A press on a card whose answer needs a reason: a short modal holds the choice and
        asks for it; nothing is recorded until it is submitted."""
        await ack()
        user = body["user"]["id"]
        expert_id = await self._linked(user)
        if expert_id is None:
            return
        origin = _origin(body)
        try:
            metadata = held_metadata(body, f"{origin.channel}|{origin.ts}" if origin else "|")
        except InvalidPayload as exc:
            await self.channel.messenger.replying_to(origin).tell(user, f"Not saved: {exc}")
            return
        await self.channel.service.opened(metadata.split("|")[0], expert_id)
        decision = json.loads(metadata.split("|", 3)[3])
        await self.channel.messenger.client.views_open(trigger_id=body["trigger_id"],
                                                       view=why_modal(decision, metadata))

    async def on_open_reason(self, ack: Ack, body: Body) -> None:
        """"Add a reason" on an answered card: the optional line of why, after the answer."""
        await ack()
        origin = _origin(body)
        metadata = f"{body['actions'][0].get('value', '')}|{origin.channel if origin else ''}"
        await self.channel.messenger.client.views_open(trigger_id=body["trigger_id"],
                                                       view=reason_modal(metadata))

    async def on_reason(self, ack: Ack, body: Body) -> None:
        """The optional line of why, kept beside the recorded answer (`rationale_added`)."""
        user, view = body["user"]["id"], body["view"]
        expert_id = await self.channel.expert_for(user)
        text = rationale_from(view["state"]["values"]) or ""
        lease = str(view.get("private_metadata", "")).split("|")[0]
        added = expert_id is not None and await self.channel.service.add_rationale(
            expert_id, lease, text, "slack", f"view/{view.get('id')}")
        if not added:
            await ack(response_action="errors", errors={
                "rationale": "Not saved: this answer is not yours, was not saved, or has its line "
                              "already."})
            return
        await ack()
        await self.channel.messenger.tell(user, "Reason saved beside your answer.")

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
            first = exc.block or next(iter(body["view"]["state"]["values"]), "text_0")
            await ack(response_action="errors", errors={first: str(exc)})
            return
        await ack()
        _, channel, ts = (body["view"].get("private_metadata", "") + "||").split("|")[:3]
        origin = MessageRef(channel, ts) if channel and ts else None
        await self.channel.answer(user, given, origin, said=await self._edit_said(given))

    async def _edit_said(self, given: Answer) -> str:
        """An edit in words names the arguments it changed, against the proposal."""
        if not isinstance(given.decision, Approve) or given.decision.verdict != "edited":
            return ""
        card = await self.channel.service.asks.card(given.lease)
        return ask_said(given.decision, card.ask.args if card and card.ask else None)

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
            expert = await self.channel.coordinator.redeem_invite(args[0], identity(user))
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


def _kept_at(context: AsyncBoltContext) -> int | None:
    """When the expert pressed, if the press waited in the inbox; None: they pressed now."""
    kept = context.get(KEPT_AT)
    return kept if isinstance(kept, int) else None


def _origin(body: Body) -> MessageRef | None:
    container = body.get("container", {})
    if container.get("type") != "message":
        return None
    return MessageRef(container["channel_id"], container["message_ts"],
                      body.get("message", {}).get("blocks"))
