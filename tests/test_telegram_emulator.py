"""The emulated Bot API refuses what Telegram refuses, with Telegram's own words: checked through
the real python-telegram-bot client, since our code sees Telegram's errors only through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest

from adapters.telegram.transport import AiohttpRequest
from tests.emulators.telegram import TelegramEmulator

CHAT = 501
Refused = Callable[[Awaitable[object]], Awaitable[str]]


@pytest.fixture
async def api(emulator: TelegramEmulator) -> AsyncIterator[Bot]:
    bot = Bot(emulator.token, base_url=emulator.base_url, request=AiohttpRequest())
    async with bot:
        yield bot


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d or "x", callback_data=d)
                                  for d in data]])


@pytest.fixture
def refused(emulator: TelegramEmulator) -> Refused:
    async def refusal(call: Awaitable[object]) -> str:
        """Telegram's description of the refusal, as it goes over the wire."""
        with pytest.raises(BadRequest):
            await call
        return emulator.refused[-1][1].removeprefix("Bad Request: ")
    return refusal


async def test_an_edit_that_changes_nothing_is_not_modified(
        api: Bot, refused: Refused, emulator: TelegramEmulator) -> None:
    sent = await api.send_message(CHAT, "Card", reply_markup=keyboard("p|k1.a|A"))
    await api.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=None)

    again = await refused(api.edit_message_reply_markup(CHAT, sent.message_id,
                                                        reply_markup=None))
    same_text = await refused(api.edit_message_text("Card", CHAT, sent.message_id))

    assert again == same_text == (
        "message is not modified: specified new message content and reply markup are exactly "
        "the same as a current content and reply markup of the message")
    assert emulator.live_messages(CHAT) == []


async def test_a_deleted_message_cannot_be_edited(
        api: Bot, refused: Refused, emulator: TelegramEmulator) -> None:
    sent = await api.send_message(CHAT, "Card", reply_markup=keyboard("p|k1.a|A"))
    emulator.delete(CHAT, sent.message_id)

    assert await refused(api.edit_message_reply_markup(CHAT, sent.message_id)) == (
        "message to edit not found")
    assert await refused(api.edit_message_text("New", CHAT, sent.message_id)) == (
        "message to edit not found")
    assert emulator.chat(CHAT) == []


@pytest.mark.parametrize("data", ["x" * 65, "é" * 33, ""])
async def test_callback_data_must_be_1_to_64_bytes(
        api: Bot, refused: Refused, emulator: TelegramEmulator, data: str) -> None:
    assert await refused(api.send_message(CHAT, "Card", reply_markup=keyboard(data))) == (
        "BUTTON_DATA_INVALID")
    assert emulator.chat(CHAT) == []


async def test_a_button_without_an_action_is_refused(api: Bot, refused: Refused) -> None:
    markup = {"inline_keyboard": [[{"text": "Just text"}]]}
    sent = api.send_message(CHAT, "Card", reply_markup=markup)  # type: ignore[arg-type]
    assert await refused(sent) == (
        "text buttons are unallowed in the inline keyboard")


async def test_a_callback_answer_over_200_characters_is_refused(
        api: Bot, refused: Refused, emulator: TelegramEmulator) -> None:
    await api.answer_callback_query("q1", text="x" * 200)
    assert await refused(api.answer_callback_query("q2", text="x" * 201)) == (
        "MESSAGE_TOO_LONG")
    assert [a["callback_query_id"] for a in emulator.callback_answers] == ["q1"]


@pytest.mark.parametrize(("html", "why"), [
    ("a <x>b</x>", 'Unsupported start tag "x" at byte offset 2'),
    ("é<b>x</i>", 'Unmatched end tag at byte offset 6, expected "</b>", found "</i>"'),
    ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
    ("x</b>", "Unexpected end tag at byte offset 1"),
    ("x <b", "Unclosed start tag at byte offset 2"),
])
async def test_html_that_does_not_parse_is_refused(
        api: Bot, refused: Refused, html: str, why: str) -> None:
    assert await refused(api.send_message(CHAT, html, parse_mode="HTML")) == (
        f"can't parse entities: {why}")


async def test_too_many_buttons_are_a_reply_markup_too_long(api: Bot, refused: Refused) -> None:
    """Empirical: Telegram documents no limit, but refuses past about 100 buttons or 10 KB."""
    rows = [[InlineKeyboardButton(str(i), callback_data=str(i))] for i in range(101)]
    assert await refused(api.send_message(CHAT, "Card", reply_markup=InlineKeyboardMarkup(
        rows))) == "reply markup is too long"
    heavy = [[InlineKeyboardButton("w" * 120, callback_data=str(i))] for i in range(90)]
    assert await refused(api.send_message(CHAT, "Card", reply_markup=InlineKeyboardMarkup(
        heavy))) == "reply markup is too long"
    fine = [[InlineKeyboardButton(str(i), callback_data=str(i))] for i in range(100)]
    assert (await api.send_message(CHAT, "Card", reply_markup=InlineKeyboardMarkup(
        fine))).message_id


async def test_text_and_caption_limits(api: Bot, refused: Refused) -> None:
    assert await refused(api.send_message(CHAT, "x" * 4097)) == "message is too long"
    assert await refused(api.send_document(CHAT, b"data", filename="a.txt",
                                           caption="c" * 1025)) == (
        "message caption is too long")
    assert (await api.send_message(CHAT, "<b>" + "x" * 4096 + "</b>",
                                   parse_mode="HTML")).text == "x" * 4096
