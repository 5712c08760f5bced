"""Replica acknowledgements for the record path (`EXPERTLOOP_REPLICA_ACKS`): an answer is
acknowledged only after `WAIT` says enough replicas of its campaign's master hold it.

`WAIT n ms` waits for the writes made *on its own connection* (Redis keeps each client's last
replication offset), so it must run on the connection that wrote, on the slot's master, and it
cannot run inside the Lua script that records. redis-py's cluster client gives neither: it
routes a bare `WAIT` to the default node (`COMMAND_FLAGS`), on any pooled connection, and a
cluster pipeline's retry sends it there too. So this sends a small write to the campaign's slot
and `WAIT` right behind it, on one connection of the slot's master: the write's offset is past
the answer's (same master, later), so replicas that have it have the answer too. That also
covers a repeated answer (`duplicate`), whose script writes nothing to wait for."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import PipelineCommand, RedisCluster
from redis.exceptions import RedisError

from adapters.redis import keys as k
from core.errors import NotKept


class NotReplicated(RedisError, NotKept):
    """The answer is on the master but too few replicas confirmed it in time: it was not
    acknowledged, and sending it again (idempotent per lease) waits again."""


class ReplicaAcks:
    """Waits for `replicas` replicas, at most `timeout_ms`, after a campaign's write."""

    def __init__(self, client: Redis | RedisCluster, replicas: int, timeout_ms: int) -> None:
        self.client = client
        self.replicas = replicas
        self.timeout_ms = timeout_ms

    async def confirm(self, campaign_id: str) -> None:
        """Returns once enough replicas hold every write made so far on the campaign's master;
        raises NotReplicated otherwise (a timeout, a node gone, the slot moved)."""
        key = k.campaign_key(campaign_id, "replicated")
        try:
            acked = await self._mark_and_wait(key)
        except (RedisError, OSError) as exc:
            raise NotReplicated(f"no replica confirmed the answer: {exc}") from exc
        if acked < self.replicas:
            raise NotReplicated(f"{acked} of {self.replicas} replicas confirmed the answer "
                                f"within {self.timeout_ms} ms")

    async def _mark_and_wait(self, key: str) -> int:
        if isinstance(self.client, RedisCluster):
            return await self._on_slot_master(key)
        async with self.client.pipeline(transaction=False) as pipe:  # one connection
            pipe.incr(key)
            pipe.wait(self.replicas, self.timeout_ms)
            return int((await pipe.execute())[1])

    async def _on_slot_master(self, key: str) -> int:
        """Both commands on one connection of the node serving the key's slot, sent once: no
        cluster retry may move the `WAIT` to another node. A node that lost the slot answers
        MOVED, which fails the confirmation."""
        assert isinstance(self.client, RedisCluster)
        node = self.client.get_node_from_key(key)
        if node is None:
            raise NotReplicated("the cluster does not know who serves the campaign now")
        commands = [PipelineCommand(0, "INCR", key),
                    PipelineCommand(1, "WAIT", self.replicas, self.timeout_ms)]
        await node.execute_pipeline(commands)
        results: list[Any] = [command.result for command in commands]
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed
        return int(results[1])
