"""A local Slack: the Web API methods expertloop calls, with Slack's wire format and limits, and
a user who presses buttons, submits modals and types slash commands, signed as Slack signs.

Every blocks payload it receives (chat.postMessage, chat.update, chat.postEphemeral,
views.open, views.update, views.publish and posts to an interaction's response_url) goes
through tests/emulators/block_kit.py: slack_sdk's own Block Kit models plus the documented rules
they leave unchecked (duplicate action_id in a block, duplicate block_id, 50 blocks a message and
100 a view, text lengths, overflow options); its docstring lists each rule and its source. A
breach is answered as Slack does: HTTP 200, `ok: false`, `error: invalid_blocks` (views:
`invalid_arguments`), `errors: ["... [json-pointer:/blocks/8/elements/1/action_id]", ...]`.
Files come by Slack's external upload flow (tests/emulators/slack_files.py), and an image naming a
file the workspace does not hold, or holds but has not processed yet, is refused with
`invalid slack file`."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from tests.emulators.block_kit import refusals_of_message, refusals_of_view
from tests.emulators.local import listen
from tests.emulators.slack_files import SlackFiles

Json = dict[str, Any]
BOT_TOKEN = "xoxb-expertloop-test"
APP_TOKEN = "xapp-1-expertloop-test"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class Call:
    method: str
    args: Json
    at: float = field(default_factory=time.monotonic)  # when the emulator received it


@dataclass
class SlackEmulator:
    token: str = BOT_TOKEN
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], Json] = field(default_factory=dict)
    views: dict[str, Json] = field(default_factory=dict)
    homes: dict[str, Json] = field(default_factory=dict)
    responses: list[Json] = field(default_factory=list)  # what was posted to response_urls
    emails: dict[str, str] = field(default_factory=dict)
    dnd: dict[str, Json] = field(default_factory=dict)
    failures: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    refusals: dict[str, list[str]] = field(default_factory=dict)  # method -> errors to give
    triggers: dict[str, str] = field(default_factory=dict)  # trigger_id -> the user's id
    opened: dict[str, list[str]] = field(default_factory=dict)  # user -> view ids, in order
    latest: dict[str, Json] = field(default_factory=dict)  # channel -> last message posted
    sockets: list[web.WebSocketResponse] = field(default_factory=list)  # Socket Mode clients
    acks: list[Json] = field(default_factory=list)  # what Socket Mode clients sent back
    files: SlackFiles = field(default_factory=SlackFiles)  # uploads, with the bytes received
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition | None = None  # notified at each call answered
    _posts: dict[str, asyncio.Event] = field(default_factory=dict)  # set at a post to a channel
    url: str = ""
    # A test's wiring, not Slack's: awaited after the app answers a user's request 2xx, until
    # the app has done what the request asked (presses wait in its inbox). None: no wait.
    settle: Callable[[], Awaitable[None]] | None = None

    async def start(self, port: int = 0) -> str:
        """On `port` (0: any free one); a test may reserve one, so the app's first calls are
        refused until the emulator starts (Slack unreachable at start)."""
        app = web.Application()
        app.router.add_post("/api/apps.connections.open", self._connections_open)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/hooks/{kind}/{n}", self._response_url)
        app.router.add_post("/upload/v1/{file_id}", self.files.upload)
        app.router.add_route("*", "/api/{method}", self._handle)
        self._runner, port = await listen(app, port)
        self.url = f"http://127.0.0.1:{port}/api/"
        return self.url

    async def stop(self) -> None:
        await self.stop_sockets()
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(self, method: str, status: int = 429, retry_after: int = 1,
                  times: int = 1) -> None:
        """The next `times` calls of `method` get `status` (429 with Retry-After)."""
        self.failures.setdefault(method, []).extend([(status, retry_after)] * times)

    def refuse_next(self, method: str, error: str, times: int = 1) -> None:
        """The next `times` calls of `method` are refused with `error` (e.g.
        channel_not_found), as Slack refuses a call it will never take."""
        self.refusals.setdefault(method, []).extend([error] * times)

    def called(self, method: str) -> list[Json]:
        return [c.args for c in self.calls if c.method == method]

    def arrivals(self, method: str, channel: str) -> list[float]:
        """When each call of `method` to `channel` reached Slack (monotonic seconds)."""
        return [c.at for c in self.calls if c.method == method and c.args.get("channel") == channel]

    async def wait_for(self, method: str, count: int = 1, within_s: float = 10.0,
                       where: Callable[[Json], bool] = lambda args: True) -> list[Json]:
        """Bolt acknowledges first and works after, so effects land a little later."""
        await self.until(lambda: len([a for a in self.called(method) if where(a)]) >= count,
                         within_s)
        return [a for a in self.called(method) if where(a)]

    async def until(self, check: Callable[[], bool], within_s: float = 10.0) -> bool:
        """Checks again as soon as the emulator answers a call or a Socket Mode client writes
        (and every 50 ms, for a check on anything else)."""
        deadline = time.monotonic() + within_s
        async with self._changes():
            while not check():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changes().wait(), min(left, 0.05))
        return True

    async def posted_over(self, channel: str, message: Json, within_s: float = 10.0) -> bool:
        """Wait until a newer message than `message` is posted to `channel`; woken only by
        posts there, so many waiters on many channels cost little."""
        deadline = time.monotonic() + within_s
        while self.latest.get(channel) is message:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            posted = self._posts.setdefault(channel, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(posted.wait(), left)
        return True

    def _changes(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _notify(self) -> None:
        async with self._changes():
            self._changes().notify_all()

    def hook(self, kind: str) -> str:
        """A response_url on this emulator, as Slack sends one with each interaction."""
        return f"{self.url.removesuffix('/api/')}/hooks/{kind}/{next(self._ids)}"

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    # Socket Mode (https://api.slack.com/apis/socket-mode): an app token opens a websocket
    # on which Slack sends envelopes and the app acknowledges each by its envelope_id

    async def _connections_open(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {APP_TOKEN}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response({"ok": True, "url": self.url.replace("http", "ws", 1)
                                  .replace("/api/", "/socket")})

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.sockets.append(socket)
        await socket.send_json({"type": "hello", "num_connections": len(self.sockets),
                                "debug_info": {"host": "emulator"},
                                "connection_info": {"app_id": "A0TEST"}})
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.acks.append(json.loads(message.data))
                await self._notify()
        self.sockets.remove(socket)
        return socket

    async def envelope(self, kind: str, payload: Json) -> str:
        """Send `payload` to the connected app as Slack would (events_api, interactive,
        slash_commands); returns the envelope id its acknowledgement must carry."""
        envelope_id = self.next_id("env-")
        await self.sockets[-1].send_json({"envelope_id": envelope_id, "type": kind,
                                          "payload": payload, "accepts_response_payload":
                                          kind != "events_api", "retry_attempt": 0,
                                          "retry_reason": ""})
        return envelope_id

    async def stop_sockets(self) -> None:
        for socket in list(self.sockets):
            await socket.close()

    # the Web API

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "not_authed"})
        refusing = self.refusals.get(method)
        if refusing:  # Slack's refusals come with HTTP 200 and `ok: false`
            return web.json_response({"ok": False, "error": refusing.pop(0)})
        failing = self.failures.get(method)
        if failing:
            status, retry_after = failing.pop(0)
            return web.json_response({"ok": False, "error": "ratelimited"}, status=status,
                                     headers={"Retry-After": str(retry_after)})
        args = await _arguments(request)
        self.calls.append(Call(method, args))
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        answer = handler(args)
        await self._notify()
        return web.json_response(answer)

    def _auth_test(self, args: Json) -> Json:
        return {"ok": True, "url": "https://expertloop-test.slack.com/", "team": "Test",
                "user": "expertloop", "team_id": "T0TEST", "user_id": "UBOT", "bot_id": "BBOT"}

    def _conversations_open(self, args: Json) -> Json:
        return {"ok": True, "channel": {"id": "D" + str(args["users"]).lstrip("U")}}

    def _refusals(self, blocks: list[Json]) -> list[str]:
        """Block Kit's rules, then the files its images name."""
        return refusals_of_message(blocks) or self.files.refusals(blocks)

    def _chat_postMessage(self, args: Json) -> Json:
        errors = self._refusals(args.get("blocks") or [])
        if errors:
            return _invalid(errors)
        ts = f"{1_800_000_000 + next(self._ids)}.000100"
        message = {"type": "message", "ts": ts, "text": args.get("text", ""),
                   "blocks": args.get("blocks") or [], "user": "UBOT", "bot_id": "BBOT"}
        self.messages[(args["channel"], ts)] = self.latest[args["channel"]] = message
        posted = self._posts.pop(args["channel"], None)
        if posted is not None:
            posted.set()
        return {"ok": True, "channel": args["channel"], "ts": ts, "message": message}

    def _chat_update(self, args: Json) -> Json:
        key = (args["channel"], args["ts"])
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        errors = self._refusals(args.get("blocks") or [])
        if errors:
            return _invalid(errors)
        self.messages[key].update(text=args.get("text", ""), blocks=args.get("blocks") or [])
        return {"ok": True, "channel": args["channel"], "ts": args["ts"],
                "text": args.get("text", "")}

    def _chat_postEphemeral(self, args: Json) -> Json:
        errors = self._refusals(args.get("blocks") or [])
        if errors:
            return _invalid(errors)
        return {"ok": True, "message_ts": f"{1_800_000_000 + next(self._ids)}.000200"}

    def _views_open(self, args: Json) -> Json:
        if args.get("trigger_id") not in self.triggers:
            return {"ok": False, "error": "invalid_trigger_id"}
        user = self.triggers.pop(args["trigger_id"])
        view = args["view"] if isinstance(args["view"], dict) else json.loads(args["view"])
        errors = refusals_of_view(view)
        if errors:
            return _invalid(errors, "invalid_arguments")
        view_id = self.next_id("V")
        self.views[view_id] = {**view, "id": view_id}
        self.opened.setdefault(user, []).append(view_id)
        return {"ok": True, "view": self.views[view_id]}

    def _views_publish(self, args: Json) -> Json:
        view = args["view"] if isinstance(args["view"], dict) else json.loads(args["view"])
        errors = refusals_of_view(view)
        if errors:
            return _invalid(errors, "invalid_arguments")
        self.homes[args["user_id"]] = view
        return {"ok": True, "view": {**view, "id": self.next_id("V")}}

    def _views_update(self, args: Json) -> Json:
        view = args["view"] if isinstance(args["view"], dict) else json.loads(args["view"])
        if args.get("view_id") not in self.views:
            return {"ok": False, "error": "not_found"}
        errors = refusals_of_view(view)
        if errors:
            return _invalid(errors, "invalid_arguments")
        self.views[args["view_id"]] = {**view, "id": args["view_id"]}
        return {"ok": True, "view": self.views[args["view_id"]]}

    async def _response_url(self, request: web.Request) -> web.Response:
        """An interaction's response_url (https://docs.slack.dev/interactivity/handling-user-interaction#message_responses):
        no token, JSON in, and blocks checked like a message's."""
        args = await request.json()
        errors = self._refusals(args.get("blocks") or [])
        if errors:
            return web.json_response(_invalid(errors))
        self.responses.append(args)
        await self._notify()
        return web.json_response({"ok": True})

    # files (https://docs.slack.dev/reference/methods/files.getUploadURLExternal)

    def _files_getUploadURLExternal(self, args: Json) -> Json:
        return self.files.get_upload_url(args, self.url.removesuffix("/api/"))

    def _files_completeUploadExternal(self, args: Json) -> Json:
        return self.files.complete(args)

    def _files_info(self, args: Json) -> Json:
        return self.files.info(args)

    def _users_lookupByEmail(self, args: Json) -> Json:
        user = self.emails.get(args.get("email", ""))
        return {"ok": True, "user": {"id": user}} if user else {"ok": False,
                                                                 "error": "users_not_found"}

    def _users_info(self, args: Json) -> Json:
        return {"ok": True, "user": {"id": args["user"], "tz": "UTC"}}

    def _dnd_info(self, args: Json) -> Json:
        return {"ok": True, "dnd_enabled": False, "next_dnd_start_ts": 1,
                "next_dnd_end_ts": 1, "snooze_enabled": False, **self.dnd.get(args["user"], {})}

    # what the user sees

    def dm(self, user: str) -> list[Json]:
        """The bot's messages in the user's DM, oldest first."""
        channel = "D" + user.lstrip("U")
        return [m for (c, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1])
                if c == channel]

    def cards(self, user: str) -> list[Json]:
        return [m for m in self.dm(user) if _controls(m)]


