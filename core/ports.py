"""The outside things the core needs, as narrow Protocols that adapters satisfy structurally."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel

from core.domain.answers import Lease, Outcome
from core.domain.asks import AskTo
from core.domain.campaigns import Campaign, CampaignState, CampaignStatus
from core.domain.cards import Card
from core.domain.drafting import DraftingStatus, ModelSpec
from core.domain.experts import Expert
from core.domain.qualification import QualificationAnswer, QualificationResult
from core.privacy.pseudonyms import Erasures
from core.provenance.chain import ChainHead, Seal, StoredEvent
from core.provenance.events import Event
from core.provenance.segments import ArchivedEvent, SegmentMeta
from core.service.health import ChannelHealth, State

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from core.reports.lines import Lined, LinePlan
    from core.reports.records import TaskRecord
    from core.reports.tallies import Tallies


class Owed(NamedTuple):
    """An outbox entry as read: what is owed, and which putting of it (each put is new)."""

    entry: str
    version: str


class Inboxed(NamedTuple):
    """A platform request taken into a channel's inbox, as a consumer reads it back."""

    id: str
    lane: str  # requests of one lane (one user) are handled in order
    body: str
    attempts: int  # handlings that failed before this one
    kept_at: int  # when the web process kept it (ms): when the expert acted


class Clock(Protocol):
    def now_ms(self) -> int: ...


class StagedItem(NamedTuple):
    """A validated item ready to store: its canonical JSON and what assignment needs to know."""

    id: str
    n_drafts: int
    gold: bool
    json: str
    line: int | None = None
    plan: str = ""  # a DraftPlan's JSON when models still have to draft for the item
    conversation: bool = False  # the prompt is a list of chat turns
    queue_key: int | None = None  # the route order's key (core/domain/rules.queue_key)
    confidence: float | None = None  # the lowest of its drafts' confidences
    auto_accepted: str = ""  # the `auto_accepted` event: the model decides, no expert is asked
    audited: bool = False  # confident, but in the audit sample: experts judge it


class Route(BaseModel):
    """What next_task needs of an active campaign to decide whether to offer it to an expert."""

    campaign: str
    skills: list[str]
    gold_rate: float
    created_at: int


class Routing(NamedTuple):
    """What next_task reads about an expert: the profile, answers per day, active campaigns,
    and whether they hold an open live ask (read in the same round trip, so the common case,
    none, costs no read of the asks)."""

    expert: Expert | None
    done_by_day: dict[str, int]
    routes: list[Route]
    asks: bool = False


class Credit(NamedTuple):
    """An answer credited to its expert: one task on their local day, its time, its pay."""

    day: str
    seconds: float
    pay: float
    currency: str | None


class Claim(NamedTuple):
    """A request for one slot: the lease to create and its `assigned` event as far as the service
    knows it; the store adds the item it picks and the order it shows the drafts in. `credit`,
    if set, credits the expert's last answer (the daily cap, their stats) on the way."""

    campaign: str
    expert: str
    token: str
    day: str
    now: int
    expires_at: int
    shuffle: list[int]
    want_gold: bool
    overlap: int  # the least judgments an item gets; the store holds more for items asked again
    event: Event
    credit: Credit | None = None
    adjudicator: bool = False  # take an item awaiting a final call first
    escalated_after: int | None = None  # ms: take items asked again since then (None: none)


class Claimed(NamedTuple):
    """A lease, the `item_added` body holding the item, and the campaign's task time so far:
    the median of recent answers' active seconds and how many answers it is based on."""

    lease: Lease
    item_body: str
    median_seconds: float | None
    answers: int
    prior: tuple[int, ...] = ()  # an adjudication: the seqs of the item's earlier answers


class LeaseView(NamedTuple):
    lease: Lease
    item_body: str
    outcome: str | None


class Judging(NamedTuple):
    """How a counted answer weighs in on its item's agreement, for a campaign whose items may
    be asked again or adjudicated: the vote (a shown draft label when `shown`, which the store
    maps to the file's draft), and the campaign's settle rule."""

    vote: str | None
    shown: bool
    most: int  # the most judgments an item may get
    share: float
    share_ppm: int
    max_spread: int
    rated: bool
    adjudicate: bool


