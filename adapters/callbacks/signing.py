"""The callback's signature, made the way Slack signs its requests, so an agent checks it with
ten lines of standard library (docs/asks.md): `v0=` + hex HMAC-SHA256 of "v0:<ts>:<body>".
https://api.slack.com/authentication/verifying-requests-from-slack"""

from __future__ import annotations

import hashlib
import hmac

VERSION = "v0"
SIGNATURE = "X-Expertloop-Signature"
TIMESTAMP = "X-Expertloop-Request-Timestamp"
DELIVERY = "X-Expertloop-Delivery"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes, delivery: str) -> dict[str, str]:
    """The delivery id is the same on every retry, so the agent can drop a repeat."""
    return {"Content-Type": "application/json", TIMESTAMP: str(timestamp),
            SIGNATURE: signature(secret, timestamp, body), DELIVERY: delivery}
