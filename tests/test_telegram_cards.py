"""A card too long for a few messages goes as a document (multipart upload through the bot's
aiohttp transport), whole, with a short message that carries the buttons."""

from __future__ import annotations

from adapters.redis.store import RedisStore
from adapters.telegram.app import Telegram
from core.coordinator import Coordinator
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import answered, joined, post_kind


async def test_a_very_long_card_arrives_as_a_document_and_is_answered(
        bot: Telegram, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    drafts = [f"Draft {n}: " + "ibuprofen & <warfarin> ünïcode " * 300 for n in range(3)]
    await post_kind(coordinator, "rank", drafts=drafts)
    ann = await joined(coordinator, emulator, "ann", 501)

    assert await ann.say("/next") == 200

    [document] = emulator.documents
    text = document["data"].decode()
    assert all(draft in text for draft in drafts)  # every draft whole, unescaped
    assert document["filename"].endswith(".txt")
    assert "file above" in ann.card()["text"]
    for label in ("B", "A", "C", "Confirm"):
        assert await ann.press(label) == 200
    [event] = await answered(store)
    assert event["payload"]["decision"] == {"type": "rank", "order": ["B", "A", "C"]}
