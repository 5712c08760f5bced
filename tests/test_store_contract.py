"""The store's contract: what the roles in core/ports.py promise (campaigns, experts' profiles
and tallies, leases, the log, channel health), checked against every implementation
(`any_store`, tests/conftest.py). The other roles' sections are the test_store_contract_*
files; test_store_contract_roles.py checks that every method of every role is named in one."""

from __future__ import annotations

import json

import pytest

from adapters.redis.store import RedisStore
from core.domain.campaigns import Campaign, CampaignSpec, CampaignState
from core.domain.experts import Expert
from core.ports import Claim, Claimed, Credit, Recorded, Route, StagedItem, Submission
from core.provenance.chain import START, ChainHead, Seal
from core.provenance.events import Event, iso_ms, open_body
from core.service.health import ChannelHealth

NOW = 1_795_000_000_000
def a_campaign(campaign_id: str = "c1", code: str = "k1", overlap: int = 2) -> Campaign:
    spec = CampaignSpec(id=campaign_id, title="Better?", kind="pairwise", overlap=overlap)
    return Campaign(id=campaign_id, code=code, spec=spec, created_at=NOW)


def event(type_: str, campaign: str = "c1", **payload: object) -> str:
    return json.dumps({"actor": "system", "at": "2026-11-18T11:06:40.000Z", "campaign": campaign,
                       "type": type_, "payload": payload})


def staged(item_id: str, gold: bool = False) -> StagedItem:
    body = {"id": item_id, "prompt": f"{item_id}?",
            "drafts": [{"text": "yes", "model": "m1"}, {"text": "no", "model": "m2"}]}
    return StagedItem(item_id, 2, gold, json.dumps(body))


async def open_campaign(store: RedisStore, *item_ids: str, overlap: int = 2,
                        gold: tuple[str, ...] = ()) -> Campaign:
    campaign = a_campaign(overlap=overlap)
    assert await store.create_campaign(campaign, event("campaign_posted"))
    prefix = open_body("c1", "item_added", NOW, "coordinator")
    items = [staged(i) for i in item_ids] + [staged(g, gold=True) for g in gold]
    await store.append_items("c1", items, prefix)
    await set_state(store, campaign, CampaignState.active)
    return campaign


async def set_state(store: RedisStore, campaign: Campaign, state: CampaignState) -> None:
    route = Route(campaign=campaign.id, skills=[], gold_rate=0.0, created_at=NOW)
    await store.set_state(campaign.id, state, route if state == CampaignState.active else None,
                          event(state.value))


def a_claim(expert: str, token: str, now: int = NOW, overlap: int = 2,
            want_gold: bool = False) -> Claim:
    return Claim(campaign="c1", expert=expert, token=token, day="2026-11-18", now=now,
                 expires_at=now + 60_000,
                 shuffle=[1, 0, *range(2, 26)], want_gold=want_gold, overlap=overlap,
                 event=Event(campaign="c1", type="assigned", at=iso_ms(now), actor="system",
                             expert=expert, lease=token))


def answer_event(effect: str, now: int, expert: str, token: str, choice: str = "A") -> Event:
    return Event(campaign="c1", type=effect, at=iso_ms(now), actor="expert", expert=expert,
                 lease=token, payload={"decision": {"type": "pairwise", "choice": choice}})


def a_record(expert: str, token: str, effect: str = "answered", now: int = NOW + 1000,
             overlap: int = 2) -> Submission:
    return Submission(campaign="c1", token=token, expert=expert, now=now, effect=effect,
                  event=answer_event(effect, now, expert, token),
                  decision="pairwise", overlap=overlap, time_limit_s=600, opened_at=None,
                  expect_drafts=0, route_days=["2026-11-18"])


async def claimed(store: RedisStore, expert: str, token: str, **kwargs: object) -> Claimed:
    found = await store.claim(a_claim(expert, token, **kwargs))  # type: ignore[arg-type]
    assert isinstance(found, Claimed), found
    return found


async def recorded(store: RedisStore, record: Submission) -> Recorded:
    return (await store.record(record))[0]


