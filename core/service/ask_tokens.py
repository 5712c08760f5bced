"""What an offer's token is bound to: its ask, its expert and the ask's request. All three are
fixed when the offer is made and never change, so a process keeps what it read and the hot
paths that need only the binding (an answer, a delivery's mark) skip reading it again. Live
state (the ask's status, whether it was answered) is never taken from here."""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from typing import NamedTuple

from core.domain.asks import AskRequest
from core.ports import HeldAsk

KEPT = 20_000  # tokens; each holds its ask's request, shared by the ask's tokens


class Binding(NamedTuple):
    ask: str
    expert: str
    request: AskRequest


@lru_cache(maxsize=4096)
def parsed_request(spec: str) -> AskRequest:
    """An ask's stored request, parsed once per process (AskRequest is frozen)."""
    return AskRequest.model_validate_json(spec)


class TokenBindings:
    """The bindings read lately, oldest dropped first past KEPT."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._found: OrderedDict[str, Binding] = OrderedDict()

    def note(self, held: HeldAsk) -> Binding:
        found = self._found.get(held.token)
        if found is None:
            found = Binding(held.ask.id, held.expert, parsed_request(held.ask.spec))
            self._found[held.token] = found
            if len(self._found) > self.kept:
                self._found.popitem(last=False)
        return found

    def get(self, token: str) -> Binding | None:
        return self._found.get(token)
