"""Every Redis key name in one place. Keys of one campaign share the hash tag `{<campaign>}`,
so each campaign lives in one Redis Cluster slot and its scripts never cross slots."""

from __future__ import annotations

PREFIX = "el"

# Global keys, each its own slot.
CAMPAIGNS = f"{PREFIX}:campaigns"  # zset: campaign id -> created at (ms)
ROUTING = f"{PREFIX}:routing"  # hash: active campaign id -> Route JSON
CODES = f"{PREFIX}:codes"  # hash: short code -> campaign id
CODE_COUNTER = f"{PREFIX}:code"
EXPERTS = f"{PREFIX}:experts"  # zset: expert id -> created at (ms)
IDENTITIES = f"{PREFIX}:identities"  # hash: "slack:U123" -> expert id


def campaign_key(campaign_id: str, name: str) -> str:
    return f"{PREFIX}:{{{campaign_id}}}:{name}"


def seen_key(campaign_id: str, expert_id: str) -> str:
    return campaign_key(campaign_id, f"seen:{expert_id}")


def expert_key(expert_id: str, name: str) -> str:
    return f"{PREFIX}:{{e:{expert_id}}}:{name}"


# Script key lists, in the order each script's KEYS[...] expects them.
CLAIM_KEYS = ("meta", "items", "open", "gold", "taken", "leases", "state", "expiry", "active",
              "seq", "log", "counts", "cursors")
RECORD_KEYS = ("meta", "leases", "state", "outcomes", "expiry", "active", "taken", "open",
               "done", "counts", "durations", "seq", "log", "marks")
EXPIRE_KEYS = ("leases", "state", "expiry", "active", "taken", "open", "counts", "seq", "log")
ITEM_KEYS = ("items", "open", "gold", "counts", "seq", "log")
MARK_KEYS = ("state", "marks", "seq", "log")
VIEW_KEYS = ("leases", "state", "outcomes", "marks", "log")
META_KEYS = ("meta", "seq", "log")
SEAL_KEYS = ("hashes", "head")


def script_keys(campaign_id: str, names: tuple[str, ...]) -> list[str]:
    return [campaign_key(campaign_id, name) for name in names]
