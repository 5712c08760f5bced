"""A local OpenAI-compatible server for tests: aiohttp on 127.0.0.1, port 0, serving
`POST /v1/chat/completions` and `GET /v1/models` in OpenAI's wire format
(https://platform.openai.com/docs/api-reference/chat/create, and the response types in the
`openai` package, `openai/types/chat/chat_completion.py`), so the real `openai` client talks to it.

Drafts are deterministic: `draft_for(model, messages, **params)` is the text a request gets (only
`temperature`, `top_p` and `seed` change it). Tokens are the text's whitespace-split words, for
usage and logprobs alike; the prompt's tokens are its contents' words, and IMAGE_TOKENS per image
(what OpenAI charges a low-detail image). A message's content is a string or a list of content
parts, `text` and `image_url` (a base64 data URL of a PNG, JPEG, GIF or WebP, or an http(s) URL,
never fetched here), images in user turns only. It refuses what the API
refuses for what expertloop sends, with OpenAI's error shape
`{"error": {"message", "type", "param", "code"}}`: a wrong key (401 `invalid_api_key`), an unknown
model (404 `model_not_found`), a malformed request (400 naming the `param`; unknown arguments are
refused as OpenAI does, "Unrecognized request argument supplied"), a prompt over the model's
context (400 `context_length_exceeded`). On demand, per model or for every model, for the next N
calls (`fail`): 429 with `Retry-After`, 500, 401, a slow reply, a reply cut off by `length`, and a
400 refusing `logprobs` as some servers do (wording of OpenAI's `unsupported_parameter`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.emulators.local import listen

Json = dict[str, Any]
FaultKind = Literal["rate_limit", "server_error", "unauthorized", "slow", "length",
                    "no_logprobs"]
API_KEY = "sk-expertloop-test"
ROLES = ("system", "user", "assistant")
GENERATIVE = ("temperature", "top_p", "seed")
KNOWN = {"model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens",
         "n", "logprobs", "top_logprobs", "seed", "stop", "user", "presence_penalty",
         "frequency_penalty"}
MANY = float("inf")
IMAGE_TOKENS = 85  # https://platform.openai.com/docs/guides/images-vision (low detail)
DETAILS = ("auto", "low", "high")
IMAGE_FORMATS = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg", b"GIF87a": "gif",
                 b"GIF89a": "gif"}
BOUNDS = {"temperature": ("decimal", 0, 2), "top_p": ("decimal", 0, 1),
          "max_tokens": ("integer", 1, MANY), "max_completion_tokens": ("integer", 1, MANY),
          "n": ("integer", 1, 1),  # the API allows more; expertloop asks for one
          "top_logprobs": ("integer", 0, 20)}
VOCAB = ("the", "patient", "should", "avoid", "taking", "dose", "with", "care", "because",
         "risk", "of", "bleeding", "is", "higher", "ask", "a", "doctor", "first", "and",
         "monitor", "symptoms", "daily", "this", "answer", "depends", "on", "history",
         "usually", "safe", "not", "recommended", "when")


class ApiError(Exception):
    """A refusal, answered in OpenAI's error shape."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status, message, param, code, kind)
        self.headers: dict[str, str] = {}

    def response(self) -> web.Response:
        error = {"message": self.message, "type": self.kind, "param": self.param,
                 "code": self.code}
        return web.json_response({"error": error}, status=self.status, headers=self.headers)


@dataclass
class Model:
    name: str
    context: int = 8192  # in whitespace tokens of the prompt
    logprob: float | None = None  # every token's logprob when set; else hash-derived
    version: str | None = None  # the `model` a response names (e.g. a dated snapshot)
    fingerprint: str | None = "fp_emulated"


@dataclass
class Fault:
    kind: FaultKind
    model: str | None  # None: any model
    remaining: int | None  # None: every call until cleared
    retry_after: int = 1
    delay: float = 0.0


@dataclass
class Call:
    body: Json
    status: int = 0  # the HTTP status it was answered with (0 while in flight)