class Submission(NamedTuple):
    """One decision to store atomically with its event. The store completes the event with what
    the lease holds (item, shown order, gold, timings, late), so submit needs no read before it;
    core/domain/rules.py says how the store times the answer and counts the item's slots."""

    campaign: str
    token: str
    expert: str
    now: int
    effect: str  # answered | none_acceptable | skipped | flagged
    event: Event  # the answer's event as the service decided it, payload included
    decision: str
    overlap: int
    time_limit_s: int
    opened_at: int | None
    expect_drafts: int  # a ranking names this many drafts; 0 when the kind does not care
    route_days: list[str]  # read the expert's routing for these days in the same round trip
    judging: Judging | None = None
    reason_if_escalated: bool = False  # refuse an answer without a rationale on an item asked again


class Recorded(NamedTuple):
    """`recorded`, `duplicate` (the first outcome), `invalid` (the lease shows `drafts` drafts),
    or `expired` / `taken` / `gone` / `closed` (nothing recorded)."""

    status: str
    seq: int | None = None
    answered_at: int | None = None
    active_seconds: float | None = None
    decision: str | None = None
    day: str | None = None
    drafts: int | None = None
    late: bool = False  # honoured though the expiry pass had returned the lease to the pool


class ExpertTokens(NamedTuple):
    """What grants access as an expert, as stored: hashes only, never the tokens themselves."""

    web: str | None  # SHA-256 of the live web chat token
    invites: dict[str, int]  # SHA-256 of each open chat invite -> ms until it runs out


class Erasure(NamedTuple):
    """An expert to erase: their id's digest and pseudonym, the digests of their chat handles
    (shown as the pseudonym from now on) and the platform accounts to unlink."""

    expert_id: str
    id_digest: str
    pseudonym: str
    handle_digests: list[str]
    identities: list[str]


class Delivery(NamedTuple):
    """Where a card landed: the channel's id for the message and when it was shown (ms), and
    how each of its images went (`{"sha256", "as": "original" | "photo" |
    "converted:<type>"}`), since a platform may recompress what it shows."""

    message_id: str
    at: int
    images: tuple[dict[str, str], ...] = ()


class Messenger(Protocol):
    """Shows an expert their tasks on one channel. `address` is the channel's own handle for
    the expert (a Slack user, a Telegram chat, a web session)."""

    channel: str

    async def send_card(self, address: str, card: Card) -> Delivery: ...
    async def send_notice(self, address: str, text: str) -> Delivery: ...
    async def show_outcome(self, address: str, outcome: Outcome) -> None: ...


class Campaigns(Protocol):
    """Posted campaigns: their specs, states, items and counts. Each method is one atomic step."""

    async def next_code(self) -> str: ...
    async def create_campaign(self, campaign: Campaign, event_body: str) -> bool: ...
    async def load_campaign(self, campaign_id: str) -> Campaign | None: ...
    async def campaign_for_code(self, code: str) -> str | None: ...
    async def list_campaigns(self) -> list[str]: ...
    async def campaign_state(self, campaign_id: str) -> CampaignState | None: ...
    async def set_state(self, campaign_id: str, state: CampaignState, route: Route | None,
                        event_body: str) -> None: ...
    async def existing_items(self, campaign_id: str, ids: list[str]) -> set[str]: ...
    async def append_items(self, campaign_id: str, items: list[StagedItem],
                           event_prefix: str) -> int: ...
    async def status(self, campaign: Campaign, state: CampaignState) -> CampaignStatus: ...


class Experts(Protocol):
    """Who the experts are, where they are linked, and what they have done (cap, stats)."""

    async def save_expert(self, expert: Expert, *, create: bool) -> bool: ...
    async def load_expert(self, expert_id: str) -> Expert | None: ...
    async def expert_for_identity(self, identity: str) -> str | None: ...
    async def identities_on(self, channel: str) -> dict[str, str]:
        """Every account linked on one channel: its handle there (`U123`) -> expert id."""
        ...
    async def routing(self, expert_id: str, days: list[str]) -> Routing: ...
    async def credit(self, expert_id: str, credit: Credit) -> None: ...
    async def expert_tallies(self, expert_id: str) -> dict[str, float]: ...


