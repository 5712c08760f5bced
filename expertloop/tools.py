"""Ask an expert as a tool a model calls itself: the OpenAI-style function definition, and
the handler that runs a model's tool call as an ask (its tool-call id is the call_id, so a
replayed conversation asks nothing twice) and returns the result message's content."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from expertloop.aclient import AsyncClient
from expertloop.client import Client
from expertloop.decision import Decision
from expertloop.wire import CallOptions, To

TOOL_NAME = "ask_an_expert"
KINDS = ("write", "choose", "verify", "approve")
DESCRIPTION = (
    "Ask a qualified human expert and wait for the answer. Use it when a step is ambiguous "
    "or high-stakes and a person must decide: 'write' for an answer in the expert's words, "
    "'choose' to pick the better of two drafts, 'verify' to accept or correct one draft, "
    "'approve' to approve, reject or edit a function call before it runs.")
KIND_HELP = {
    "write": "write: the expert answers the question in their own words",
    "choose": "choose: the expert picks the better of two drafts (give exactly two)",
    "verify": "verify: the expert accepts one draft or overrides it (give exactly one)",
    "approve": "approve: the expert approves, rejects or edits `proposal` (a function call)",
}


def expert_tool(name: str = TOOL_NAME, *, description: str = DESCRIPTION,
                kinds: Sequence[str] = KINDS) -> dict[str, Any]:
    """`{"type": "function", "function": {...}}` for a model's `tools=[...]`."""
    properties: dict[str, Any] = {
        "question": {"type": "string", "description": "The question, short and self-contained"},
        "context": {"type": "string", "description": "What the expert needs to know to decide"},
        "kind": {"type": "string", "enum": list(kinds),
                 "description": "; ".join(KIND_HELP[kind] for kind in kinds)},
    }
    if {"choose", "verify"} & set(kinds):
        properties["drafts"] = {"type": "array", "items": {"type": "string"},
                                "description": "choose: the two candidate answers; verify: "
                                               "the one answer to check"}
    if "approve" in kinds:
        properties["proposal"] = {
            "type": "object", "description": "approve: the call that would run",
            "properties": {"function": {"type": "string"}, "args": {"type": "object"}},
            "required": ["function", "args"]}
    parameters = {"type": "object", "properties": properties, "required": ["question", "kind"]}
    return {"type": "function",
            "function": {"name": name, "description": description, "parameters": parameters}}


def handle_tool_call(call: Any, *, to: To = None, deadline_s: int = 900,
                     base_url: str | None = None, token: str | None = None,
                     **options: Unpack[CallOptions]) -> str:
    """Run a model's tool call (the openai SDK's object or its dict) as an ask and return
    the tool message's content: the decision as JSON."""
    call_id, arguments = call_parts(call)
    asked = ask_of(arguments, call_id, to, deadline_s, options)
    return result_of(Client(base_url, token).ask(asked.pop("question"), **asked))


async def ahandle_tool_call(call: Any, *, to: To = None, deadline_s: int = 900,
                            base_url: str | None = None, token: str | None = None,
                            **options: Unpack[CallOptions]) -> str:
    """`handle_tool_call` without blocking the event loop."""
    call_id, arguments = call_parts(call)
    asked = ask_of(arguments, call_id, to, deadline_s, options)
    async with AsyncClient(base_url, token) as client:
        return result_of(await client.ask(asked.pop("question"), **asked))


def call_parts(call: Any) -> tuple[str, dict[str, Any]]:
    """The id and the parsed arguments of a tool call, as an object or a dict."""
    found = call if isinstance(call, Mapping) else {"id": call.id, "function": {
        "name": call.function.name, "arguments": call.function.arguments}}
    arguments = found["function"]["arguments"]
    parsed = json.loads(arguments) if isinstance(arguments, str) else dict(arguments)
    if not isinstance(parsed, dict) or not parsed.get("question"):
        raise ValueError("the tool call's arguments need a question")
    return str(found["id"]), parsed


def ask_of(arguments: dict[str, Any], call_id: str, to: To, deadline_s: int,
           options: CallOptions) -> dict[str, Any]:
    """The model chooses what to ask; the developer chose who answers, by when, for what pay."""
    asked: dict[str, Any] = {**options, "to": to, "deadline_s": deadline_s,
                             "call_id": call_id, "kind": str(arguments.get("kind") or "write")}
    if arguments.get("context"):
        asked["context"] = str(arguments["context"])
    if arguments.get("drafts"):
        asked["drafts"] = list(arguments["drafts"])
    if arguments.get("proposal"):
        asked["proposal"] = dict(arguments["proposal"])
    return {"question": str(arguments["question"]), **asked}


def result_of(decision: Decision) -> str:
    """What the model reads back: the status, the decision, the comment and who decided."""
    return json.dumps({"status": decision.status, "decision": decision.decision,
                       "comment": decision.comment, "by": decision.by, "ask": decision.id})
