"""The OpenAI-compatible emulator, driven by the official `openai` client over HTTP: what a drafter
will get back, and each failure surfacing as the exception class the client raises for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from tests.emulators.openai import API_KEY, FaultKind, OpenAIEmulator

CONVERSATION = [{"role": "system", "content": "You are a careful clinician."},
                {"role": "user", "content": "I take warfarin."},
                {"role": "assistant", "content": "Noted. What would you like to know?"},
                {"role": "user", "content": "Can I take ibuprofen?"}]
ASK = [{"role": "user", "content": "Is it safe to take ibuprofen with warfarin?"}]


@pytest.fixture
async def emulator() -> AsyncIterator[OpenAIEmulator]:
    server = OpenAIEmulator()
    await server.start()
    yield server
    await server.stop()


def client_of(emulator: OpenAIEmulator, key: str = API_KEY, timeout: float = 10) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=emulator.url, api_key=key, max_retries=0, timeout=timeout)


async def complete(client: AsyncOpenAI, model: str = "model-a",
                   messages: list[dict[str, Any]] = ASK, **params: Any) -> ChatCompletion:
    """The call a drafter makes, with plain dicts for the client's TypedDict messages."""
    return await client.chat.completions.create(
        model=model, messages=messages, **params)  # type: ignore[arg-type]


async def test_a_conversation_is_answered_with_the_draft_a_test_can_read_back(
        emulator: OpenAIEmulator) -> None:
    emulator.add_model("qwen", version="Qwen/Qwen2.5-7B-Instruct", fingerprint=None)
    response = await complete(client_of(emulator), "qwen", CONVERSATION, temperature=0.7)
    text = emulator.draft_for("qwen", CONVERSATION, temperature=0.7)
    choice = response.choices[0]
    assert (choice.message.role, choice.message.content) == ("assistant", text)
    assert (choice.finish_reason, choice.logprobs) == ("stop", None)
    assert (response.object, response.model) == ("chat.completion", "Qwen/Qwen2.5-7B-Instruct")
    assert response.system_fingerprint is None
    assert response.usage is not None
    assert response.usage.prompt_tokens == 19  # 5 + 3 + 7 + 4 whitespace-split words
    assert response.usage.completion_tokens == len(text.split())
    assert response.usage.total_tokens == 19 + len(text.split())
    assert [call.body["messages"] for call in emulator.calls] == [CONVERSATION]


async def test_drafts_are_deterministic_and_differ_by_model_and_seed(
        emulator: OpenAIEmulator) -> None:
    client = client_of(emulator)
    texts = [(await complete(client, model, seed=seed)).choices[0].message.content
             for model, seed in [("model-a", 1), ("model-a", 1), ("model-b", 1), ("model-a", 2)]]
    assert texts[0] == texts[1] == emulator.draft_for("model-a", ASK, seed=1)
    assert len({texts[0], texts[2], texts[3]}) == 3
    assert len(emulator.calls) == len(emulator.answered) == 4


async def test_logprobs_come_only_when_asked_and_carry_the_models_confidence(
        emulator: OpenAIEmulator) -> None:
    emulator.set_logprob("model-a", -0.05)
    client = client_of(emulator)
    plain = await complete(client)
    asked = await complete(client, logprobs=True, top_logprobs=3)
    assert plain.choices[0].logprobs is None
    logprobs = asked.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert "".join(token.token for token in logprobs.content) == asked.choices[0].message.content
    assert {token.logprob for token in logprobs.content} == {-0.05}
    first = logprobs.content[0]
    assert first.bytes == list(first.token.encode())
    assert [top.token for top in first.top_logprobs][0] == first.token
    assert len(first.top_logprobs) == 3


async def test_hash_derived_logprobs_are_negative_and_repeatable(
        emulator: OpenAIEmulator) -> None:
    client = client_of(emulator)
    runs = [await complete(client, "model-b", logprobs=True) for _ in range(2)]
    values = [[t.logprob for t in run.choices[0].logprobs.content]  # type: ignore[union-attr]
              for run in runs]
    assert values[0] == values[1]
    assert all(value < 0 for value in values[0])


async def test_the_model_list(emulator: OpenAIEmulator) -> None:
    models = await client_of(emulator).models.list()
    assert [(model.id, model.object) for model in models.data] == [
        ("model-a", "model"), ("model-b", "model")]