class Access(Protocol):
    """What lets someone act as an expert (web chat tokens, chat invites, the CSRF secret),
    and taking it all away again (erasure)."""

    async def set_web_token(self, expert_id: str, token_hash: str | None) -> None: ...
    async def expert_for_web_token(self, token_hash: str) -> str | None: ...
    async def expert_tokens(self, expert_id: str) -> ExpertTokens: ...
    async def shared_secret(self) -> str: ...
    async def save_invite(self, token_hash: str, expert_id: str, ttl_ms: int) -> None: ...
    async def take_invite(self, token_hash: str) -> str | None:
        """The invite's expert, deleting the invite in the same step (single use)."""
        ...
    async def erase_expert(self, erasure: Erasure) -> str:
        """Unlink and delete everything held under the expert's id but the log; returns the
        pseudonym in force (the first one given, if two erasures race)."""
        ...


class Leases(Protocol):
    """Tasks handed to experts: claiming a slot, recording its answer, and the lease between."""

    async def claim(self, claim: Claim) -> Claimed | str: ...
    async def lease_view(self, campaign_id: str, token: str) -> LeaseView | None: ...
    async def to_adjudication(self, campaign_id: str, item: str, now: int,
                              event_body: str) -> int:
        """Queue an item for an adjudicator: 1, or 0 if it waits already, -1 if unknown."""
        ...
    async def record(self, record: Submission) -> tuple[Recorded, Routing]: ...
    async def mark(self, campaign_id: str, token: str, what: str, at: int,
                   event_body: str, expert_id: str = "") -> bool:
        """Once per live lease and `what`; with `expert_id`, only if the lease is theirs."""
        ...
    async def expire_due(self, campaign_id: str, now: int) -> int: ...
    async def give_back(self, campaign_id: str, token: str, event_body: str) -> bool:
        """End a live lease its channel could not show, its slot back in the pool, with the
        given event; False when it was not live (answered, expired, given back already)."""
        ...
    async def held_leases(self, expert_id: str, campaign_ids: list[str], now: int) -> list[str]:
        """The expert's live leases in these campaigns (a task handed over, not yet answered,
        not run out at `now`): a card that is waiting for them."""
        ...
    async def swap_showings(self, campaign_id: str, token: str, showing: str | None,
                            ttl_ms: int) -> list[str]:
        """Which messages show a lease with live buttons: replace them by `showing` (or by none)
        in one step, returning those replaced, so whichever process shows a card again or
        records its answer takes the buttons off every earlier copy."""
        ...
    async def showings(self, campaign_id: str, token: str) -> list[str]:
        """The messages that show a lease with live buttons now (none known: empty)."""
        ...


class Log(Protocol):
    """A campaign's provenance log: appended events, their seals, and the pseudonyms that
    stand in for erased experts wherever the log is shown."""

    async def append_event(self, campaign_id: str, event_body: str) -> int: ...
    async def read_events(self, campaign_id: str, after: int, count: int) -> list[StoredEvent]: ...
    async def read_events_at(self, campaign_id: str, seqs: list[int]) -> list[StoredEvent]:
        """The events at these seqs, in one round trip (exports fetch items on demand)."""
        ...
    async def chain_head(self, campaign_id: str) -> ChainHead: ...
    async def last_seq(self, campaign_id: str) -> int: ...
    async def save_seals(self, campaign_id: str, seals: list[Seal]) -> None: ...
    async def read_seals(self, campaign_id: str, seqs: list[int]) -> dict[int, str]: ...
    async def erasures(self) -> Erasures: ...
    async def add_rationale(self, campaign_id: str, answer_seq: int, rationale: str,
                            event_body: str) -> bool:
        """Keep a line of why sent after its answer, with its event; False if it had one."""
        ...
    async def late_rationales(self, campaign_id: str) -> dict[int, str]:
        """Those lines by their answer's seq, for reports that read the log in order."""
        ...


