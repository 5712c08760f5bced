"""expertloop on a real 3-master Redis Cluster (tests/cluster.py): wired by
`REDIS_URL=redis+cluster://...` through `open_runtime`, campaigns on different masters, several
experts answering at once through the service, the log sealed and verified; no cross-slot error.
(The Store contract suite runs against the same cluster: see STORES in test_store_contract.py.)"""

from __future__ import annotations

import asyncio
from collections import Counter

from redis.asyncio.cluster import RedisCluster
from redis.cluster import key_slot

from adapters.redis import keys as k
from bots.runtime import Runtime, open_runtime
from bots.settings import Settings
from core.domain.cards import Card
from core.domain.kinds import Choose, Rate
from core.domain.timing import SetClock
from tests.campaign_play import add_expert, post_items, work
from tests.cluster import LocalCluster

NOW = 1_795_000_000_000
EXPERTS = [f"exp-{i}" for i in range(6)]


def items(n: int, drafts: int) -> list[dict[str, object]]:
    return [{"id": f"q{i}", "prompt": f"Question {i}?",
             "drafts": [{"text": f"draft {i}.{d}", "model": f"m{d}"} for d in range(drafts)]}
            for i in range(n)]


async def node_of(client: RedisCluster, key: str) -> str:
    node = client.get_node_from_key(key)
    assert node is not None
    return str(node.name)


async def test_redis_cluster_url_opens_a_cluster_client(redis_cluster: LocalCluster,
                                                        cluster_client: RedisCluster) -> None:
    settings = Settings(REDIS_URL=redis_cluster.url())
    async with open_runtime(settings) as runtime:
        assert isinstance(runtime.client, RedisCluster)
        assert len(runtime.client.get_primaries()) == 3


async def test_a_campaign_end_to_end_on_the_cluster(redis_cluster: LocalCluster,
                                                    cluster_client: RedisCluster) -> None:
    # Two campaigns whose slots sit on different masters, experts' hashes on others still.
    campaigns = {"pairs": ("pairwise", 2), "rates": ("rate", 1)}
    slots = {c: key_slot(k.campaign_key(c, "meta").encode()) for c in campaigns}
    assert len({await node_of(cluster_client, k.campaign_key(c, "meta"))
                for c in campaigns}) == 2, slots

    clock = SetClock(NOW)
    async with open_runtime(Settings(REDIS_URL=redis_cluster.url()), clock) as runtime:
        for campaign, (kind, drafts) in campaigns.items():
            extra = {"scale": {"min": 1, "max": 5}} if kind == "rate" else {}
            await post_items(runtime.coordinator, items(12, drafts), id=campaign, kind=kind,
                             overlap=3, **extra)
        for expert in EXPERTS:
            await add_expert(runtime.coordinator, expert)

        def decide(card: Card) -> Choose | Rate:
            return Choose(choice="A") if card.kind == "pairwise" else Rate(score=4)

        answered = await asyncio.gather(*(work(runtime.service, clock, expert, decide,
                                               seconds=0.5) for expert in EXPERTS))
        assert sum(answered) == 2 * 12 * 3

        for campaign in campaigns:
            status = await runtime.coordinator.status(campaign)
            assert (status.answers, status.done, status.in_progress) == (36, 12, 0)
            await runtime.ledger.seal(campaign)
            verdict = await runtime.ledger.verify(campaign)
            assert verdict.ok and verdict.unsealed == 0, verdict
            await assert_each_answer_once(runtime, campaign, expect=36)


async def assert_each_answer_once(runtime: Runtime, campaign: str, expect: int) -> None:
    events = await runtime.ledger.events(campaign, limit=10_000)
    answers = Counter((e["expert"], e["item"]) for e in events if e["type"] == "answered")
    assert len(answers) == expect and set(answers.values()) == {1}
    per_item = Counter(item for _, item in answers)
    assert set(per_item.values()) == {3}  # never more than overlap


async def test_scripts_reload_on_every_master_after_script_flush(
        redis_cluster: LocalCluster, cluster_client: RedisCluster) -> None:
    """A master restarted empty answers NOSCRIPT to a pipelined EVALSHA; the store loads the
    script on the right node and runs the command again."""
    clock = SetClock(NOW)
    async with open_runtime(Settings(REDIS_URL=redis_cluster.url()), clock) as runtime:
        await post_items(runtime.coordinator, items(2, 2), id="c1", kind="pairwise", overlap=1)
        await add_expert(runtime.coordinator, "ann")
        await cluster_client.execute_command("SCRIPT FLUSH", target_nodes=RedisCluster.PRIMARIES)
        card = await runtime.service.next_task("ann")
        assert isinstance(card, Card)
        await cluster_client.execute_command("SCRIPT FLUSH", target_nodes=RedisCluster.PRIMARIES)
        assert await work(runtime.service, clock, "ann", lambda _: Choose(choice="B")) == 2
        events = await runtime.ledger.events("c1", limit=100)
        assert [e["type"] for e in events].count("answered") == 2
