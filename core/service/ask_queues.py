"""The queues live asks leave for the workers, as AskService offers them: cards to push, cards
to update ("no longer needed"), and callbacks to send. Each is a Redis stream read in a
consumer group (so workers share it and a dead worker's entries are taken again), read and
finished a batch at a time."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from core.domain.asks import ASKS_LOG, AskView
from core.domain.cards import Card
from core.errors import NotFound
from core.ports import AskRetry, Clock, Stores
from core.provenance.events import Event, body_json, iso_ms
from core.service.ask_rules import NOTICES
from core.service.ask_tokens import TokenBindings
from core.service.ask_views import card_for, view_of

MAX_CALLBACK_TRIES = 8


class AskDelivery(NamedTuple):
    """A card to push now to one chat account (`telegram:123`, `slack:U1`) of one expert."""

    entry: str
    expert: str
    identity: str
    card: Card


class AskNotice(NamedTuple):
    """A card to update: its ask was decided by someone else, withdrawn or expired (`why`);
    `text` says so ("no longer needed")."""

    entry: str
    token: str
    expert: str
    identity: str
    ask: str
    why: str
    text: str


class CallbackJob(NamedTuple):
    """A decision to POST to the agent; `delivery` is the same on every retry (a header, so
    the agent can deduplicate), `tries` the failed ones before this."""

    entry: str
    ask_id: str
    url: str
    delivery: str
    body: str
    tries: int


class AskQueues:
    def __init__(self, stores: Stores, clock: Clock) -> None:
        self.store = stores.asks
        self.batches = stores.ask_batches
        self.log = stores.log
        self.clock = clock
        self.bindings = TokenBindings()  # what each token is bound to, kept as read

    async def take_deliveries(self, consumer: str, count: int, block_ms: int
                              ) -> list[AskDelivery]:
        """Cards to push now, read in one call: an offer whose ask was decided meanwhile, or
        that its expert answered, or whose card that chat shows already (sent as the next card
        after an answer to another ask), is dropped here."""
        jobs = await self.store.take_ask_jobs("deliveries", consumer, count, block_ms,
                                              self.clock.now_ms())
        pairs = [(job.fields["token"], job.fields["identity"].partition(":")[0])
                 for job in jobs]
        offers = await self.batches.offers_to_push(pairs, self.clock.now_ms())
        found, dropped = [], []
        for job, pair in zip(jobs, pairs, strict=True):
            held = offers.get(pair)
            if held is None:
                dropped.append(job.entry)
                continue
            card = card_for(held, self.bindings.note(held).request)
            found.append(AskDelivery(job.entry, job.fields["expert"], job.fields["identity"],
                                     card))
        await self.batches.finish_ask_jobs("deliveries", dropped)
        return found

    async def delivery_done(self, *deliveries: AskDelivery) -> None:
        """Cards shown (or never to be): out of the queue, in one call."""
        await self.batches.finish_ask_jobs("deliveries", [d.entry for d in deliveries])

    async def take_notices(self, consumer: str, count: int, block_ms: int) -> list[AskNotice]:
        jobs = await self.store.take_ask_jobs("notices", consumer, count, block_ms,
                                              self.clock.now_ms())
        return [AskNotice(job.entry, job.fields["token"], job.fields["expert"],
                          job.fields["identity"], job.fields["ask"], job.fields["why"],
                          NOTICES[job.fields["why"]]) for job in jobs]

    async def notice_done(self, notice: AskNotice) -> None:
        await self.store.finish_ask_job("notices", notice.entry)

    async def take_callbacks(self, consumer: str, count: int, block_ms: int
                             ) -> list[CallbackJob]:
        """Decisions to POST; the body (the AskView) is fixed at the first take and kept for
        every retry, so the agent gets the same bytes each time."""
        jobs = await self.store.take_ask_jobs("callbacks", consumer, count, block_ms,
                                              self.clock.now_ms())
        views = await self._views([job.fields["ask"] for job in jobs
                                   if not job.fields.get("body")])
        return [CallbackJob(job.entry, job.fields["ask"], job.fields["url"],
                            job.fields["delivery"],
                            job.fields.get("body") or views[job.fields["ask"]].model_dump_json(),
                            int(job.fields["tries"])) for job in jobs]

    async def _views(self, ask_ids: list[str]) -> dict[str, AskView]:
        """Several asks' views in two reads (the asks, then their events' seals)."""
        asks = await self.batches.load_asks(ask_ids)
        found = {ask.id for ask in asks}
        missing = [ask_id for ask_id in ask_ids if ask_id not in found]
        if missing:
            raise NotFound(f"no ask {missing[0]!r}")
        seals = await self.log.read_seals(ASKS_LOG, [s for ask in asks for s in ask.seqs])
        return {ask.id: view_of(ask, seals) for ask in asks}

    async def callback_done(self, *jobs: CallbackJob) -> None:
        """Callbacks the agent took: out of the queue, in one call."""
        await self.batches.finish_ask_jobs("callbacks", [job.entry for job in jobs])

    async def callback_retry(self, job: CallbackJob, error: str, at_ms: int) -> bool:
        """Send it again at `at_ms`; False once it has failed MAX_CALLBACK_TRIES times: then
        `ask_callback_failed` records the last error and it is not tried again."""
        tries = job.tries + 1
        fields = {"ask": job.ask_id, "url": job.url, "delivery": job.delivery,
                  "body": job.body, "tries": str(tries)}
        give_up = ""
        if tries >= MAX_CALLBACK_TRIES:
            give_up = body_json(Event(
                campaign=ASKS_LOG, type="ask_callback_failed", at=iso_ms(self.clock.now_ms()),
                actor="system", item=job.ask_id,
                payload={"url": url_shown(job.url), "delivery": job.delivery, "tries": tries,
                         "error": error[:500]}))
        await self.store.finish_ask_job("callbacks", job.entry,
                                        AskRetry(fields, at_ms, give_up, job.ask_id))
        return not give_up


def url_shown(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}" \
           f"{parts.path}"