class HeldItem(NamedTuple):
    """An event of a segment that holds an item (`item_added`, `item_ready`,
    `qualification_item_added`): live state (a lease) may still read its body by seq."""

    seq: int
    item: str


class Archived(Protocol):
    """The Log's other half: which sealed segments left Redis for the archive (the manifest,
    in Redis), and the step that moves them, atomic so a crash archives nothing twice."""

    async def segments(self, campaign_id: str) -> list[SegmentMeta]:
        """The campaign's archived segments, in seq order (none: empty)."""
        ...
    async def trim_archived(self, campaign_id: str, segment: SegmentMeta,
                            items: Sequence[HeldItem] = ()) -> bool:
        """Add `segment` to the manifest and drop its events and seals from Redis, in one
        step; False (and nothing changed) if it is already there or does not follow the last,
        or the log's seals do not end at its `last_hash`. Called only once the segment's file
        was written and read back. `items`: the segment's events holding an item, whose
        bodies stay in Redis while the item is the one its leases read."""
        ...


class SegmentFiles(Protocol):
    """The archive's files: immutable, written once (adapters/archive/). Blocking calls: the
    async callers run them in a thread. Every failure, an unreachable archive included, is a
    SegmentError naming the segment and the location."""

    def location(self) -> str: ...
    def write_segment(self, segment: SegmentMeta, events: list[ArchivedEvent]) -> SegmentMeta:
        """Write, fsync and read back; the returned meta carries the file's SHA-256."""
        ...
    def read_segment(self, segment: SegmentMeta) -> list[ArchivedEvent]:
        """The events, after checking the file is the one `segment` names."""
        ...


class Inbox(Protocol):
    """A channel's platform requests, kept until a consumer has handled them."""

    async def inbox_put(self, channel: str, request_id: str, lane: str, body: str,
                        ttl_ms: int, at: int) -> bool:
        """Keep a platform request until a consumer has handled it; False (and nothing kept)
        for a resend of a `request_id` kept within `ttl_ms`."""
        ...
    async def inbox_take(self, channel: str, consumer: str, count: int,
                         block_ms: int) -> list[Inboxed]:
        """Up to `count` new requests for this consumer, waiting up to `block_ms` for one."""
        ...
    async def inbox_reclaim(self, channel: str, consumer: str, count: int,
                            stale_ms: int) -> list[Inboxed]:
        """Requests another consumer took more than `stale_ms` ago and never finished (it
        died, most likely): now this consumer's."""
        ...
    async def inbox_done(self, channel: str, entry_id: str) -> None: ...
    async def inbox_retry(self, channel: str, entry: Inboxed, max_attempts: int) -> bool:
        """Handling failed: queue it again, or after `max_attempts` set it aside (False)."""
        ...
    async def inbox_size(self, channel: str) -> int:
        """Requests kept and not yet handled (a backlog, or an idle channel at 0)."""
        ...
    async def take_delivery(self, channel: str, event_id: str, ttl_ms: int) -> bool:
        """True for the one process that takes a platform event first; its repeats within
        `ttl_ms` are False (polling: a restart may fetch an update again)."""
        ...
    async def forget_delivery(self, channel: str, event_id: str) -> None:
        """Handling the event failed: let its repeat through."""
        ...


class Outbox(Protocol):
    """What a channel owes experts (a card, a confirmation) and could not send yet."""

    async def outbox_put(self, channel: str, key: str, entry: str) -> None:
        """One entry per key, so owing the same thing twice keeps one."""
        ...
    async def outbox_items(self, channel: str, limit: int) -> dict[str, Owed]: ...
    async def outbox_done(self, channel: str, key: str, owed: Owed) -> bool:
        """Sent: the entry leaves, unless it was owed anew meanwhile (then False, it stays)."""
        ...


