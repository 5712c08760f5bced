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
WEB_TOKENS = f"{PREFIX}:web"  # hash: sha256 of a web chat token -> expert id
SECRET = f"{PREFIX}:secret"  # random, made once: signs CSRF tokens in every process
INVITES = f"{PREFIX}:invite"  # + ":<sha256 of token>" -> expert id, expiring, single-use
ERASED = f"{PREFIX}:erased"  # hash: e:<sha256 of expert id>, h:<sha256 of chat> -> pseudonym


def campaign_key(campaign_id: str, name: str) -> str:
    return f"{PREFIX}:{{{campaign_id}}}:{name}"


def seen_key(campaign_id: str, expert_id: str) -> str:
    return campaign_key(campaign_id, f"seen:{expert_id}")


def invites_of_key(expert_id: str) -> str:
    """The expert's open invites (set of token hashes), beside their hash in the same slot,
    so an export can list them and an erase can end them."""
    return f"{PREFIX}:{{e:{expert_id}}}:invites"


def expert_key(expert_id: str) -> str:
    """One hash per expert: `profile` (JSON) and `day:<YYYY-MM-DD>` answer counts, so one HMGET
    reads everything a task assignment needs to know about them."""
    return f"{PREFIX}:{{e:{expert_id}}}:expert"


def script_keys(campaign_id: str, *extra: str) -> list[str]:
    """A campaign script's KEYS: the campaign's `meta` key first (the script derives every other
    campaign key from its prefix, in the same slot), then keys it cannot derive."""
    return [campaign_key(campaign_id, "meta"), *extra]


def health_key(channel: str) -> str:
    """A channel's health: hash of `state`, `reason` (the last process to try its platform),
    `dead_requests` and `refused_cards` (counts across processes)."""
    return f"{PREFIX}:health:{channel}"


def outbox_key(channel: str) -> str:
    """A channel's outbox: hash of key -> JSON of what is owed (sent by its delivery loop)."""
    return f"{PREFIX}:outbox:{channel}"


def turn_key(job: str) -> str:
    """Held for a while by the one process whose turn it is to run `job`."""
    return f"{PREFIX}:turn:{job}"


def delivery_key(channel: str, event_id: str) -> str:
    """Held for a while once a platform event was taken, so its resends are dropped."""
    return f"{PREFIX}:delivery:{channel}:{event_id}"


def pace_key(name: str) -> str:
    """The next free send slot (ms, Redis's clock) of something rate-limited, e.g. a channel."""
    return f"{PREFIX}:pace:{name}"


def invite_key(token_hash: str) -> str:
    return f"{INVITES}:{token_hash}"


def inbox_key(channel: str, name: str) -> str:
    """A channel's inbox: `stream` (requests not yet handled), `seen:<id>` (resend markers),
    `dead` (requests that failed every try); one hash tag, so its scripts stay in one slot."""
    return f"{PREFIX}:{{inbox:{channel}}}:{name}"


def showings_key(campaign_id: str, token: str) -> str:
    """The messages that show a lease with live buttons (a set), in the campaign's slot."""
    return campaign_key(campaign_id, f"shown:{token}")


def segments_key(campaign_id: str) -> str:
    """The archive's manifest: a zset of each archived segment's meta (JSON) scored by its
    last seq. Beside it, `archived_items` (hash: seq -> the `item_added` body of an item whose
    event left the stream, which claims still read; trim_archived.lua keeps them while the item
    is in play, record.lua drops them once it is finished, and a claim that shows a finished
    item again keeps it again from the archive: adapters/redis/leases.py)."""
    return campaign_key(campaign_id, "segments")


def archived_items_key(campaign_id: str) -> str:
    return campaign_key(campaign_id, "archived_items")
