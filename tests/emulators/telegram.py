"""A local Telegram Bot API for tests: aiohttp on 127.0.0.1, port 0, speaking the wire format of
the methods the bot uses (https://core.telegram.org/bots/api), answering 429 with `retry_after`
or a 5xx on demand, and letting a test act as users (send, reply, press, delete a message).

It refuses what Telegram refuses, with Telegram's own error texts (HTTP 400, "Bad Request: ..."):
- text over 4096 characters after entity parsing: "message is too long"; empty text: "message
  text is empty" (https://core.telegram.org/bots/api#sendmessage);
- a caption over 1024 characters after entity parsing: "message caption is too long"
  (https://core.telegram.org/bots/api#senddocument);
- HTML that does not parse: "can't parse entities: ..." with Telegram's wording for an
  unsupported tag, an unexpected end tag or a missing one
  (https://core.telegram.org/bots/api#html-style; wording as reported, e.g.
  https://github.com/eternnoir/pyTelegramBotAPI/issues/763 and tdlib's parser);
- callback_data outside 1-64 bytes: "BUTTON_DATA_INVALID"; an inline button with no action:
  "text buttons are unallowed in the inline keyboard"
  (https://core.telegram.org/bots/api#inlinekeyboardbutton);
- "reply markup is too long": undocumented, EMPIRICAL: more than 100 buttons or more than 10 KB
  of markup JSON, by reports (https://github.com/tginfo/Telegram-Limits/issues/187,
  https://github.com/eternnoir/pyTelegramBotAPI/issues/511);
- an edit that changes nothing: "message is not modified: specified new message content and
  reply markup are exactly the same as a current content and reply markup of the message"
  (https://core.telegram.org/bots/api#updating-messages; wording from
  https://github.com/eternnoir/pyTelegramBotAPI/issues/763);
- an edit of a message that does not exist or was deleted: "message to edit not found";
- an answerCallbackQuery text over 200 characters: "MESSAGE_TOO_LONG"
  (https://core.telegram.org/bots/api#answercallbackquery, "0-200 characters"; wording from
  https://github.com/eternnoir/pyTelegramBotAPI/issues/500 and MTProto's
  messages.setBotCallbackAnswer); a query answered twice: "query is too old ...".

Files (multipart uploads, as python-telegram-bot sends them; `uploads` keeps every file's bytes
and SHA-256, so a test can compare what an expert was shown with the record). Real Telegram
recompresses a photo and answers with several smaller sizes; this emulator keeps the uploaded
bytes and answers with one size, the original's:
- a photo over 10 MB: "PHOTO_SAVE_FILE_INVALID"; width + height over 10,000 or a side over 20
  times the other: "PHOTO_INVALID_DIMENSIONS" (the limits: https://core.telegram.org/bots/api#sendphoto;
  the texts are the server's, as reported in https://github.com/zhukov/webogram/issues/1011 and
  https://github.com/go-telegram-bot-api/telegram-bot-api/issues/600); bytes that are no image:
  "IMAGE_PROCESS_FAILED" (MTProto's error, https://core.telegram.org/method/messages.sendMedia);
- sendMediaGroup (https://core.telegram.org/bots/api#sendmediagroup), in TDLib's order
  (td/telegram/MessageContent.cpp, check_message_group_message_contents): no items "there are no
  messages to send", more than 10 "too many messages to send as an album", documents with
  photos "document can't be mixed with other media types"; an `attach://` name with no part:
  "can't parse InputMedia: media not found" (tdlib/telegram-bot-api, Client.cpp);
- ONE item: the documentation says "must include 2-10 items", but live Telegram (TDLib) sends a
  lone item as a plain message. We refuse it, stricter than Telegram, with the documentation's
  words ("media must include 2-10 items"): there is no Telegram error text to copy;
- a reply to a message the chat does not have: "message to be replied not found".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.emulators.local import listen

TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
        "tg-spoiler", "span", "blockquote", "tg-emoji"}
JSON_FIELDS = {"reply_markup", "allowed_updates", "entities", "link_preview_options", "media",
               "reply_parameters", "caption_entities"}
PHOTO_MAX_BYTES = 10 * 1024 * 1024  # https://core.telegram.org/bots/api#sendphoto
PHOTO_MAX_SIDES = 10_000  # width + height
PHOTO_MAX_RATIO = 20
CAPTION_LIMIT = 1024
ALBUM_MAX = 10
ONE_ITEM_ALBUM = "Bad Request: media must include 2-10 items"  # the docs' words, not Telegram's
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message")
MAX_BUTTONS = 100  # EMPIRICAL (see the module docstring): not in Telegram's documentation
MAX_MARKUP_BYTES = 10 * 1024  # EMPIRICAL, likewise
ACTIONS = {"url", "callback_data", "web_app", "login_url", "switch_inline_query",
           "switch_inline_query_current_chat", "switch_inline_query_chosen_chat",
           "copy_text", "callback_game", "pay"}
BOT = {"id": 7000001, "is_bot": True, "first_name": "Expertloop", "username": "expertloop_bot",
       "can_join_groups": False, "can_read_all_group_messages": False,
       "supports_inline_queries": False}


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


class _Text(HTMLParser):
    """Telegram's HTML: a few tags, properly nested; everything else is an error."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.out: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TAGS:
            raise _unparsed(f"Unsupported start tag \"{tag}\" at byte offset {self._at()}")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack:
            raise _unparsed(f"Unexpected end tag at byte offset {self._at()}")
        expected = self.stack.pop()
        if expected != tag:
            raise _unparsed(f"Unmatched end tag at byte offset {self._at()}, expected "
                            f"\"</{expected}>\", found \"</{tag}>\"")

    def _at(self) -> int:
        """Where the tag starts, in bytes of UTF-8, as Telegram counts."""
        line, column = self.getpos()
        before = "".join(self.source.splitlines(keepends=True)[:line - 1])
        return len((before + self.source[len(before):][:column]).encode())

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def _unparsed(why: str) -> ApiError:
    return ApiError(400, f"Bad Request: can't parse entities: {why}")