class Turns(Protocol):
    """Taking turns across processes: paced sends, one-at-a-time jobs, and the agreement a
    job keeps for experts' stats."""

    async def next_slot(self, name: str, interval_ms: int) -> int:
        """Reserve the next turn of `name`, `interval_ms` after the one before, on one clock for
        every process; returns how many ms to wait for it (pacing a rate-limited send)."""
        ...
    async def take_turn(self, job: str, ttl_ms: int) -> bool:
        """True for exactly one caller per `ttl_ms` across every process: background jobs
        that several workers would otherwise all run."""
        ...
    async def agreement_seq(self, campaign_id: str) -> int:
        """The log's length when the experts' agreement in this campaign was last kept."""
        ...
    async def save_agreement(self, campaign_id: str, seq: int,
                             counts: dict[str, tuple[int, int]]) -> None:
        """(agreed, compared) per expert, beside their tallies, so their stats can show it."""
        ...


class Health(Protocol):
    """How each channel's platform is doing, as every process last found it."""

    async def note_channel(self, channel: str, state: State, reason: str) -> None:
        """What the last process to try the channel's platform found: up, or why not."""
        ...
    async def count_trouble(self, channel: str, what: str, campaign_id: str | None) -> None:
        """One more `dead_requests` or `refused_cards` on the channel (and the campaign's
        counts, when known), for `/healthz` and `campaign status`."""
        ...
    async def channel_health(self, channel: str) -> ChannelHealth:
        """The channel's noted state and counts (`up` and zeros when nothing was noted)."""
        ...


class DraftJob(NamedTuple):
    """One draft a model owes one item, handed to one worker for a while."""

    item: str
    slot: int  # which of the item's missing drafts
    model: str
    not_before: int  # ms: when the request may go out, within the model's requests_per_minute
    plan: str  # the item's DraftPlan JSON


class DraftSaving(NamedTuple):
    """A draft to keep, with its `drafted` event and, should it be the item's last, the start
    of the `item_ready` event that offers the whole item (the store adds the item)."""

    job: DraftJob
    draft: str  # the Draft's JSON
    text_sha: str
    event_body: str
    ready_body: str
    order: str = "file"  # the campaign's route order, for the item once whole
    auto_at: float | None = None  # route.auto_accept: the model decides this confident an item
    auto_body: str = ""  # the start of its auto_accepted event, as `ready_body`


class Drafts(Protocol):
    """Model drafting: per model a queue of jobs shared by every worker, with the model's
    concurrency and request rate held across them."""

    async def take_drafts(self, campaign_id: str, model: ModelSpec, now: int, lease_ms: int,
                          want: int) -> list[DraftJob]: ...
    async def save_draft(self, campaign_id: str, saving: DraftSaving) -> str:
        """recorded | ready (the item's last: it is offered) | duplicate | identical."""
        ...
    async def fail_draft(self, campaign_id: str, job: DraftJob, event_body: str,
                         paused: str | None) -> str:
        """Set the item aside (aside), or with `paused` hold the campaign's drafting (paused)."""
        ...
    async def redraft(self, campaign_id: str, event_body: str) -> int:
        """Queue the items set aside again and lift a pause; returns how many items."""
        ...
    async def drafting_status(self, campaign_id: str) -> DraftingStatus: ...


class QualificationClaim(NamedTuple):
    """What a qualification claim found: `lease` (a qualification item, `claimed`, the
    `position`-th of `total`), `complete` (every item answered: `answers`, to grade),
    `passed` / `failed` (decided before), or `inactive`."""

    status: str
    claimed: Claimed | None = None
    position: int = 0
    total: int = 0
    answers: tuple[QualificationAnswer, ...] = ()


class Qualifications(Protocol):
    """A campaign's qualification: its gold items, which each expert answers once before the
    real tasks, and each expert's result."""

    async def add_qualification_items(self, campaign_id: str, items: list[StagedItem],
                                      event_prefix: str) -> int: ...
    async def claim_qualification(self, claim: Claim) -> QualificationClaim:
        """The expert's live lease, else the next qualification item they have not answered
        (one expired or given back is offered again); never counts against any item's slots."""
        ...
    async def decide_qualification(self, campaign_id: str, result: QualificationResult,
                                   event_body: str) -> bool:
        """Keep a pass or fail with its `qualified` event, once: False if already decided."""
        ...
    async def requalify(self, campaign_id: str, expert_id: str, event_body: str) -> bool:
        """Forget the expert's result and answers, so they take the qualification again;
        False when there was nothing to forget."""
        ...
    async def qualification_results(self, campaign_id: str) -> list[QualificationResult]: ...


