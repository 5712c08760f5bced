"""What an agent gets back from an ask: the server's view of it, typed, so a caller reads
`decision.approved` or `decision.args` instead of digging through JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DECIDED = frozenset({"approved", "rejected", "edited", "answered", "disagreed", "expired",
                     "withdrawn"})


class AskFailed(Exception):
    """The server refused the ask (4xx/5xx) or could not be reached after the retries; `status`
    is the HTTP code (0 when the network failed) and `detail` the server's list of problems."""

    def __init__(self, message: str, status: int = 0, detail: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or []


@dataclass(frozen=True)
class Decision:
    """GET /api/asks/{id} as a typed object; `view` keeps the whole answer for anything else."""

    id: str
    status: str
    decision: dict[str, Any] | None = None
    comment: str | None = None
    by: list[str] = field(default_factory=list)
    call_id: str | None = None
    kind: str | None = None
    expires_at: str | None = None
    decided_at: str | None = None
    waiting: str | None = None
    events: list[str] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)  # each expert's, under all_of
    view: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_view(cls, view: dict[str, Any]) -> Decision:
        return cls(id=view["id"], status=view["status"], decision=view.get("decision"),
                   comment=view.get("comment"), by=list(view.get("by") or []),
                   call_id=view.get("call_id"), kind=view.get("kind"),
                   expires_at=view.get("expires_at"), decided_at=view.get("decided_at"),
                   waiting=view.get("waiting"), events=list(view.get("events") or []),
                   decisions=list(view.get("decisions") or []), view=view)

    @property
    def pending(self) -> bool:
        """Still open: nobody decided before the client stopped waiting."""
        return self.status not in DECIDED

    @property
    def approved(self) -> bool:
        """The call may go ahead: approved as proposed, or with edited arguments."""
        return self.status in ("approved", "edited")

    @property
    def args(self) -> dict[str, Any] | None:
        """The expert's edited arguments (status `edited`), else None."""
        if self.status != "edited" or not self.decision:
            return None
        args = self.decision.get("args")
        return dict(args) if isinstance(args, dict) else None

    def reason(self) -> str:
        """One line an agent can read as a tool result when the answer is not a go-ahead."""
        who = ", ".join(self.by)
        by = f" by {who}" if who else ""
        if self.status == "rejected":
            return f"Rejected{by}: {self.comment or 'no reason given'}"
        if self.status == "expired":
            return "No expert answered before the deadline (expired)"
        if self.status == "withdrawn":
            return "The question was withdrawn before an expert answered"
        if self.status == "disagreed":
            return f"The experts disagreed{by}"
        if self.pending:
            return f"No decision yet (ask {self.id} is still pending)"
        return f"{self.status.capitalize()}{by}"
