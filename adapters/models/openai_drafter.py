"""The Drafter port over the official `openai` package: any OpenAI-compatible endpoint (OpenAI,
vLLM, llama.cpp's server, Ollama, TGI, gateways). The client never retries by itself
(`max_retries=0`): every wait and retry is the drafting loop's, so each reaches the record.
The key is read from the environment at call time and never leaves this module: the
endpoint's error text is scrubbed of it before it travels anywhere."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import openai
from openai import AsyncOpenAI

from core.errors import ModelError
from core.ports import ModelCall, ModelReply

NO_KEY = "expertloop-no-key"  # local servers take any key; the client insists on one
MASKED = re.compile(r"(Incorrect API key provided:?)\s*\S+")


class OpenAIDrafter:
    """One client per endpoint and key, kept for its connection pool."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str, float], AsyncOpenAI] = {}

    async def complete(self, call: ModelCall) -> ModelReply:
        key = self._key(call)
        client = self._client(call.base_url, key, call.timeout_s)
        extra: dict[str, Any] = {"logprobs": True} if call.logprobs else {}
        started = time.perf_counter()
        try:
            response = await client.chat.completions.create(
                model=call.model, messages=call.messages, **call.params, **extra)  # type: ignore[arg-type]
        except openai.APIError as exc:
            raise _model_error(exc, key) from None
        latency = round((time.perf_counter() - started) * 1000)
        return _reply(response, latency)

    def _key(self, call: ModelCall) -> str:
        if call.api_key_env is None:
            return NO_KEY
        key = os.environ.get(call.api_key_env, "")
        if not key:
            raise ModelError("unauthorized", f"the environment variable {call.api_key_env} that "
                             f"should hold the key for {call.base_url} is not set")
        return key

    def _client(self, base_url: str, key: str, timeout_s: float) -> AsyncOpenAI:
        found = self._clients.get((base_url, key, timeout_s))
        if found is None:
            found = AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=timeout_s)
            self._clients[(base_url, key, timeout_s)] = found
        return found

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


def _reply(response: Any, latency_ms: int) -> ModelReply:
    choice = response.choices[0] if response.choices else None
    text = (choice.message.content or "") if choice else ""
    usage = response.usage
    return ModelReply(
        text=text, model=response.model, system_fingerprint=response.system_fingerprint,
        finish_reason=choice.finish_reason if choice else None,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        confidence=_confidence(choice), latency_ms=latency_ms)


def _confidence(choice: Any) -> float | None:
    """The mean token logprob (<= 0; 0 is certain), the record's confidence in a draft."""
    content = choice.logprobs.content if choice is not None and choice.logprobs else None
    if not content:
        return None
    return round(min(sum(token.logprob for token in content) / len(content), 0.0), 6)


def _model_error(exc: openai.APIError, key: str) -> ModelError:
    message = _scrub(str(getattr(exc, "message", exc)), key)
    if isinstance(exc, openai.APITimeoutError):
        return ModelError("unavailable", "the model did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return ModelError("unavailable", f"cannot reach the model: {message}")
    status = getattr(exc, "status_code", 0)
    code = getattr(exc, "code", None)
    param = getattr(exc, "param", None)
    if status == 429:
        return ModelError("rate_limited", message, _retry_after(exc))
    if status in (401, 403):
        return ModelError("unauthorized", f"{status}: {message}")
    if status == 404:
        return ModelError("not_found", f"404: {message}")
    if status == 400 and (param == "logprobs" or "logprobs" in message):
        return ModelError("no_logprobs", message)
    if status == 400 and (code == "context_length_exceeded" or "context length" in message):
        return ModelError("too_long", message)
    if status >= 500 or status in (408, 409):
        return ModelError("unavailable", f"{status}: {message}")
    return ModelError("refused", f"{status}: {message}")


def _retry_after(exc: openai.APIError) -> float | None:
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None


def _scrub(message: str, key: str) -> str:
    """No key, whole or masked, in anything we keep or show."""
    if key and key != NO_KEY:
        message = message.replace(key, "***")
    return MASKED.sub(r"\1 ***", message)