async def test_max_tokens_and_a_length_fault_cut_the_reply(emulator: OpenAIEmulator) -> None:
    client = client_of(emulator)
    words = emulator.draft_for("model-a", ASK).split()
    capped = await complete(client, max_tokens=3)
    assert (capped.choices[0].finish_reason, capped.choices[0].message.content) == (
        "length", " ".join(words[:3]))
    emulator.fail("length", model="model-a")
    cut = await complete(client)
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == " ".join(words[:len(words) // 2])
    again = await complete(client)
    assert (again.choices[0].finish_reason, again.choices[0].message.content) == (
        "stop", " ".join(words))


async def test_a_rate_limit_says_when_to_come_back(emulator: OpenAIEmulator) -> None:
    emulator.fail("rate_limit", model="model-b", retry_after=7, times=2)
    client = client_of(emulator)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as caught:
            await complete(client, model="model-b")
        assert caught.value.response.headers["Retry-After"] == "7"
        assert caught.value.code == "rate_limit_exceeded"
    await complete(client)
    await complete(client, model="model-b")
    assert [call.status for call in emulator.calls] == [429, 429, 200, 200]


@pytest.mark.parametrize("kind, error", [("server_error", openai.InternalServerError),
                                         ("unauthorized", openai.AuthenticationError)])
async def test_server_errors_and_a_revoked_key_on_demand(
        emulator: OpenAIEmulator, kind: FaultKind, error: type[Exception]) -> None:
    emulator.fail(kind)
    client = client_of(emulator)
    with pytest.raises(error):
        await complete(client)
    await complete(client)
    assert len(emulator.answered) == 1


async def test_a_wrong_key_is_refused_without_showing_it_whole(
        emulator: OpenAIEmulator) -> None:
    key = "sk-not-the-right-one-1234"
    with pytest.raises(openai.AuthenticationError) as caught:
        await complete(client_of(emulator, key=key))
    assert caught.value.code == "invalid_api_key"
    assert key not in str(caught.value)
    with pytest.raises(openai.AuthenticationError):
        await client_of(emulator, key=key).models.list()


async def test_an_unknown_model_is_not_found(emulator: OpenAIEmulator) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await complete(client_of(emulator), model="gpt-9")
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize("arguments, param", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "bot", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [*ASK, {"role": "assistant", "content": None}]}, "messages[1].content"),
    ({"temperature": 2.5}, "temperature"),
    ({"top_p": -0.1}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"n": 2}, "n"),
    ({"top_logprobs": 21, "logprobs": True}, "top_logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
])
async def test_malformed_requests_are_refused_naming_the_param(
        emulator: OpenAIEmulator, arguments: dict[str, object], param: str) -> None:
    request: dict[str, Any] = {"model": "model-a", "messages": ASK, **arguments}
    with pytest.raises(openai.BadRequestError) as caught:
        await complete(client_of(emulator), **request)
    assert caught.value.param == param
    assert emulator.answered == []


async def test_a_server_that_refuses_logprobs_answers_without_them(
        emulator: OpenAIEmulator) -> None:
    emulator.fail("no_logprobs", times=None)
    client = client_of(emulator)
    with pytest.raises(openai.BadRequestError) as caught:
        await complete(client, logprobs=True)
    assert (caught.value.code, caught.value.param) == ("unsupported_parameter", "logprobs")
    plain = await complete(client)
    assert plain.choices[0].message.content == emulator.draft_for("model-a", ASK)
    with pytest.raises(openai.BadRequestError):
        await complete(client, logprobs=True)


async def test_a_prompt_over_the_context_is_refused(emulator: OpenAIEmulator) -> None:
    emulator.set_context("model-a", 18)
    client = client_of(emulator)
    with pytest.raises(openai.BadRequestError) as caught:
        await complete(client, messages=CONVERSATION)
    assert caught.value.code == "context_length_exceeded"
    await complete(client, model="model-b", messages=CONVERSATION)
    assert [call.status for call in emulator.calls] == [400, 200]


async def test_a_slow_reply_times_the_client_out(emulator: OpenAIEmulator) -> None:
    emulator.fail("slow", delay=1.0)
    with pytest.raises(openai.APITimeoutError):
        await complete(client_of(emulator, timeout=0.2))
    emulator.latency = 1.0  # every reply, as a bench's model answers
    with pytest.raises(openai.APITimeoutError):
        await complete(client_of(emulator, timeout=0.2))
    emulator.latency = 0
    await complete(client_of(emulator, timeout=0.5))
    assert len(emulator.calls) == 3