async def types(store: RedisStore) -> list[str]:
    return [json.loads(e.body)["type"] for e in await store.read_events("c1", 0, 10_000)]


# campaigns


async def test_codes_are_never_handed_out_twice(any_store: RedisStore) -> None:
    codes = [await any_store.next_code() for _ in range(50)]

    assert len(set(codes)) == 50


async def test_create_campaign_refuses_a_duplicate_id(any_store: RedisStore) -> None:
    assert await any_store.create_campaign(a_campaign(), event("campaign_posted"))
    assert not await any_store.create_campaign(a_campaign(code="k2"), event("campaign_posted"))

    assert await any_store.load_campaign("c1") == a_campaign()
    assert await any_store.list_campaigns() == ["c1"]
    assert await any_store.campaign_for_code("k1") == "c1"
    assert await any_store.campaign_for_code("k2") is None
    assert await types(any_store) == ["campaign_posted"]


async def test_unknown_campaigns_read_as_none(any_store: RedisStore) -> None:
    assert await any_store.load_campaign("nope") is None
    assert await any_store.campaign_state("nope") is None
    assert await any_store.campaign_for_code("zz") is None
    assert await any_store.list_campaigns() == []


async def test_a_campaign_has_no_state_until_it_is_opened(any_store: RedisStore) -> None:
    campaign = a_campaign()
    await any_store.create_campaign(campaign, event("campaign_posted"))
    assert await any_store.campaign_state("c1") is None

    await set_state(any_store, campaign, CampaignState.active)
    assert await any_store.campaign_state("c1") == CampaignState.active
    await set_state(any_store, campaign, CampaignState.closed)
    assert await any_store.campaign_state("c1") == CampaignState.closed
    assert await types(any_store) == ["campaign_posted", "active", "closed"]


async def test_only_active_campaigns_are_routed(any_store: RedisStore) -> None:
    campaign = await open_campaign(any_store, "q1")
    routes = (await any_store.routing("nobody", [])).routes
    assert [r.campaign for r in routes] == ["c1"]

    await set_state(any_store, campaign, CampaignState.paused)

    assert (await any_store.routing("nobody", []))[2] == []


async def test_append_items_stores_each_item_with_its_event(any_store: RedisStore) -> None:
    campaign = await open_campaign(any_store, "q1", "q2", gold=("g1",))

    assert await any_store.existing_items("c1", ["q1", "g1", "q9"]) == {"q1", "g1"}
    status = await any_store.status(campaign, CampaignState.active)
    assert status.items == 3
    added = [json.loads(e.body) for e in await any_store.read_events("c1", 0, 100)
             if json.loads(e.body)["type"] == "item_added"]
    assert [(e["item"], e["payload"]["item"]["prompt"]) for e in added] == [
        ("q1", "q1?"), ("q2", "q2?"), ("g1", "g1?")]


async def test_append_items_is_all_or_nothing_when_an_id_exists(any_store: RedisStore) -> None:
    campaign = await open_campaign(any_store, "q1")
    before = await any_store.last_seq("c1")
    prefix = open_body("c1", "item_added", NOW, "coordinator")

    with pytest.raises(KeyError) as refused:
        await any_store.append_items("c1", [staged("q2"), staged("q1"), staged("q3")], prefix)

    assert refused.value.args[0] == "q1"
    assert await any_store.existing_items("c1", ["q2", "q3"]) == set()
    assert await any_store.last_seq("c1") == before
    assert (await any_store.status(campaign, CampaignState.active)).items == 1


# experts


async def test_save_expert_creates_once_and_then_updates(any_store: RedisStore) -> None:
    ann = Expert(id="ann", name="Ann", identities=["slack:U1"])

    assert await any_store.save_expert(ann, create=True)
    assert not await any_store.save_expert(ann.model_copy(update={"name": "X"}), create=True)
    assert (await any_store.load_expert("ann")) == ann

    renamed = ann.model_copy(update={"name": "Dr. Ann", "identities": ["slack:U1", "web:a"]})
    assert await any_store.save_expert(renamed, create=False)
    assert (await any_store.load_expert("ann")) == renamed
    assert await any_store.expert_for_identity("web:a") == "ann"
    assert await any_store.expert_for_identity("slack:U2") is None
    assert await any_store.load_expert("bob") is None


