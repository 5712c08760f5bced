"""RedisStore: every role of the store on one Redis client, one module per role. Each method is
one round trip; every change to a campaign and its event happen in one Lua script."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from adapters.redis.access import RedisAccess
from adapters.redis.asks import RedisAsks
from adapters.redis.campaigns import RedisCampaigns
from adapters.redis.drafts import RedisDrafts
from adapters.redis.experts import RedisExperts
from adapters.redis.health import RedisHealth
from adapters.redis.inbox import RedisInbox
from adapters.redis.leases import RedisLeases
from adapters.redis.log import RedisLog
from adapters.redis.lua import Scripts
from adapters.redis.outbox import RedisOutbox
from adapters.redis.qualifications import RedisQualifications
from adapters.redis.replicas import ReplicaAcks
from adapters.redis.turns import RedisTurns
from core.ports import SegmentFiles, Stores


class RedisStore(RedisCampaigns, RedisExperts, RedisAccess, RedisLeases, RedisLog, RedisInbox,
                 RedisOutbox, RedisTurns, RedisHealth, RedisDrafts, RedisQualifications,
                 RedisAsks):
    """Built from a client handed in; opens nothing itself. One object plays every role, so the
    roles share the client and its loaded scripts. `replica_acks` makes the record path wait
    for replicas (bots/runtime.py sets it from EXPERTLOOP_REPLICA_ACKS); `files` is the
    archive that the log's archived segments are read from (EXPERTLOOP_ARCHIVE)."""

    def __init__(self, client: Redis | RedisCluster, scripts: Scripts | None = None,
                 replica_acks: ReplicaAcks | None = None,
                 files: SegmentFiles | None = None) -> None:
        super().__init__(client, scripts, files)  # type: ignore[arg-type]
        self.replica_acks = replica_acks

    def roles(self) -> Stores:
        """The roles, for wiring: each consumer takes the ones it uses."""
        return Stores(campaigns=self, experts=self, access=self, leases=self, log=self,
                      inbox=self, outbox=self, turns=self, health=self, drafts=self,
                      qualifications=self, archived=self, asks=self, ask_batches=self)
