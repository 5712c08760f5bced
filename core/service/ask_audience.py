"""Who a live ask could reach, read narrowly: a POST needs the experts its `to` names or
those with its skills, not every profile (reading all of them cost ~10 ms of CPU per POST
with 200 experts). A store that keeps a skill index offers `ask_audience`; any other store
is read whole, as before."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from core.domain.asks import AskTo
from core.domain.experts import Expert
from core.ports import AskStore


@runtime_checkable
class AskAudience(Protocol):
    """Every expert `to` could ever allow and no one else: the named ones that exist; for
    skills, everyone holding any of them (so a skill nobody holds shows as such); with
    neither, everyone."""

    async def ask_audience(self, to: AskTo) -> list[Expert]: ...


async def experts_for(store: AskStore, to: AskTo) -> list[Expert]:
    """The experts the rules (core/service/ask_rules.py) need to judge an ask to `to`."""
    if isinstance(store, AskAudience):
        return await store.ask_audience(to)
    return await store.ask_experts()