@dataclass
class OpenAIEmulator:
    api_key: str = API_KEY
    models: dict[str, Model] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)  # every chat completion request, in order
    faults: list[Fault] = field(default_factory=list)
    latency: float = 0.0  # every reply waits this long (a bench's model)
    port: int = 0
    _runner: web.AppRunner | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        if not self.models:
            self.add_model("model-a")
            self.add_model("model-b")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner, self.port = await listen(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        """The `base_url` for `AsyncOpenAI`."""
        return f"http://127.0.0.1:{self.port}/v1"

    # a test's controls

    def add_model(self, name: str, **settings: Any) -> Model:
        self.models[name] = Model(name, **settings)
        return self.models[name]

    def set_logprob(self, model: str, logprob: float) -> None:
        """The model's confidence: every token it answers carries this logprob."""
        self.models[model].logprob = logprob

    def set_context(self, model: str, tokens: int) -> None:
        self.models[model].context = tokens

    def fail(self, kind: FaultKind, model: str | None = None, times: int | None = 1,
             retry_after: int = 1, delay: float = 1.0) -> None:
        """Misbehave for the next `times` calls (None: until `clear_faults`); `no_logprobs`
        counts only calls that ask for logprobs."""
        self.faults.append(Fault(kind, model, times, retry_after, delay))

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def answered(self) -> list[Call]:
        return [call for call in self.calls if call.status == 200]

    def draft_for(self, model: str, messages: list[Json], **params: Any) -> str:
        """The text a request for this model, conversation and params is answered with."""
        digest = _digest(model, messages, params)
        count = 12 + digest[0] % 30
        words = [VOCAB[b % len(VOCAB)] for b in digest[1:count + 1]]
        return " ".join(words).capitalize() + "."

    # the API

    async def _models(self, request: web.Request) -> web.Response:
        try:
            self._authorise(request)
        except ApiError as exc:
            return exc.response()
        data = [{"id": name, "object": "model", "created": 1_700_000_000,
                 "owned_by": "expertloop-tests"} for name in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.Response:
        call = Call(body={})
        self.calls.append(call)
        try:
            response = await self._answer(request, call)
        except ApiError as exc:
            response = exc.response()
        call.status = response.status
        return response

    async def _answer(self, request: web.Request, call: Call) -> web.Response:
        self._authorise(request)
        call.body = await _body(request)
        fault = self._take_fault(call.body)
        _raise_for(fault)
        model = _validate(call.body, self.models)
        prompt = _prompt_tokens(call.body["messages"])
        if prompt > model.context:
            raise _too_long(model, prompt)
        await asyncio.sleep(self.latency + (fault.delay if fault and fault.kind == "slow" else 0))
        cut = fault is not None and fault.kind == "length"
        return web.json_response(self._completion(call.body, model, prompt, cut))

    def _authorise(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise ApiError(401, "You didn't provide an API key. You need to provide your API "
                           "key in an Authorization header using Bearer auth.")
        key = header.removeprefix("Bearer ")
        if key != self.api_key:
            raise _wrong_key(key)

    def _take_fault(self, body: Json) -> Fault | None:
        """The first fault for this call's model, used up by it."""
        for fault in self.faults:
            if fault.model not in (None, body.get("model")):
                continue
            if fault.kind == "no_logprobs" and body.get("logprobs") is not True:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
            return fault
        return None

    def _completion(self, body: Json, model: Model, prompt: int, cut: bool) -> Json:
        params = {name: body[name] for name in GENERATIVE if body.get(name) is not None}
        words = self.draft_for(model.name, body["messages"], **params).split()
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or len(words)
        finish = "length" if cut or limit < len(words) else "stop"
        words = words[:max(1, len(words) // 2)] if cut else words[:limit]
        tokens = [word if i == 0 else " " + word for i, word in enumerate(words)]
        choice: Json = {"index": 0, "finish_reason": finish, "logprobs": None,
                        "message": {"role": "assistant", "content": "".join(tokens),
                                    "refusal": None}}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": _logprobs(model, tokens,
                                                       body.get("top_logprobs") or 0),
                                  "refusal": None}
        return {"id": f"chatcmpl-emu{next(self._ids)}", "object": "chat.completion",
                "created": int(time.time()), "model": model.version or model.name,
                "system_fingerprint": model.fingerprint, "choices": [choice],
                "usage": {"prompt_tokens": prompt, "completion_tokens": len(tokens),
                          "total_tokens": prompt + len(tokens)}}


def _digest(model: str, messages: list[Json], params: dict[str, Any]) -> bytes:
    generative = {name: params[name] for name in GENERATIVE if params.get(name) is not None}
    canonical = json.dumps([model, messages, generative], sort_keys=True, separators=(",", ":"))
    return hashlib.shake_256(canonical.encode()).digest(64)


def _logprobs(model: Model, tokens: list[str], top: int) -> list[Json]:
    """One entry per token; the chosen token is always the likeliest of its `top_logprobs`."""
    entries = []
    for i, token in enumerate(tokens):
        logprob = model.logprob
        if logprob is None:
            byte = hashlib.sha256(f"{model.name}|{i}|{token}".encode()).digest()[0]
            logprob = -round(0.01 + byte / 255 * 1.5, 4)
        alternates = [(token, logprob)] + [(f" alt{j}", logprob - j) for j in range(1, top)]
        entries.append({"token": token, "logprob": logprob, "bytes": list(token.encode()),
                        "top_logprobs": [{"token": t, "logprob": p, "bytes": list(t.encode())}
                                         for t, p in alternates[:top]]})
    return entries


def _prompt_tokens(messages: list[Json]) -> int:
    return sum(_content_tokens(message["content"]) for message in messages)


def _content_tokens(content: str | list[Json]) -> int:
    if isinstance(content, str):
        return len(content.split())
    return sum(len(part["text"].split()) if part["type"] == "text" else IMAGE_TOKENS
               for part in content)


def image_urls(messages: list[Json]) -> list[str]:
    """Every image_url part's URL in a request, in order: what a test compares with the record."""
    return [part["image_url"]["url"] for message in messages
            if isinstance(message["content"], list)
            for part in message["content"] if part["type"] == "image_url"]


async def _body(request: web.Request) -> Json:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "We could not parse the JSON body of your request. (HINT: This "
                       "likely means you aren't using your HTTP library correctly.)")
    return body


def _raise_for(fault: Fault | None) -> None:
    """Turn an error fault into its refusal; `slow` and `length` shape the reply instead."""
    if fault is None or fault.kind in ("slow", "length"):
        return
    if fault.kind == "rate_limit":
        error = ApiError(429, f"Rate limit reached on requests per min (RPM). Please try again "
                         f"in {fault.retry_after}s.", code="rate_limit_exceeded", kind="requests")
        error.headers["Retry-After"] = str(fault.retry_after)
        raise error
    if fault.kind == "server_error":
        raise ApiError(500, "The server had an error while processing your request. Sorry "
                       "about that!", kind="server_error")
    if fault.kind == "unauthorized":
        raise _wrong_key("sk-revoked-key")
    raise ApiError(400, "Unsupported parameter: 'logprobs' is not supported with this model.",
                   param="logprobs", code="unsupported_parameter")


def _wrong_key(key: str) -> ApiError:
    """OpenAI echoes a masked key; the last four characters show."""
    masked = key[:3] + "*" * max(0, len(key) - 7) + key[-4:]
    return ApiError(401, f"Incorrect API key provided: {masked}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.", code="invalid_api_key")


def _too_long(model: Model, prompt: int) -> ApiError:
    return ApiError(400, f"This model's maximum context length is {model.context} tokens. "
                    f"However, your messages resulted in {prompt} tokens. Please reduce the "
                    "length of the messages.", param="messages", code="context_length_exceeded")


def _validate(body: Json, models: dict[str, Model]) -> Model:
    """The checks the real API makes on what expertloop sends; the model asked for."""
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise ApiError(400, f"Unrecognized request argument supplied: {unknown[0]}")
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "you must provide a model parameter")
    if name not in models:
        raise ApiError(404, f"The model `{name}` does not exist or you do not have access to "
                       "it.", code="model_not_found")
    _check_messages(body.get("messages"))
    _check_numbers(body)
    _check_logprobs(body)
    return models[name]


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages", f"{json.dumps(messages)} is too short - 'messages'",
                       "empty_array")
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise _invalid(f"messages[{i}].role", f"Invalid value: '{role}'. Supported values "
                           "are: 'system', 'assistant' and 'user'.", "invalid_value")
        content = message.get("content")
        if isinstance(content, list):
            _check_parts(content, f"messages[{i}]", role)
        elif not isinstance(content, str):
            raise _invalid(f"messages[{i}].content", f"Invalid type for 'messages[{i}].content'"
                           ": expected one of a string or array of objects, but got "
                           f"{_json_type(content)} instead.", "invalid_type")