class AskOffer(NamedTuple):
    """One expert an ask is offered to: their token, and the chat accounts (`telegram:123`,
    `slack:U1`) a card is pushed to; the web chat has no push (it shows `cards_for`)."""

    expert: str
    token: str
    identities: tuple[str, ...]


class AskPosting(NamedTuple):
    """A new ask, stored with its `ask_posted` event and first offers in one step. `call`
    (`<caller digest>:<call_id>`) finds the first ask of a repeat POST for `call_ttl_ms`."""

    id: str
    call: str
    body_sha: str
    call_ttl_ms: int
    spec: str  # the AskRequest's JSON
    callback: str  # the callback URL, or ""
    created_at: int
    expires_at: int
    offers: tuple[AskOffer, ...]
    later: tuple[str, ...]  # eligible but unavailable now: offered by a tick once they are
    waiting: str  # why nobody has it yet, or ""
    event_body: str


class AskChange(NamedTuple):
    """A pending ask moved on: `withdraw`, a timeout (`expire`, `reject`), `escalate`, or
    `offer` to experts now available. Every mode but withdraw applies only at `stage` (and a
    timeout only once `expires_at` has passed at `now`), so workers ticking at once agree."""

    ask: str
    mode: str
    now: int
    stage: int
    event_body: str = ""
    comment: str = ""
    new_stage: int | None = None
    expires_at: int | None = None
    offers: tuple[AskOffer, ...] = ()
    later: tuple[str, ...] | None = None
    waiting: str | None = None


class StoredAsk(NamedTuple):
    """An ask as stored. `answers`: each recorded answer's JSON (an AskAnswer, in seq order);
    `decision`: the API-shaped decision's JSON once decided (none when disagreed); `seqs`:
    its events in the `asks` log; `offered`: expert -> token."""

    id: str
    spec: str
    status: str
    created_at: int
    expires_at: int
    stage: int
    decided_at: int | None
    decision: str | None
    comment: str | None
    by: list[str]
    answers: list[str]
    waiting: str | None
    seqs: list[int]
    offered: dict[str, str]
    later: list[str]


class HeldAsk(NamedTuple):
    """An offer as its token finds it: whose it is, the ask, its marks (ms), and whether this
    expert has answered it already."""

    token: str
    expert: str
    ask: StoredAsk
    offered_at: int
    delivered_at: int | None
    opened_at: int | None
    answered: bool


class AskAnswering(NamedTuple):
    """One expert's answer to record atomically: the API-shaped decision as canonical JSON
    (`key`, the part quorum compares), the status it alone would give, whether it rejects at
    once (approve), and its `ask_answered` event, as-is and as recorded after a withdrawal."""

    token: str
    expert: str
    now: int
    at_iso: str
    decision: str
    key: str
    status: str
    rejects: bool
    needed: int
    comment: str | None
    event_body: str
    late_body: str


class AskRecorded(NamedTuple):
    """`recorded`, `duplicate` (the first answer's seq and time), `gone` (not this expert's
    token), or the ask's status when it takes no answer (decided, expired). `decided`: the
    status this answer decided; `started`: when the expert's time began (ms)."""

    status: str
    ask: str | None = None
    seq: int | None = None
    at: int | None = None
    after_withdrawal: bool = False
    decided: str | None = None
    started: int | None = None


class AskJob(NamedTuple):
    """An entry of one of the asks' queues (`deliveries`, `notices`, `callbacks`) as a
    consumer reads it: its stream entry id and its fields."""

    entry: str
    fields: dict[str, str]