def plain_text(html: str) -> str:
    parser = _Text(html)
    parser.feed(html)
    if "<" in parser.rawdata:  # a tag left open at the end: the parser holds it back
        raise _unparsed(f"Unclosed start tag at byte offset "
                        f"{len(html.encode()) - len(parser.rawdata.encode())}")
    parser.close()
    if parser.stack:
        raise _unparsed(f"Can't find end tag corresponding to start tag \"{parser.stack[-1]}\"")
    return "".join(parser.out)


class TelegramEmulator:
    def __init__(self, token: str = "123:TEST", clock: Callable[[], float] = time.time) -> None:
        self.token = token
        self.clock = clock
        self.port = 0
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # what each chat shows now
        self.newest_card: dict[int, dict[str, Any]] = {}  # per chat: last sent with buttons
        self.calls: list[tuple[str, dict[str, Any]]] = []  # every accepted call, in order
        self.refused: list[tuple[str, str]] = []  # (method, Telegram's error) of each refusal
        # A test's eye on the chat: called with the chat id after each accepted call to it.
        self.watch: Callable[[int], None] | None = None
        self.callback_answers: list[dict[str, Any]] = []
        self.documents: list[dict[str, Any]] = []
        # Every file received: chat, message_id, method, kind (photo|document), filename,
        # data (the bytes as uploaded) and sha256.
        self.uploads: list[dict[str, Any]] = []
        self.faults: list[tuple[str, int, int | None]] = []  # (method, status, retry_after)
        self.webhook: tuple[str, str] | None = None
        # A test's wiring, not Telegram's: awaited after the webhook says 2xx, until the bot
        # has done what the update asked (it works after acknowledging). None: no wait.
        self.handled: Callable[[], Awaitable[None]] | None = None
        self.updates: list[dict[str, Any]] = []
        self.confirmed = 0
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(100_000)
        self._new_update = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> None:
        """On `port` (0: any free one); a test may reserve one, so the bot's first calls are
        refused until the emulator starts (a Bot API unreachable at start)."""
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner, self.port = await listen(app, port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def fail(self, method: str, status: int = 429, retry_after: int | None = 1,
             times: int = 1) -> None:
        self.faults += [(method, status, retry_after)] * times

    # what a user sees

    def chat(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for (c, _), m in sorted(self.messages.items()) if c == chat_id]

    def texts(self, chat_id: int) -> list[str]:
        return [m.get("text") or m.get("caption") or "" for m in self.chat(chat_id)]

    def last(self, chat_id: int, with_buttons: bool = False) -> dict[str, Any]:
        shown = [m for m in self.chat(chat_id) if not with_buttons or "reply_markup" in m]
        return shown[-1]

    def live_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The messages in the chat whose buttons the user can still tap."""
        return [m for m in self.chat(chat_id) if "reply_markup" in m]

    def delete(self, chat_id: int, message_id: int) -> None:
        """The user deletes a message: it leaves the chat, and edits of it are refused."""
        del self.messages[(chat_id, message_id)]

    @staticmethod
    def buttons(message: dict[str, Any]) -> dict[str, str]:
        rows = message.get("reply_markup", {}).get("inline_keyboard", [])
        return {b["text"]: b["callback_data"] for row in rows for b in row}

    # acting as a user

    def _user(self, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}",
                "language_code": "en"}

    def message_update(self, user_id: int, text: str,
                       reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._ids), "from": self._user(user_id),
            "chat": {"id": user_id, "type": "private", "first_name": f"User{user_id}"},
            "date": int(self.clock()), "text": text}
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(text.split()[0])}]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        self.messages[(user_id, message["message_id"])] = message
        return {"update_id": next(self._update_ids), "message": message}

    def press_update(self, user_id: int, message: dict[str, Any], data: str) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), "callback_query": {
            "id": str(next(self._ids) * 7919), "from": self._user(user_id), "message": message,
            "chat_instance": str(user_id), "data": data}}

    async def send(self, update: dict[str, Any]) -> int:
        """Hand an update to the bot as Telegram would: POST it to the webhook (the status
        comes back), or queue it for getUpdates (200)."""
        if self.webhook is None:
            self.updates.append(update)
            self._new_update.set()
            return 200
        url, secret = self.webhook
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        async with aiohttp.ClientSession() as session, session.post(
                url, json=update, headers=headers) as response:
            status = response.status
        if self.handled is not None and 200 <= status < 300:
            await self.handled()
        return status

    async def settle(self, condition: Callable[[], bool], within: float = 10) -> None:
        """Wait until the bot has done something (polling answers asynchronously)."""
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("the bot did not get there")
            await asyncio.sleep(0.02)

    # the Bot API

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        params = await _params(request)
        for i, (name, status, retry_after) in enumerate(self.faults):
            if name == method:
                del self.faults[i]
                if status == 429:
                    return _error(429, f"Too Many Requests: retry after {retry_after}",
                                  {"retry_after": retry_after})
                return web.Response(status=status, text="Bad Gateway")
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        try:
            result = await handler(params)
        except ApiError as exc:
            self.refused.append((method, exc.description))
            return _error(exc.code, exc.description)
        self.calls.append((method, params))
        if self.watch is not None and "chat_id" in params:
            self.watch(int(params["chat_id"]))
        return web.json_response({"ok": True, "result": result})

    async def _api_getMe(self, p: dict[str, Any]) -> Any:
        return BOT

    async def _api_setWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = (p["url"], p.get("secret_token", ""))
        return True

    async def _api_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = None
        if str(p.get("drop_pending_updates", "")).lower() == "true":
            self.updates.clear()
        return True

    async def _api_getUpdates(self, p: dict[str, Any]) -> Any:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset, timeout = int(p.get("offset") or 0), float(p.get("timeout") or 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates and timeout:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout)
        return self.updates[: int(p.get("limit") or 100)]

    async def _api_sendMessage(self, p: dict[str, Any]) -> Any:
        chat = int(p["chat_id"])
        replied = self._replied(chat, p)
        message = self._message(chat, self._text(p), p.get("reply_markup"))
        return self._keep(message, replied)

    async def _api_sendDocument(self, p: dict[str, Any]) -> Any:
        chat = int(p["chat_id"])
        document, caption, replied = _upload(p, "document"), _caption(p), self._replied(chat, p)
        message = self._message(chat, None, p.get("reply_markup"))
        self._attach(message, "sendDocument", "document", document, caption)
        self.documents.append({"chat": chat, **document})
        return self._keep(message, replied)

    async def _api_sendPhoto(self, p: dict[str, Any]) -> Any:
        chat = int(p["chat_id"])
        photo, caption, replied = _upload(p, "photo"), _caption(p), self._replied(chat, p)
        _check_photo(photo["data"])
        message = self._message(chat, None, p.get("reply_markup"))
        self._attach(message, "sendPhoto", "photo", photo, caption)
        return self._keep(message, replied)

    async def _api_sendMediaGroup(self, p: dict[str, Any]) -> Any:
        """Every item is checked before any is sent: a refused album shows nothing."""
        chat = int(p["chat_id"])
        replied, items = self._replied(chat, p), _album(p)
        for item in items:
            if item["type"] == "photo":
                _check_photo(item["file"]["data"])
        group = str(next(self._ids) * 104729)
        sent = []
        for item in items:
            message = self._message(chat, None, None)
            message["media_group_id"] = group
            self._attach(message, "sendMediaGroup", item["type"], item["file"], item["caption"])
            sent.append(self._keep(message, replied))
        return sent

    def _replied(self, chat: int, p: dict[str, Any]) -> dict[str, Any] | None:
        """The message a send replies to (https://core.telegram.org/bots/api#replyparameters)."""
        wanted = p.get("reply_parameters") or (
            {"message_id": p["reply_to_message_id"]} if p.get("reply_to_message_id") else None)
        if wanted is None:
            return None
        found = self.messages.get((int(wanted.get("chat_id", chat)), int(wanted["message_id"])))
        if found is None and not wanted.get("allow_sending_without_reply"):
            raise ApiError(400, "Bad Request: message to be replied not found")
        return found

    def _keep(self, message: dict[str, Any], replied: dict[str, Any] | None) -> dict[str, Any]:
        if replied is not None:  # Telegram nests the replied message one level deep
            message["reply_to_message"] = {k: v for k, v in replied.items()
                                           if k != "reply_to_message"}
        chat = message["chat"]["id"]
        self.messages[(chat, message["message_id"])] = message
        if "reply_markup" in message:
            self.newest_card[chat] = message
        return message

    def _attach(self, message: dict[str, Any], method: str, kind: str, file: dict[str, Any],
                caption: str | None) -> None:
        """The file as Telegram describes it in the message, and its bytes kept for the test."""
        data: bytes = file["data"]
        file_id = f"f{message['message_id']}"
        described: dict[str, Any] = {"file_id": file_id, "file_unique_id": f"u{file_id}",
                                     "file_size": len(data)}
        if kind == "photo":
            width, height = _dimensions(data)
            message["photo"] = [{**described, "width": width, "height": height}]
        else:
            message["document"] = {**described, "file_name": file["filename"],
                                   "mime_type": file.get("content_type")
                                   or "application/octet-stream"}
        if caption:
            message["caption"] = caption
        self.uploads.append({"chat": message["chat"]["id"], "message_id": message["message_id"],
                             "method": method, "kind": kind, "filename": file["filename"],
                             "data": data, "sha256": hashlib.sha256(data).hexdigest()})

    def shown_files(self, chat_id: int) -> list[dict[str, Any]]:
        """What the user can open in the chat now, oldest first (deleted messages gone)."""
        return [u for u in self.uploads
                if u["chat"] == chat_id and (chat_id, u["message_id"]) in self.messages]

    async def _api_editMessageText(self, p: dict[str, Any]) -> Any:
        message = self._existing(p)
        text = self._text(p)
        markup = _inline(p.get("reply_markup"))
        if text == message.get("text") and markup == message.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        self._set_markup(message, markup)
        message.update(text=text, edit_date=int(self.clock()))
        return message

    async def _api_editMessageReplyMarkup(self, p: dict[str, Any]) -> Any:
        message = self._existing(p)
        if _inline(p.get("reply_markup")) == message.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        self._set_markup(message, p.get("reply_markup"))
        message["edit_date"] = int(self.clock())
        return message

    async def _api_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        if any(a["callback_query_id"] == p["callback_query_id"] for a in self.callback_answers):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired "
                                "or query ID is invalid")
        if len(p.get("text", "")) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers.append(p)
        return True

    def _text(self, p: dict[str, Any]) -> str:
        raw = p.get("text", "")
        text = plain_text(raw) if p.get("parse_mode") == "HTML" else raw
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return text

    def _message(self, chat: int, text: str | None, markup: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._ids), "from": BOT, "date": int(self.clock()),
            "chat": {"id": chat, "type": "private", "first_name": f"User{chat}"}}
        if text is not None:
            message["text"] = text
        self._set_markup(message, markup)
        return message

    def _set_markup(self, message: dict[str, Any], markup: Any) -> None:
        """Only an inline keyboard stays on a message; an empty one is none."""
        inline = _inline(markup)
        if inline is not None:
            _check_keyboard(inline)
        message.pop("reply_markup", None)
        if inline is not None:
            message["reply_markup"] = inline

    def _existing(self, p: dict[str, Any]) -> dict[str, Any]:
        found = self.messages.get((int(p.get("chat_id", 0)), int(p.get("message_id", 0))))
        if found is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return found

    async def deliver(self, update: dict[str, Any], within: float = 60,
                      pause: float = 0.1, attempt_s: float = 10) -> list[int]:
        """Post an update to the webhook the way Telegram does: again and again until a 2xx
        (https://core.telegram.org/bots/api#setwebhook). Returns every status seen, 0 for
        no answer (connection refused or cut, or nothing within `attempt_s` seconds)."""
        assert self.webhook is not None, "set a webhook first"
        url, secret = self.webhook
        statuses: list[int] = []
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=attempt_s)) as s:
            while not statuses or not 200 <= statuses[-1] < 300:
                if statuses:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no 2xx for update {update['update_id']}: "
                                           f"{statuses}")
                    await asyncio.sleep(pause)
                try:
                    async with s.post(url, json=update, headers={
                            "X-Telegram-Bot-Api-Secret-Token": secret}) as response:
                        statuses.append(response.status)
                except (aiohttp.ClientError, TimeoutError):
                    statuses.append(0)
        if self.handled is not None:
            await self.handled()
        return statuses


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        return dict(await request.json())
    params: dict[str, Any] = {}
    form = await request.post()
    for name, value in form.items():
        if isinstance(value, web.FileField):
            params[name] = {"filename": value.filename, "data": value.file.read(),
                            "content_type": value.content_type}
        elif name in JSON_FIELDS:
            params[name] = json.loads(str(value))
        else:
            params[name] = str(value)
    params.update({k: v for k, v in request.query.items() if k not in params})
    return params