def _check_parts(parts: list[Any], where: str, role: str) -> None:
    """Content parts as the API checks them (wordings from its 400 replies)."""
    if not parts:
        raise _invalid(f"{where}.content", f"Invalid '{where}.content': empty array. Expected "
                       "an array with minimum length 1, but got an empty array instead.",
                       "empty_array")
    for j, part in enumerate(parts):
        param = f"{where}.content[{j}]"
        if not isinstance(part, dict):
            raise _invalid(param, f"Invalid type for '{param}': expected an object, but got "
                           f"{_json_type(part)} instead.", "invalid_type")
        kind = part.get("type")
        if kind == "text":
            _check_text(part, param)
        elif kind == "image_url":
            if role != "user":
                raise _invalid(where, f"Invalid '{where}'. Image URLs are only allowed for "
                               f"messages with role 'user', but this message with role '{role}' "
                               "contains an image URL.", "invalid_value")
            _check_image(part.get("image_url"), f"{param}.image_url")
        else:
            raise _invalid(f"{param}.type", f"Invalid value: '{kind}'. Supported values are: "
                           "'text' and 'image_url'.", "invalid_value")


def _check_text(part: Json, param: str) -> None:
    if "text" not in part:
        raise _invalid(f"{param}.text", f"Missing required parameter: '{param}.text'.",
                       "missing_required_parameter")
    if not isinstance(part["text"], str):
        raise _invalid(f"{param}.text", f"Invalid type for '{param}.text': expected a string, "
                       f"but got {_json_type(part['text'])} instead.", "invalid_type")


