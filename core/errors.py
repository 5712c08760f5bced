"""Typed errors the core raises; adapters turn them into platform replies and HTTP codes."""

from __future__ import annotations


class ExpertloopError(Exception):
    """Base for errors a user can act on; the message is the one-line reason shown to them."""


class NotFound(ExpertloopError):
    """An unknown campaign, expert, item or lease."""


class Conflict(ExpertloopError):
    """The request clashes with what is stored: a duplicate id, a closed campaign."""


class InvalidAnswer(ExpertloopError):
    """The answer does not fit the task: wrong kind, a label not offered, a score off the scale."""


class InvalidCampaign(ExpertloopError):
    """A campaign file or item that cannot be accepted; `problems` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first}{more}")


class Problem:
    """One fault in an input: the file, line and field at fault, and what is wrong."""

    def __init__(self, msg: str, *, source: str = "", line: int | None = None,
                 loc: tuple[str | int, ...] = ()) -> None:
        self.msg, self.source, self.line, self.loc = msg, source, line, loc

    def field(self) -> str:
        return ".".join(str(part) for part in self.loc)

    def __str__(self) -> str:
        where = self.source or "input"
        if self.line is not None:
            where += f":{self.line}"
        field = self.field()
        return f"{where}: {field}: {self.msg}" if field else f"{where}: {self.msg}"

    def as_dict(self) -> dict[str, object]:
        return {"loc": list(self.loc), "line": self.line, "source": self.source, "msg": self.msg}


class CardRefused(ExpertloopError):
    """The platform refused a card for good (a 4xx other than 429): sending it again would
    fail the same way, so its task goes back to the pool instead of waiting on the expert."""


class ChannelDown(ExpertloopError):
    """A channel that is configured but not up yet (its platform has not answered); the
    message says why."""


class ModelError(ExpertloopError):
    """A model endpoint did not give a draft. `kind` says what to do about it: wait
    (rate_limited, with `retry_after` seconds), retry (unavailable), stop and ask the
    coordinator (unauthorized, not_found), ask without logprobs (no_logprobs), or give up on
    the item (too_long, refused)."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind, self.retry_after = kind, retry_after


class NotKept(ExpertloopError):
    """The store could not keep an answer safely (too few replicas confirmed it in time):
    nothing was acknowledged, and sending it again records it once."""
