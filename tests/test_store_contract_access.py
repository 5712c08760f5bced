"""The Experts and Access roles' contract beyond profiles: linked accounts, web chat tokens,
invites, the shared secret and erasure, on every store (single Redis and the Cluster)."""

from __future__ import annotations

from adapters.redis.store import RedisStore
from core.domain.experts import Expert
from core.ports import Erasure, ExpertTokens
from core.privacy.pseudonyms import Erasures, digest

ANN = Expert(id="ann", name="Ann", identities=["slack:U1", "telegram:42", "web:a"])
ANN_ERASED = Erasure(expert_id="ann", id_digest=digest("ann"), pseudonym="expert-7f",
                     handle_digests=[digest("slack:D1")], identities=list(ANN.identities))


async def test_identities_on_lists_each_channels_accounts(any_store: RedisStore) -> None:
    await any_store.save_expert(ANN, create=True)
    await any_store.save_expert(Expert(id="bob", name="Bob", identities=["slack:U2"]),
                                create=True)

    assert await any_store.identities_on("slack") == {"U1": "ann", "U2": "bob"}
    assert await any_store.identities_on("telegram") == {"42": "ann"}
    assert await any_store.identities_on("whatsapp") == {}


async def test_a_new_web_token_revokes_the_old_one(any_store: RedisStore) -> None:
    await any_store.set_web_token("ann", "h1")
    assert await any_store.expert_for_web_token("h1") == "ann"

    await any_store.set_web_token("ann", "h2")
    assert await any_store.expert_for_web_token("h1") is None
    assert await any_store.expert_for_web_token("h2") == "ann"
    assert (await any_store.expert_tokens("ann")).web == "h2"

    await any_store.set_web_token("ann", None)
    assert await any_store.expert_for_web_token("h2") is None
    assert await any_store.expert_tokens("ann") == ExpertTokens(None, {})


async def test_an_invite_is_taken_once_and_listed_until_then(any_store: RedisStore) -> None:
    await any_store.save_invite("i1", "ann", 60_000)
    await any_store.save_invite("i2", "ann", 60_000)
    tokens = await any_store.expert_tokens("ann")
    assert sorted(tokens.invites) == ["i1", "i2"]
    assert all(0 < left <= 60_000 for left in tokens.invites.values())

    assert await any_store.take_invite("i1") == "ann"
    assert await any_store.take_invite("i1") is None  # single use
    assert await any_store.take_invite("nope") is None
    assert list((await any_store.expert_tokens("ann")).invites) == ["i2"]


async def test_the_shared_secret_is_made_once(any_store: RedisStore) -> None:
    first = await any_store.shared_secret()

    assert len(first) == 64 and int(first, 16) >= 0
    assert await any_store.shared_secret() == first


async def test_erasure_unlinks_everything_but_the_log(any_store: RedisStore) -> None:
    await any_store.save_expert(ANN, create=True)
    await any_store.set_web_token("ann", "h1")
    await any_store.save_invite("i1", "ann", 60_000)
    seq = await any_store.append_event("c1", '{"type":"note","expert":"ann"}')

    assert await any_store.erase_expert(ANN_ERASED) == "expert-7f"

    assert await any_store.load_expert("ann") is None
    assert await any_store.expert_for_identity("slack:U1") is None
    assert await any_store.identities_on("slack") == {}
    assert await any_store.expert_for_web_token("h1") is None
    assert await any_store.take_invite("i1") is None
    assert await any_store.expert_tokens("ann") == ExpertTokens(None, {})
    assert [e.seq for e in await any_store.read_events("c1", 0, 10)] == [seq]


async def test_erasures_keep_the_first_pseudonym_and_the_id_is_never_reused(
        any_store: RedisStore) -> None:
    await any_store.save_expert(ANN, create=True)
    await any_store.erase_expert(ANN_ERASED)

    again = ANN_ERASED._replace(pseudonym="expert-99")  # a racing second erasure
    assert await any_store.erase_expert(again) == "expert-7f"
    erasures = await any_store.erasures()
    assert erasures.experts == {digest("ann"): "expert-7f"}
    assert erasures.handles == {digest("slack:D1"): "expert-7f"}
    assert not await any_store.save_expert(Expert(id="ann", name="Someone"), create=True)


async def test_nobody_erased_reads_as_empty(any_store: RedisStore) -> None:
    await any_store.save_expert(ANN, create=True)

    assert await any_store.erasures() == Erasures({}, {})