class AskRetry(NamedTuple):
    """A callback to try again at `at` (ms) with these fields, or, with `give_up_body`, an
    `ask_callback_failed` event to append instead."""

    fields: dict[str, str]
    at: int
    give_up_body: str = ""
    ask: str = ""


class AskStore(Protocol):
    """Live asks: the asks, their offers (one token per expert), the answers quorum decides,
    and the queues of cards to push, cards to update and callbacks to send. Every key sits in
    the `asks` log's slot, so each change and its event are one script."""

    async def ask_experts(self) -> list[Expert]:
        """Every expert's profile: who an ask may reach."""
        ...
    async def create_ask(self, posting: AskPosting) -> tuple[str, str]:
        """(`created` | `same` | `conflict`, the ask id): a repeat of `call` with the same
        body finds its first ask; with another body, a conflict."""
        ...
    async def load_ask(self, ask_id: str) -> StoredAsk | None: ...
    async def list_asks(self, limit: int, status: str | None) -> list[StoredAsk]:
        """Newest first."""
        ...
    async def held_asks(self, expert_id: str) -> list[HeldAsk]:
        """The expert's offers of pending asks not yet answered, oldest ask first; one read,
        and an expert holding none costs one missing key."""
        ...
    async def token_ask(self, token: str) -> HeldAsk | None: ...
    async def answer_ask(self, answering: AskAnswering) -> AskRecorded: ...
    async def change_ask(self, change: AskChange) -> str:
        """`ok`, or why nothing changed: the ask's status, `moved` (another worker changed
        its stage), `early` (its deadline has not passed), `missing`."""
        ...
    async def due_asks(self, now: int, count: int) -> tuple[list[str], list[str]]:
        """(pending asks past their deadline, pending asks with experts left to offer)."""
        ...
    async def mark_ask(self, token: str, what: str, at: int, event_body: str, expert_id: str,
                       channel: str) -> bool:
        """Once per token and `what` (`delivered` once per channel too): `delivered` and
        `opened` of a pending ask; `rationale` of this expert's recorded answer. The event
        (if any) is appended with it; False when nothing was noted."""
        ...
    async def take_ask_jobs(self, queue: str, consumer: str, count: int, block_ms: int,
                            now: int) -> list[AskJob]:
        """Up to `count` entries for this consumer: first those another consumer took over a
        minute ago and never finished (it died), then new ones, waiting up to `block_ms`."""
        ...
    async def finish_ask_job(self, queue: str, entry: str, again: AskRetry | None = None
                             ) -> bool:
        """Done with an entry; with `again`, a callback queued anew for later (or given up)."""
        ...


class ModelCall(NamedTuple):
    """One chat completion request, free of any client library's types."""

    base_url: str
    api_key_env: str | None  # the NAME of the variable holding the key
    model: str
    messages: list[dict[str, Any]]  # content a string, or typed parts (text, image_url)
    params: dict[str, Any]
    logprobs: bool
    timeout_s: float


class ModelReply(NamedTuple):
    text: str
    model: str  # as the endpoint names it in its response
    system_fingerprint: str | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    confidence: float | None  # the mean token logprob, when logprobs came back
    latency_ms: int


class Drafter(Protocol):
    """Asks a model for a completion; raises ModelError with what the endpoint said."""

    async def complete(self, call: ModelCall) -> ModelReply: ...


class AskBatches(Protocol):
    """The live asks' hot paths, each in one round trip however much it covers: a POST reads
    only the experts its `to` could allow (reading every profile cost ~10 ms of CPU per POST
    with 200 experts), an answer reads its expert's profile beside the script that records it,
    a worker reads and finishes a batch of queued cards or callbacks at once, and an answer's
    next card is claimed against the push in the read that finds it. A role of its own beside
    AskStore, which holds the one-at-a-time calls."""

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


class Stores(NamedTuple):
    """The roles a store plays, for wiring: each consumer takes the ones it uses from here."""

    campaigns: Campaigns
    experts: Experts
    access: Access
    leases: Leases
    log: Log
    inbox: Inbox
    outbox: Outbox
    turns: Turns
    health: Health
    drafts: Drafts
    qualifications: Qualifications
    asks: AskStore
    ask_batches: AskBatches
    archived: Archived