async def test_agreement_is_kept_beside_the_tallies_per_campaign(any_store: RedisStore) -> None:
    await any_store.save_expert(Expert(id="ann", name="Ann"), create=True)
    assert await any_store.agreement_seq("c1") == 0

    await any_store.save_agreement("c1", 40, {"ann": (3, 4)})
    await any_store.save_agreement("c2", 9, {"ann": (1, 2)})
    await any_store.save_agreement("c1", 41, {"ann": (4, 5)})  # kept again: replaced

    tallies = await any_store.expert_tallies("ann")
    assert (tallies["agreed:c1"], tallies["compared:c1"]) == (4, 5)
    assert (tallies["agreed:c2"], tallies["compared:c2"]) == (1, 2)
    assert await any_store.agreement_seq("c1") == 41


async def test_a_turn_goes_to_one_caller_until_it_lapses(any_store: RedisStore) -> None:
    assert await any_store.take_turn("job", 60_000)
    assert not await any_store.take_turn("job", 60_000)
    assert await any_store.take_turn("other job", 60_000)


async def test_routing_returns_the_expert_and_day_counts(any_store: RedisStore) -> None:
    ann = Expert(id="ann", name="Ann")
    await any_store.save_expert(ann, create=True)
    for _ in range(3):
        await any_store.credit("ann", Credit("2026-11-18", 30.0, 1.5, "USD"))
    await any_store.credit("ann", Credit("2026-11-17", 12.5, 1.5, "USD"))

    expert, days, routes, _ = await any_store.routing("ann", ["2026-11-17", "2026-11-18",
                                                           "2026-11-19"])

    assert expert == ann and routes == []
    assert days == {"2026-11-17": 1, "2026-11-18": 3, "2026-11-19": 0}
    tallies = await any_store.expert_tallies("ann")
    assert (tallies["answers"], tallies["seconds"], tallies["earned:USD"]) == (4, 102.5, 6.0)
    assert (await any_store.routing("bob", ["2026-11-18"]))[:2] == (None, {"2026-11-18": 0})


# leases and answers


