"""`@requires_approval`: a tool an agent may call only once an expert approved this very call.
The expert sees the function and its arguments, and may approve, reject (with a reason) or
edit the arguments; the agent gets the function's result, or the reason as a string it can
read and act on, never an exception it did not expect from its tool."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, Unpack, cast

from expertloop.aclient import aask
from expertloop.client import ask
from expertloop.decision import Decision
from expertloop.wire import CallOptions, To

F = TypeVar("F", bound=Callable[..., Any])
OWN = ("self", "cls")  # a method's receiver is not the expert's business, nor JSON
QUESTION_MAX = 3000


class Call:
    """One call of a guarded function: what the expert is asked, and how it runs after."""

    def __init__(self, function: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any], question: str | None) -> None:
        self.function = function
        self.signature = inspect.signature(function)
        self.bound = self.signature.bind(*args, **kwargs)  # a wrong call fails here, unasked
        self.bound.apply_defaults()
        self.template = question

    def shown(self) -> dict[str, Any]:
        """The arguments as JSON (values JSON cannot hold are shown as text)."""
        given = {name: value for name, value in self.bound.arguments.items() if name not in OWN}
        return cast(dict[str, Any], json.loads(json.dumps(given, default=str)))

    def proposal(self) -> dict[str, Any]:
        return {"function": self.function.__name__, "args": self.shown()}

    def question(self) -> str:
        """The template filled with the arguments, or "Run refund(order=5512, ...)?"."""
        if self.template:
            try:
                return self.template.format(**self.bound.arguments)[:QUESTION_MAX]
            except (KeyError, IndexError, ValueError):
                return self.template[:QUESTION_MAX]
        listed = ", ".join(f"{name}={json.dumps(value)}" for name, value in self.shown().items())
        return f"Run {self.function.__name__}({listed})?"[:QUESTION_MAX]

    def edited(self, args: dict[str, Any]) -> inspect.BoundArguments | str:
        """The call with the expert's arguments, or why it cannot be made with them."""
        arguments = dict(self.bound.arguments)
        unknown = sorted(set(args) - set(self.signature.parameters) - set(OWN))
        if unknown:
            return f"{self.function.__name__} takes no argument {', '.join(unknown)}"
        arguments.update({name: value for name, value in args.items() if name not in OWN})
        return inspect.BoundArguments(self.signature, arguments)

    def verdict(self, decision: Decision) -> inspect.BoundArguments | str:
        """The arguments to run with when the expert let it go ahead, else the tool result."""
        if decision.status == "approved":
            return self.bound
        if decision.status == "edited" and decision.args is not None:
            made = self.edited(decision.args)
            if isinstance(made, str):
                return f"Edited by {', '.join(decision.by)}, but {made}; not run"
            return made
        return f"{decision.reason()}; {self.function.__name__} was not run"


def requires_approval(to: To = None, deadline_s: int = 900, *, question: str | None = None,
                      base_url: str | None = None, token: str | None = None,
                      **options: Unpack[CallOptions]) -> Callable[[F], F]:
    """Guard a sync or async function: each call asks `approve` first (a fresh call_id per
    call). `question` may name the arguments: "Refund {amount} EUR to order {order}?"."""

    def settings(call: Call) -> dict[str, Any]:
        return {"kind": "approve", "proposal": call.proposal(), "to": to,
                "deadline_s": deadline_s, "base_url": base_url, "token": token, **options}

    def decorate(function: F) -> F:
        if inspect.iscoroutinefunction(function):
            return cast(F, _guard_async(function, question, settings))

        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            call = Call(function, args, kwargs, question)
            run = call.verdict(ask(call.question(), **settings(call)))
            return run if isinstance(run, str) else function(*run.args, **run.kwargs)

        return cast(F, guarded)

    return decorate


def _guard_async(function: Callable[..., Awaitable[Any]], question: str | None,
                 settings: Callable[[Call], dict[str, Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(function)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        call = Call(function, args, kwargs, question)
        run = call.verdict(await aask(call.question(), **settings(call)))
        return run if isinstance(run, str) else await function(*run.args, **run.kwargs)

    return guarded
