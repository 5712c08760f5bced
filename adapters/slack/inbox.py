"""Which Slack requests wait in the Redis inbox, and the workers' drain that runs them later.

A button press needs nothing back but a 200, so the web process keeps it (core/service/inbox.py) and
answers at once; a worker's drain hands it to Bolt afterwards. Some requests must be answered
by the response itself or within 3 seconds, so they never wait: a modal opener (its trigger_id
expires after 3 s, https://api.slack.com/interactivity/handling#modal_responses), a modal
submission (errors go back in the response), slash commands (their reply is the response),
events and url_verification."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from adapters.slack.app import KEPT_AT, build_app
from adapters.slack.channel import SlackChannel, SlackSettings
from adapters.slack.messenger import CHANNEL
from core.service.inbox import SET_ASIDE_TEXT, Handler, InboxDrain, SetAside

log = logging.getLogger("expertloop.slack")
KEPT_TTL_MS = 3_600_000  # a second delivery of the same request within an hour is kept once
INLINE_ACTIONS = re.compile(r"^el_open_")  # open a modal: trigger_id expires in 3 s
REACHED = "el_reached"  # set by the inbox app's last middleware: authorized, listeners next


class Kept(NamedTuple):
    """A press to keep: its id (a redelivery has the same), lane (the user) and payload."""

    request_id: str
    lane: str
    payload: str


def press_to_keep(body: str) -> Kept | None:
    """The press in a form-encoded interactivity body, if it may wait for the drain; None for
    anything Bolt must answer inline. The id is the payload's hash: a redelivery or a retry
    (X-Slack-Retry-Num) sends the same payload, while two presses differ at least in their
    action_ts and trigger_id."""
    if not body.startswith("payload="):
        return None
    try:
        raw = parse_qs(body, max_num_fields=1)["payload"][0]
        payload: Any = json.loads(raw)
        if payload.get("type") != "block_actions":
            return None
        user = str(payload["user"]["id"])
        actions = [str(action["action_id"]) for action in payload["actions"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # not a press we understand: Bolt says what it makes of it
    if not actions or any(INLINE_ACTIONS.match(action) for action in actions):
        return None
    return Kept(hashlib.sha256(raw.encode()).hexdigest(), user, raw)


def kept_press_handler(bolt: AsyncApp) -> Handler:
    """Run a kept payload through `bolt` (built with `from_inbox=True`: its listeners are done
    when the dispatch returns). False, so the drain tries again, when a listener raised (Bolt
    answers 500) or the request never reached the listeners (auth.test failed: Bolt then
    answers 200 with an apology, which would lose the press)."""

    async def reached(context: dict[str, Any], next: Any) -> None:  # noqa: A002 - Bolt's name
        context[REACHED] = True
        await next()

    bolt.use(reached)

    async def handle(payload: str, kept: int) -> bool:
        request = AsyncBoltRequest(body=payload, headers={"content-type": "application/json"},
                                   context={KEPT_AT: kept})
        response = await bolt.async_dispatch(request)
        if response.status == 404:
            log.warning("slack press nobody listens for: %.200s", payload)
            return True  # no listener would take it on a second try either
        return response.status < 500 and bool(request.context.get(REACHED))

    return handle


def press_drain(channel: SlackChannel, settings: SlackSettings) -> InboxDrain:
    """What a worker runs to handle the kept presses, through the channel's own listeners."""
    return InboxDrain(channel.stores.inbox, channel.stores.health, CHANNEL,
                      kept_press_handler(build_app(channel, settings, from_inbox=True)),
                      set_aside=set_aside_teller(channel))


def set_aside_teller(channel: SlackChannel) -> SetAside:
    """A press set aside after its tries: the expert gets an ephemeral "Not saved" where they
    pressed (https://api.slack.com/methods/chat.postEphemeral), and its campaign is named."""

    async def tell(payload: str) -> str | None:
        press: Any = json.loads(payload)
        campaign_id = await channel.service.campaign_for_lease(lease_of(press))
        user = str(press["user"]["id"])
        where = (press.get("container") or {}).get("channel_id") or (
            press.get("channel") or {}).get("id")
        try:
            await channel.messenger.client.chat_postEphemeral(
                channel=where or await channel.messenger.dm(user), user=user, text=SET_ASIDE_TEXT)
        except Exception:  # noqa: BLE001 - still counted: Slack may be what failed all along
            log.warning("slack user %s not told of a press set aside", user, exc_info=True)
        return campaign_id

    return tell


def lease_of(press: Any) -> str:
    """The lease a press names: a button's value is `<lease>|<choice>`, a menu's is in its
    selected option(s); empty when it names none."""
    for action in press.get("actions") or []:
        options = action.get("selected_options") or [action.get("selected_option") or {}]
        value = action.get("value") or (options[0] or {}).get("value") or ""
        if value:
            return str(value).split("|", 1)[0]
    return ""