async def test_claim_never_exceeds_overlap(any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1", overlap=2)

    first = await claimed(any_store, "ann", "k1.a")
    second = await claimed(any_store, "bob", "k1.b")
    third = await any_store.claim(a_claim("cat", "k1.c"))

    assert first.lease.item == second.lease.item == "q1"
    assert third == "empty"
    assert json.loads(first.item_body)["payload"]["item"]["id"] == "q1"
    assert first.lease.order == [1, 0]
    assert await types(any_store) == ["campaign_posted", "item_added", "active", "assigned",
                                      "assigned"]


async def test_claim_returns_the_held_lease_while_it_is_live(any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1", "q2")

    first = await claimed(any_store, "ann", "k1.a")
    again = await claimed(any_store, "ann", "k1.other", now=NOW + 1000)

    assert again.lease == first.lease
    assert (await types(any_store)).count("assigned") == 1


async def test_claim_never_offers_an_expert_an_item_twice(any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1", overlap=3)
    lease = (await claimed(any_store, "ann", "k1.a")).lease
    await recorded(any_store, a_record("ann", lease.token, effect="skipped"))

    assert await any_store.claim(a_claim("ann", "k1.b")) == "empty"


async def test_claim_on_an_inactive_campaign_says_why(any_store: RedisStore) -> None:
    campaign = await open_campaign(any_store, "q1")
    await set_state(any_store, campaign, CampaignState.paused)

    assert await any_store.claim(a_claim("ann", "k1.a")) == "paused"


async def test_gold_is_claimed_only_when_wanted_and_ignores_overlap(any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1", overlap=1, gold=("g1",))

    plain = await claimed(any_store, "ann", "k1.a")
    golds = [await claimed(any_store, e, f"k1.{e}", want_gold=True) for e in ("bob", "cat")]

    assert (plain.lease.item, plain.lease.gold) == ("q1", False)
    assert [(g.lease.item, g.lease.gold) for g in golds] == [("g1", True), ("g1", True)]


async def test_lease_view_shows_the_lease_item_and_first_outcome(any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1")
    lease = (await claimed(any_store, "ann", "k1.a")).lease

    view = await any_store.lease_view("c1", "k1.a")
    assert view is not None and view.lease == lease and view.outcome is None
    assert json.loads(view.item_body)["item"] == "q1"

    result = await recorded(any_store, a_record("ann", "k1.a"))
    view = await any_store.lease_view("c1", "k1.a")
    assert view is not None and view.lease.state == "answered"
    assert view.outcome is not None and view.outcome.startswith(f"{result.seq}|")
    assert await any_store.lease_view("c1", "k1.none") is None


async def test_record_is_exactly_once(any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1")
    await claimed(any_store, "ann", "k1.a")
    record = a_record("ann", "k1.a")

    first = await recorded(any_store, record)
    again = await recorded(any_store, record._replace(
        event=answer_event("answered", record.now + 5, "ann", "k1.a", "B"), now=record.now + 5))

    assert first.status == "recorded" and first.seq is not None
    assert again.status == "duplicate" and again.seq == first.seq
    assert (again.answered_at, again.active_seconds) == (first.answered_at, first.active_seconds)
    assert (await types(any_store)).count("answered") == 1


async def test_record_refuses_another_experts_lease(any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1")
    await claimed(any_store, "ann", "k1.a")
    before = await any_store.last_seq("c1")

    assert (await recorded(any_store, a_record("eve", "k1.a"))).status == "gone"
    assert (await recorded(any_store, a_record("eve", "k1.none"))).status == "gone"
    assert await any_store.last_seq("c1") == before


async def test_record_after_the_deadline_expires_the_lease(any_store: RedisStore) -> None:
    campaign = await open_campaign(any_store, "q1", overlap=1)
    await claimed(any_store, "ann", "k1.a")

    late = await recorded(any_store, a_record("ann", "k1.a", now=NOW + 60_000))

    assert (late.status, late.seq) == ("expired", None)
    assert (await types(any_store))[-1] == "lease_expired"
    assert (await claimed(any_store, "bob", "k1.b")).lease.item == "q1"
    status = await any_store.status(campaign, CampaignState.active)
    assert (status.answers, status.expired, status.in_progress) == (0, 1, 1)


async def test_record_on_a_closed_campaign_is_refused(any_store: RedisStore) -> None:
    campaign = await open_campaign(any_store, "q1")
    await claimed(any_store, "ann", "k1.a")
    await set_state(any_store, campaign, CampaignState.closed)

    assert (await recorded(any_store, a_record("ann", "k1.a"))).status == "closed"
    assert "answered" not in await types(any_store)


async def test_record_counts_by_effect(any_store: RedisStore) -> None:
    campaign = await open_campaign(any_store, "q1", "q2", overlap=2)
    effects = {"ann": "answered", "bob": "none_acceptable", "cat": "skipped", "dan": "flagged"}
    for expert, effect in effects.items():
        lease = (await claimed(any_store, expert, f"k1.{expert}")).lease
        result = await recorded(any_store, a_record(expert, lease.token, effect))
        assert result.status == "recorded"

    status = await any_store.status(campaign, CampaignState.active)
    assert (status.answers, status.none_acceptable, status.skipped, status.flagged) == (2, 1, 1, 1)
    assert (status.done, status.in_progress) == (1, 0)


async def test_mark_notes_each_moment_once_and_only_while_live(any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1")
    await claimed(any_store, "ann", "k1.a")

    assert await any_store.mark("c1", "k1.a", "delivered", NOW + 5, event("delivered"))
    assert not await any_store.mark("c1", "k1.a", "delivered", NOW + 9, event("delivered"))
    assert await any_store.mark("c1", "k1.a", "opened", NOW + 7, event("opened"))
    view = await any_store.lease_view("c1", "k1.a")
    assert view is not None
    assert (view.lease.delivered_at, view.lease.opened_at) == (NOW + 5, NOW + 7)

    await recorded(any_store, a_record("ann", "k1.a"))
    assert not await any_store.mark("c1", "k1.a", "opened", NOW + 9, event("opened"))
    assert not await any_store.mark("c1", "k1.none", "opened", NOW + 9, event("opened"))
    assert (await types(any_store)).count("delivered") == 1


async def test_held_leases_are_the_live_unanswered_ones(any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1", "q2")
    await claimed(any_store, "ann", "k1.a")  # runs out at NOW + 60 s
    await claimed(any_store, "bob", "k1.b")

    assert await any_store.held_leases("ann", ["c1", "c2"], NOW + 1) == ["k1.a"]
    assert await any_store.held_leases("ann", ["c1"], NOW + 60_000) == []  # run out
    assert await any_store.held_leases("cat", ["c1"], NOW) == []
    assert await any_store.held_leases("ann", [], NOW) == []

    await recorded(any_store, a_record("ann", "k1.a"))

    assert await any_store.held_leases("ann", ["c1"], NOW + 2000) == []
    assert await any_store.held_leases("bob", ["c1"], NOW + 2000) == ["k1.b"]


async def test_expire_due_frees_only_leases_past_their_time(any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1", overlap=2)
    await claimed(any_store, "ann", "k1.a")
    await claimed(any_store, "bob", "k1.b", now=NOW + 30_000)

    assert await any_store.expire_due("c1", NOW + 59_999) == 0
    assert await any_store.expire_due("c1", NOW + 60_000) == 1
    assert await any_store.expire_due("c1", NOW + 60_000) == 0

    assert (await claimed(any_store, "cat", "k1.c", now=NOW + 60_000)).lease.item == "q1"
    too_late = a_record("ann", "k1.a", now=NOW + 60_000)  # acted at the deadline
    assert (await recorded(any_store, too_late)).status == "expired"
    # acted in time, handled after the expiry pass: Cat holds the slot now
    assert (await recorded(any_store, a_record("ann", "k1.a"))).status == "taken"
    assert (await types(any_store)).count("lease_expired") == 1


async def test_an_answer_acted_in_time_takes_back_a_free_slot_after_the_expiry_pass(
        any_store: RedisStore) -> None:
    await open_campaign(any_store, "q1", overlap=2)
    await claimed(any_store, "ann", "k1.a")
    await claimed(any_store, "bob", "k1.b", now=NOW + 30_000)
    assert await any_store.expire_due("c1", NOW + 60_000) == 1

    wrong = a_record("ann", "k1.a")._replace(expect_drafts=3)  # the lease shows two drafts
    assert (await recorded(any_store, wrong)) == Recorded("invalid", drafts=2)  # no slot taken
    late = await recorded(any_store, a_record("ann", "k1.a"))  # acted at NOW + 1 s

    assert (late.status, late.late) == ("recorded", True)
    assert (await types(any_store))[-2:] == ["lease_expired", "answered"]
    assert await any_store.claim(a_claim("cat", "k1.c", now=NOW + 60_000)) == "empty"
    again = await recorded(any_store, a_record("ann", "k1.a"))
    assert (again.status, again.late, again.seq) == ("duplicate", True, late.seq)


# the provenance log


async def test_read_events_returns_the_log_in_order(any_store: RedisStore) -> None:
    seqs = [await any_store.append_event("c1", event("note", n=n)) for n in range(10)]

    assert seqs == list(range(1, 11))
    assert await any_store.last_seq("c1") == 10
    page = await any_store.read_events("c1", 3, 4)
    assert [e.seq for e in page] == [4, 5, 6, 7]
    assert [json.loads(e.body)["payload"]["n"] for e in page] == [3, 4, 5, 6]
    assert await any_store.read_events("c1", 10, 5) == []
    assert await any_store.read_events("other", 0, 5) == []
    assert await any_store.last_seq("other") == 0


async def test_read_events_at_fetches_the_seqs_asked_for(any_store: RedisStore) -> None:
    for n in range(6):
        await any_store.append_event("c1", event("note", n=n))

    found = await any_store.read_events_at("c1", [5, 2, 9])

    assert [(e.seq, json.loads(e.body)["payload"]["n"]) for e in found] == [(5, 4), (2, 1)]
    assert await any_store.read_events_at("c1", []) == []


async def test_seals_and_the_chain_head_only_move_forward(any_store: RedisStore) -> None:
    assert await any_store.chain_head("c1") == START

    await any_store.save_seals("c1", [Seal(1, "a" * 64), Seal(2, "b" * 64)])
    assert await any_store.chain_head("c1") == ChainHead(2, "b" * 64)

    await any_store.save_seals("c1", [Seal(1, "x" * 64)])
    await any_store.save_seals("c1", [Seal(2, "y" * 64)])
    await any_store.save_seals("c1", [])
    assert await any_store.chain_head("c1") == ChainHead(2, "b" * 64)
    assert await any_store.read_seals("c1", [1, 2, 3]) == {1: "a" * 64, 2: "b" * 64}

    await any_store.save_seals("c1", [Seal(3, "c" * 64)])
    assert await any_store.chain_head("c1") == ChainHead(3, "c" * 64)
    assert await any_store.read_seals("c1", []) == {}


async def test_campaigns_do_not_share_a_log(any_store: RedisStore) -> None:
    await any_store.append_event("c1", event("note"))
    await any_store.append_event("c2", event("note", campaign="c2"))
    await any_store.save_seals("c2", [Seal(1, "d" * 64)])

    assert [e.seq for e in await any_store.read_events("c2", 0, 10)] == [1]
    assert await any_store.chain_head("c1") == START


async def test_showings_are_swapped_in_one_step_and_kept_apart_per_lease(
        any_store: RedisStore) -> None:
    assert await any_store.showings("c1", "k1.a") == []
    assert await any_store.swap_showings("c1", "k1.a", "10", 60_000) == []
    assert await any_store.swap_showings("c1", "k1.a", "12", 60_000) == ["10"]
    assert await any_store.swap_showings("c1", "k1.b", "11", 60_000) == []

    assert await any_store.showings("c1", "k1.a") == ["12"]
    assert await any_store.swap_showings("c1", "k1.a", "12", 60_000) == []  # itself again
    assert await any_store.swap_showings("c1", "k1.a", None, 60_000) == ["12"]
    assert await any_store.showings("c1", "k1.a") == []
    assert await any_store.showings("c1", "k1.b") == ["11"]


# channel health and leases given back


async def test_a_lease_given_back_frees_its_slot_once(any_store: RedisStore) -> None:
    campaign = await open_campaign(any_store, "q1", overlap=1)
    await claimed(any_store, "ann", "k1.a", overlap=1)
    assert (await any_store.claim(a_claim("bob", "k1.b", overlap=1))) == "empty"  # held

    assert await any_store.give_back("c1", "k1.a", event("undeliverable", error="no"))
    assert not await any_store.give_back("c1", "k1.a", event("undeliverable", error="no"))

    assert (await claimed(any_store, "bob", "k1.b", overlap=1)).lease.item == "q1"
    # never shown, so never tapped in time: refused even where a slot would be free
    assert (await recorded(any_store, a_record("ann", "k1.a", overlap=2))).status == \
        "undeliverable"
    assert (await types(any_store)).count("undeliverable") == 1
    status = await any_store.status(campaign, CampaignState.active)
    assert status.in_progress == 1  # bob's


async def test_channel_health_keeps_the_last_state_noted_and_counts_troubles(
        any_store: RedisStore) -> None:
    campaign = await open_campaign(any_store, "q1")
    assert await any_store.channel_health("slack") == ChannelHealth()

    await any_store.note_channel("slack", "degraded", "auth.test: connection refused")
    await any_store.count_trouble("slack", "dead_requests", "c1")
    await any_store.count_trouble("slack", "dead_requests", None)
    await any_store.count_trouble("slack", "refused_cards", None)

    assert await any_store.channel_health("slack") == ChannelHealth(
        state="degraded", reason="auth.test: connection refused", dead_requests=2,
        refused_cards=1)
    await any_store.note_channel("slack", "up", "")
    assert (await any_store.channel_health("slack")).state == "up"
    assert (await any_store.channel_health("telegram")) == ChannelHealth()
    assert (await any_store.status(campaign, CampaignState.active)).dead_requests == 1