def _inline(markup: Any) -> dict[str, Any] | None:
    """An inline keyboard with buttons, or None (no markup, an empty one, or a ForceReply)."""
    if isinstance(markup, dict) and any(markup.get("inline_keyboard") or []):
        return markup
    return None


def _check_keyboard(markup: dict[str, Any]) -> None:
    buttons = [b for row in markup["inline_keyboard"] for b in row]
    # EMPIRICAL, undocumented: Telegram refuses about 100+ buttons or 10+ KB of markup
    if len(buttons) > MAX_BUTTONS or len(json.dumps(markup).encode()) > MAX_MARKUP_BYTES:
        raise ApiError(400, "Bad Request: reply markup is too long")
    for button in buttons:
        if not ACTIONS & set(button):
            raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
        if "callback_data" in button and not 1 <= len(button["callback_data"].encode()) <= 64:
            raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _error(code: int, description: str,
           parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


def _upload(p: dict[str, Any], field: str) -> dict[str, Any]:
    """A file sent as a multipart part, directly or by `attach://<name>`; a file_id or a URL
    names nothing this emulator has."""
    value = p.get(field)
    if isinstance(value, str) and value.startswith("attach://"):
        value = p.get(value.removeprefix("attach://"))
    if not isinstance(value, dict):
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
    return value


def _caption(p: dict[str, Any]) -> str | None:
    """At most 1024 characters after entity parsing (https://core.telegram.org/bots/api#sendphoto)."""
    raw = p.get("caption")
    if not raw:
        return None
    caption = plain_text(raw) if p.get("parse_mode") == "HTML" else raw
    if len(caption) > CAPTION_LIMIT:
        raise ApiError(400, "Bad Request: message caption is too long")
    return caption


def _dimensions(data: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED") from None


def _check_photo(data: bytes) -> None:
    """Telegram's photo limits (https://core.telegram.org/bots/api#sendphoto)."""
    if len(data) > PHOTO_MAX_BYTES:
        raise ApiError(400, "Bad Request: PHOTO_SAVE_FILE_INVALID")
    width, height = _dimensions(data)
    if width + height > PHOTO_MAX_SIDES or max(width, height) > PHOTO_MAX_RATIO * min(width,
                                                                                      height):
        raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")


def _album(p: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of a sendMediaGroup, checked as TDLib checks an album."""
    media = p.get("media")
    if media is None:
        raise ApiError(400, 'Bad Request: parameter "media" is required')
    if not isinstance(media, list):
        raise ApiError(400, "Bad Request: expected an Array of InputMedia")
    items = []
    for entry in media:
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind not in ("photo", "document"):
            raise ApiError(400, f"Bad Request: can't parse InputMedia: type \"{kind}\" is "
                                "unsupported by this emulator")
        name = str(entry.get("media", "")).removeprefix("attach://")
        if not isinstance(p.get(name), dict):
            raise ApiError(400, "Bad Request: can't parse InputMedia: media not found")
        items.append({"type": kind, "file": p[name], "caption": _caption(entry)})
    if not items:
        raise ApiError(400, "Bad Request: there are no messages to send")
    if len(items) > ALBUM_MAX:
        raise ApiError(400, "Bad Request: too many messages to send as an album")
    if len({item["type"] for item in items}) > 1:
        raise ApiError(400, "Bad Request: document can't be mixed with other media types")
    if len(items) == 1:
        raise ApiError(400, ONE_ITEM_ALBUM)
    return items