class Signer(Protocol):
    """Signs checkpoints with a key the adapter holds (never Redis): the worker's side."""

    def public_key(self) -> bytes:
        """The raw public key (32 bytes for Ed25519), which names the key in a signed note."""
        ...
    def sign(self, message: bytes) -> bytes: ...


class NoteVerifier(Protocol):
    """Checks checkpoints' signatures with a public key alone: an auditor's side, offline."""

    def public_key(self) -> bytes: ...
    def verify(self, message: bytes, signature: bytes) -> bool: ...


class LastCheckpoint(NamedTuple):
    size: int  # the tree size it signed: events 1..size
    at: int  # when it was signed (ms)


@runtime_checkable
class Checkpoints(Protocol):
    """The latest checkpoint's size per campaign, beside the log: the trail's `checkpoint`
    column and the worker's "did the log grow" read it; the signed notes live in files."""

    async def save_checkpoint(self, campaign_id: str, last: LastCheckpoint) -> None: ...
    async def last_checkpoint(self, campaign_id: str) -> LastCheckpoint | None: ...


class ImageRefused(ValueError):
    """An image import cannot accept: it does not decode, it is too big, a URL is not
    allowed. The message is the reason a coordinator reads beside the file, line and field."""


class ImageInfo(NamedTuple):
    type: str  # the MIME type the bytes decode as, whatever the file name or a caller says
    width: int
    height: int


class ImageChecker(Protocol):
    """Decodes image bytes (Pillow, in an adapter: core does not import it); raises
    ImageRefused when they are not an image of a supported type."""

    def check(self, data: bytes) -> ImageInfo: ...


class ImageFetcher(Protocol):
    """Fetches an image URL once, at import; raises ImageRefused past `limit` bytes, on a
    timeout, a redirect to another host, or a host resolving to a private address."""

    def fetch(self, url: str, limit: int) -> bytes: ...


class Uploads(Protocol):
    """A platform's own id for image bytes it already holds, by channel and SHA-256, kept
    across processes: an image shown to many experts is uploaded once."""

    async def uploaded(self, channel: str, sha256: str) -> str | None: ...
    async def keep_uploaded(self, channel: str, sha256: str, file_id: str) -> str:
        """Keeps `file_id` unless another process kept one first; returns the one kept."""
        ...
    async def forget_uploaded(self, channel: str, sha256: str, file_id: str) -> None:
        """The platform no longer shows `file_id` (deleted): the next showing uploads again.
        Only that id, so a newer upload another process kept stays."""
        ...


class History(Protocol):
    """A campaign's history as reports read it, wherever the log lives (the Redis tail, the
    archived segments): its finished tasks in log order, and the sums every report starts
    from. The plain reader (core/reports/history.py) is the reference; the DuckDB reader
    (adapters/history/duckdb.py) scans the segments' columns and keeps each segment's sums."""

    def task_records(self, campaign_id: str, *, with_items: bool = True,
                     also: tuple[str, ...] = ()) -> AsyncIterator[list[TaskRecord]]:
        """`core.reports.records.task_records`: the same records, batch by batch."""
        ...
    async def tallies(self, campaign: Campaign) -> Tallies:
        """The campaign's sums over every finished task (and the drafts made)."""
        ...
    async def has_images(self, campaign_id: str) -> bool:
        """Whether any item of the campaign shows images (the export's shape)."""
        ...
    async def after_archived(self, campaign_id: str, segment: SegmentMeta) -> None:
        """A segment was just archived: keep what reports will want of it (the archiver's
        worker calls this after each segment, so a report adds only the tail)."""
        ...
    def writes_lines(self, campaign: Campaign, plan: LinePlan) -> bool:
        """Whether `lines` can write this export (else the caller builds rows from records)."""
        ...
    def lines(self, campaign: Campaign, plan: LinePlan) -> AsyncIterator[list[Lined]]:
        """The export's lines, one entry per finished task in log order: the lines the
        caller would build from `task_records` (the same JSON values)."""
        ...
