"""The Uploads role, on every store (single Redis and the Cluster): a platform's file id per
image SHA-256 and channel, the first of two racing uploads kept, and forgetting only the id
that was found stale."""

from __future__ import annotations

import asyncio

from adapters.redis.store import RedisStore
from adapters.redis.uploads import RedisUploads

SHA = "ab" * 32
OTHER = "cd" * 32


async def test_an_upload_is_kept_per_channel_and_image(any_store: RedisStore) -> None:
    uploads = RedisUploads(any_store.client)
    assert await uploads.uploaded("slack", SHA) is None

    assert await uploads.keep_uploaded("slack", SHA, "F0000000001") == "F0000000001"

    assert await uploads.uploaded("slack", SHA) == "F0000000001"
    assert await uploads.uploaded("slack", OTHER) is None
    assert await uploads.uploaded("telegram", SHA) is None


async def test_of_two_racing_uploads_the_first_is_kept(any_store: RedisStore) -> None:
    uploads = RedisUploads(any_store.client)

    kept = await asyncio.gather(uploads.keep_uploaded("slack", SHA, "F0000000001"),
                                uploads.keep_uploaded("slack", SHA, "F0000000002"))

    assert kept[0] == kept[1] == await uploads.uploaded("slack", SHA)


async def test_forgetting_a_stale_id_leaves_a_newer_one(any_store: RedisStore) -> None:
    uploads = RedisUploads(any_store.client)
    await uploads.keep_uploaded("slack", SHA, "F0000000001")

    await uploads.forget_uploaded("slack", SHA, "F0000000009")  # not the one kept: no change
    assert await uploads.uploaded("slack", SHA) == "F0000000001"
    await uploads.forget_uploaded("slack", SHA, "F0000000001")

    assert await uploads.uploaded("slack", SHA) is None
    assert await uploads.keep_uploaded("slack", SHA, "F0000000002") == "F0000000002"