def _controls(message: Json) -> list[Json]:
    return [e for _, e in _placed_controls(message)]


def _placed_controls(message: Json) -> list[tuple[str, Json]]:
    """Each interactive element of a message with its block's id."""
    return [(b.get("block_id", ""), e) for b in message["blocks"] if b.get("type") == "actions"
            for e in b["elements"]]


def _fits(token: str | None, wanted: str) -> bool:
    """A control's value matches the whole of `wanted` or its choice after the lease."""
    return token is not None and (token == wanted or token.endswith(f"|{wanted}"))


def _invalid(errors: list[str], code: str = "invalid_blocks") -> Json:
    return {"ok": False, "error": code, "errors": errors,
            "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]}}


async def _arguments(request: web.Request) -> Json:
    """slack_sdk sends JSON for some methods, a form or a query string for others; values
    that are JSON text in a form (blocks, view) are decoded."""
    args: Json = dict(request.query)
    if request.content_type == "application/json":
        args.update(await request.json())
    elif request.can_read_body:
        args.update({k: str(v) for k, v in (await request.post()).items()})
    for name in ("blocks", "view"):
        if isinstance(args.get(name), str):
            args[name] = json.loads(args[name])
    return args


# the user's side: requests to the app, signed as Slack signs them


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """https://api.slack.com/authentication/verifying-requests-from-slack"""
    base = f"v0:{timestamp}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


@dataclass
class SlackUser:
    """One person in the workspace, talking to the app at `events_url`."""

    slack: SlackEmulator
    events_url: str
    id: str
    secret: str = SIGNING_SECRET

    @property
    def channel(self) -> str:
        return "D" + self.id.lstrip("U")

    async def send(self, body: str, content_type: str, *, age_s: int = 0,
                   secret: str | None = None, headers: dict[str, str] | None = None
                   ) -> tuple[int, str]:
        signed = sign(body, int(time.time()) - age_s, secret or self.secret)
        async with aiohttp.ClientSession() as http, http.post(
                self.events_url, data=body.encode(),
                headers={"Content-Type": content_type, **signed, **(headers or {})}) as resp:
            status, text = resp.status, await resp.text()
        if self.slack.settle is not None and 200 <= status < 300:
            await self.slack.settle()
        return status, text

    async def interact(self, payload: Json, **options: Any) -> tuple[int, str]:
        """Interactivity arrives form-encoded, the JSON in one `payload` field."""
        return await self.send(urlencode({"payload": json.dumps(payload)}),
                               "application/x-www-form-urlencoded", **options)

    def block_action(self, action_id: str, value: str | None = None,
                     selected: list[str] | None = None, message: Json | None = None,
                     *, snapshot: bool = True) -> Json:
        """The block_actions payload for pressing a control of the latest card (or `message`).
        `action_id` is the element's own (`el_choose:A`) or the action's name before the colon
        (`el_choose`, then `value` picks the element). The payload carries the element's own
        action_id and block_id, as Slack's does. `snapshot=False` skips copying the message as
        it was shown, for a caller that encodes the payload at once (before any chat.update
        changes the message)."""
        message = message or self.slack.cards(self.id)[-1]
        if snapshot:
            message = copy.deepcopy(message)
        block_id, element = next(
            (b, e) for b, e in _placed_controls(message)
            if action_id in (e["action_id"], e["action_id"].partition(":")[0]) and
            (value is None or _fits(e.get("value"), value) or any(
                _fits(o["value"], value) for o in e.get("options", []))))
        action: Json = {"action_id": element["action_id"], "block_id": block_id,
                        "type": element["type"], "action_ts": f"{time.time():.6f}"}
        state: Json = {}
        if element["type"] == "button":
            action["value"] = element["value"]
        elif element["type"] == "multi_static_select":
            action["selected_options"] = [o for o in element["options"]
                                          if o["value"] in (selected or [])]
        else:
            action["selected_option"] = next(o for o in element["options"]
                                             if _fits(o["value"], value or ""))
        if selected is not None:
            state = {"answer": {"el_labels_pick": {
                "type": "multi_static_select",
                "selected_options": [{"value": v} for v in selected]}}}
        trigger = self.slack.next_id("13345224609.738474920.")
        self.slack.triggers[trigger] = self.id
        return {"type": "block_actions", "user": {"id": self.id, "username": self.id.lower(),
                                                  "team_id": "T0TEST"},
                "api_app_id": "A0TEST", "token": "legacy", "trigger_id": trigger,
                "team": {"id": "T0TEST", "domain": "test"},
                "container": {"type": "message", "message_ts": message["ts"],
                              "channel_id": self.channel, "is_ephemeral": False},
                "channel": {"id": self.channel, "name": "directmessage"},
                "message": message, "state": {"values": state},
                "response_url": self.slack.hook("actions"), "actions": [action]}

    async def press(self, action_id: str, value: str | None = None, **options: Any
                    ) -> tuple[int, str]:
        selected = options.pop("selected", None)
        return await self.interact(self.block_action(action_id, value, selected), **options)

    def view_submission(self, view: Json, values: Mapping[str, str]) -> Json:
        """Fill the modal's inputs: a text by block id, or a select's chosen value."""
        state: Json = {}
        for block in view["blocks"]:
            if block.get("type") != "input" or block["block_id"] not in values:
                continue
            element, given = block["element"], values[block["block_id"]]
            if element["type"] == "plain_text_input":
                field_state: Json = {"type": "plain_text_input", "value": given}
            else:
                field_state = {"type": "static_select",
                               "selected_option": {"value": given,
                                                   "text": {"type": "plain_text",
                                                            "text": str(given)}}}
            state[block["block_id"]] = {element["action_id"]: field_state}
        return {"type": "view_submission", "team": {"id": "T0TEST", "domain": "test"},
                "user": {"id": self.id, "username": self.id.lower(), "team_id": "T0TEST"},
                "api_app_id": "A0TEST", "token": "legacy",
                "trigger_id": self.slack.next_id("13345224609.8."),
                "view": {**view, "team_id": "T0TEST", "state": {"values": state},
                         "hash": "156772938.1827394"}, "response_urls": []}

    async def submit(self, values: Mapping[str, str], **options: Any
                     ) -> tuple[int, str]:
        """Submit the modal most recently opened for this user."""
        view = self.slack.views[self.slack.opened[self.id][-1]]
        return await self.interact(self.view_submission(view, values), **options)

    async def command(self, text: str, **options: Any) -> tuple[int, str]:
        body = urlencode({"token": "legacy", "team_id": "T0TEST", "team_domain": "test",
                          "channel_id": self.channel, "channel_name": "directmessage",
                          "user_id": self.id, "user_name": self.id.lower(),
                          "command": "/expertloop", "text": text, "api_app_id": "A0TEST",
                          "response_url": self.slack.hook("commands"),
                          "trigger_id": self.slack.next_id("13345224609.9.")})
        return await self.send(body, "application/x-www-form-urlencoded", **options)

    async def open_home(self, **options: Any) -> tuple[int, str]:
        body = json.dumps({"token": "legacy", "team_id": "T0TEST", "api_app_id": "A0TEST",
                           "type": "event_callback", "event_id": self.slack.next_id("Ev"),
                           "event_time": int(time.time()),
                           "event": {"type": "app_home_opened", "user": self.id,
                                     "channel": self.channel, "tab": "home",
                                     "event_ts": f"{time.time():.6f}"}})
        return await self.send(body, "application/json", **options)