def _check_image(image: Any, param: str) -> None:
    if not isinstance(image, dict):
        raise _invalid(param, f"Invalid type for '{param}': expected an object, but got "
                       f"{_json_type(image)} instead.", "invalid_type")
    if "url" not in image:
        raise _invalid(f"{param}.url", f"Missing required parameter: '{param}.url'.",
                       "missing_required_parameter")
    if image.get("detail", "auto") not in DETAILS:
        raise _invalid(f"{param}.detail", f"Invalid value: '{image['detail']}'. Supported "
                       "values are: 'auto', 'low', and 'high'.", "invalid_value")
    url = image["url"]
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return  # the API fetches it; the emulator stays off the network
    _check_data_url(url, f"{param}.url")


def _check_data_url(url: Any, param: str) -> None:
    """A base64 data URL of an image the API can read."""
    expected = (f"Invalid image URL: '{param}'. Expected a base64-encoded data URL with an "
                "image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got ")
    if not isinstance(url, str) or not url.startswith("data:"):
        raise _invalid(param, expected + "a value without the 'data:' prefix.", "invalid_value")
    header, _, payload = url.partition(",")
    if not header.startswith("data:image/"):
        raise ApiError(400, "Invalid MIME type. Only image types are supported.",
                       code="invalid_image_format")
    if not header.endswith(";base64"):
        raise _invalid(param, expected + "an invalid base64-encoded value.", "invalid_value")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(param, expected + "an invalid base64-encoded value.",
                       "invalid_value") from None
    if not data:
        raise _invalid(param, expected + "empty base64-encoded bytes.", "invalid_value")
    if _image_format(data) is None:
        raise ApiError(400, "You uploaded an unsupported image. Please make sure your image has "
                       "of one the following formats: ['png', 'jpeg', 'gif', 'webp'].",
                       code="invalid_image_format")


def _image_format(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return next((name for magic, name in IMAGE_FORMATS.items() if data.startswith(magic)), None)


def _json_type(value: Any) -> str:
    """How OpenAI's errors name what was sent instead ("an object", "a string")."""
    if isinstance(value, bool):
        return "a boolean"
    names = {dict: "an object", list: "an array", str: "a string", int: "an integer",
             float: "a decimal", type(None): "null"}
    return names.get(type(value), "a value")


def _check_numbers(body: Json) -> None:
    for name, (kind, low, high) in BOUNDS.items():
        value = body.get(name)
        if value is None:
            continue
        numeric = int if kind == "integer" else int | float
        if isinstance(value, bool) or not isinstance(value, numeric):
            raise _invalid(name, f"Invalid type for '{name}': expected {kind}.", "invalid_type")
        if not low <= value <= high:
            side = "below_min" if value < low else "above_max"
            raise _invalid(name, f"Invalid '{name}': {value} is outside {low} to {high}.",
                           f"{kind}_{side}_value")


def _check_logprobs(body: Json) -> None:
    """OpenAI: "`logprobs` must be set to true if [top_logprobs] is used"."""
    if not isinstance(body.get("logprobs", False), bool):
        raise _invalid("logprobs", "Invalid type for 'logprobs': expected a boolean.",
                       "invalid_type")
    if body.get("top_logprobs") is not None and body.get("logprobs") is not True:
        raise _invalid("top_logprobs", "Invalid value for 'top_logprobs': 'logprobs' must be "
                       "set to true.", "invalid_value")


def _invalid(param: str, message: str, code: str) -> ApiError:
    return ApiError(400, message, param=param, code=code)
