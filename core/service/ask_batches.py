"""What the live asks' hot paths ask of the store beyond core/ports.py's AskStore, each in one
round trip however many it covers: an answer reads its expert's profile beside the script
that records it, a POST reads only the experts its `to` could allow (reading
every profile cost ~10 ms of CPU per POST with 200 experts), and a worker reads and finishes
a batch of queued cards or callbacks at once rather than one call each; and an answer's next
card is claimed against the push in the read that finds it. The Redis store implements it.
Not in AskStore (core/ports.py): with these six it would hold 17 methods, past the dozen
tests/test_store_contract_roles.py allows a role, and every role method needs a call in a
tests/test_store_contract*.py suite; a role of its own in Stores is the way to move it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from core.domain.asks import AskTo
from core.domain.experts import Expert
from core.ports import AskAnswering, AskRecorded, AskStore, HeldAsk, StoredAsk


@runtime_checkable
class AskBatches(Protocol):
    async def ask_audience(self, to: AskTo) -> list[Expert]:
        """Every expert `to` could ever allow and no one else: the named ones that exist; for
        skills, everyone holding any of them (so a skill nobody holds shows as such); with
        neither, everyone."""
        ...

    async def offers_to_push(self, pairs: list[tuple[str, str]], now: int
                             ) -> dict[tuple[str, str], HeldAsk]:
        """Of (token, channel) pairs of queued cards, those still to show: the ask pending,
        not answered by its expert, not yet delivered on that channel. Until its delivery is
        marked, such an offer counts as delivered in `held_asks`, so an answer's next card
        is not the one being pushed."""
        ...

    async def next_asks(self, expert_id: str, channel: str, now: int) -> list[HeldAsk]:
        """held_asks for an answer's next card on `channel`, in the same step claiming the
        first offer neither answered, nor delivered, nor being pushed: offers_to_push then
        leaves it on that channel (for a minute, or until its delivery is marked), so the
        expert sees it once. Rows are as read before the claim."""
        ...

    async def answer_ask_reading(self, answering: AskAnswering
                                 ) -> tuple[AskRecorded, Expert | None]:
        """AskStore.answer_ask, with the answering expert's profile read in the same round
        trip (their pay and tallies are kept by their own calendar day)."""
        ...

    async def load_asks(self, ask_ids: list[str]) -> list[StoredAsk]:
        """The asks that exist, in the order asked."""
        ...

    async def finish_ask_jobs(self, queue: str, entries: list[str]) -> None:
        """Done with these entries of a queue (as finish_ask_job without a retry)."""
        ...


def batches_of(store: AskStore) -> AskBatches:
    """The store's batch reads; a store without them cannot serve live asks at speed."""
    if not isinstance(store, AskBatches):
        raise TypeError(f"{type(store).__name__} lacks the live asks' batch reads "
                        "(core/service/ask_batches.py)")
    return store
