"""Sealing and checking a campaign's provenance log through the store."""

from __future__ import annotations

import json

from core.ports import Log
from core.privacy.pseudonyms import pseudonymise
from core.provenance.chain import ChainChecker, Verdict, seal_events
from core.provenance.events import GENESIS

BATCH = 2000


class Ledger:
    def __init__(self, log: Log) -> None:
        self.log = log

    async def seal(self, campaign_id: str) -> int:
        """Hash every event appended since the last seal, in log order; returns how many.
        Sealers may run side by side: the chain is a function of the log, so they agree. A
        save the store refused (the head was read on a master that has since failed over, and
        these events sit past a gap on the new one) ends the pass: the next starts again from
        the stored head, and a worker must not die of it."""
        sealed = 0
        head = await self.log.chain_head(campaign_id)
        while True:
            events = await self.log.read_events(campaign_id, head.seq, BATCH)
            if not events:
                return sealed
            seals = seal_events(head, events)
            await self.log.save_seals(campaign_id, seals)
            head = await self.log.chain_head(campaign_id)
            if head.seq < seals[-1].seq:  # refused: the log changed under this sealer
                return sealed
            sealed += len(seals)

    async def events(self, campaign_id: str, after: int = 0, limit: int = 100
                     ) -> list[dict[str, object]]:
        """Events as the contract shows them: the stored body with its `seq`, `prev` and `hash`
        (`prev`/`hash` are null until the sealer has reached the event). Erased experts appear
        under their pseudonyms: every report, export and listing reads the log through here."""
        stored = await self.log.read_events(campaign_id, after, limit)
        seqs = [event.seq for event in stored]
        seals = await self.log.read_seals(campaign_id, [seqs[0] - 1, *seqs] if seqs else [])
        if seqs and seqs[0] == 1:
            seals[0] = GENESIS
        return pseudonymise([{**json.loads(event.body), "seq": event.seq,
                              "prev": seals.get(event.seq - 1), "hash": seals.get(event.seq)}
                             for event in stored], await self.log.erasures())

    async def verify(self, campaign_id: str) -> Verdict:
        """Recompute the whole chain from the stored events and compare with the stored seals,
        and the events found with the number the log counted before the check began."""
        appended = await self.log.last_seq(campaign_id)
        head = await self.log.chain_head(campaign_id)
        checker = ChainChecker(campaign_id, head.seq)
        after = 0
        while True:
            events = await self.log.read_events(campaign_id, after, BATCH)
            if not events:
                break
            seqs = [event.seq for event in events]
            # a few seals past the batch, so a swap across its edge is still told from a change
            beyond = range(seqs[-1] + 1, seqs[-1] + 9)
            seals = await self.log.read_seals(campaign_id, [*seqs, *beyond])
            if not checker.feed(events, seals):
                break
            after = events[-1].seq
        return checker.finish(appended)
