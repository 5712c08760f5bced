"""One card, one live message: whenever a task the expert holds is shown again (/next, a push,
/resume), the earlier message loses its buttons; once the answer is recorded no message of that
task keeps them; a tap on a replaced or finished card gets an alert and records nothing. Checked
on what the chat finally shows: each message's text and whether its buttons are live."""

from __future__ import annotations

from adapters.redis.store import RedisStore
from adapters.telegram.app import TelegramBot
from adapters.telegram.delivery import TelegramDelivery
from core.domain.experts import Expert
from core.service.coordinator import Coordinator
from core.service.delivery import DeliveryLoop
from core.service.service import Service
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import (
    User,
    answered,
    joined,
    lease_of,
    live_copies,
    post_kind,
)

CORRECT = "✏️ Correct draft A (reply with text)"


def shown(emulator: TelegramEmulator, chat: int, message_id: int) -> dict[str, object]:
    return emulator.messages[(chat, message_id)]


async def test_start_then_next_leaves_one_live_copy_of_the_card(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    await coordinator.add_expert(Expert(id="ann", name="Ann"))
    ann = User(emulator, 501)
    await ann.say(f"/start {await coordinator.new_invite('ann')}")
    first = dict(ann.card())

    assert await ann.say("/next") == 200

    second = ann.card()
    lease = lease_of(first)
    assert lease is not None and lease_of(second) == lease
    assert second["message_id"] > first["message_id"]
    assert live_copies(emulator, 501) == {lease: [second["message_id"]]}
    earlier = shown(emulator, 501, first["message_id"])
    assert earlier["text"] == second["text"] and "reply_markup" not in earlier
    assert emulator.refused == []


async def test_a_pushed_card_asked_for_again_keeps_one_live_copy(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        service: Service) -> None:
    await post_kind(coordinator, "pairwise")
    ann = await joined(coordinator, emulator, "ann", 501)
    assert await DeliveryLoop(service, TelegramDelivery(bot)).push_idle() == 1
    pushed = dict(ann.card())

    await ann.say("/next")
    await ann.say("/next")

    lease = lease_of(pushed)
    assert lease is not None
    assert live_copies(emulator, 501) == {lease: [ann.card()["message_id"]]}
    assert sum(m.get("text") == pushed["text"] for m in emulator.chat(501)) == 3


async def test_pause_then_resume_shows_the_held_card_once(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "pairwise")
    ann = await joined(coordinator, emulator, "ann", 501)
    await ann.say("/next")
    held = dict(ann.card())

    await ann.say("/pause")
    await ann.say("/resume")

    lease = lease_of(held)
    assert lease is not None
    assert live_copies(emulator, 501) == {lease: [ann.card()["message_id"]]}
    assert ann.card()["message_id"] != held["message_id"]
    assert emulator.refused == []


async def test_an_answer_leaves_no_live_copy_of_its_task(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    """Asked for a correction on the first copy, shown again, answered by replying to the prompt
    the first copy opened: the copy shown last loses its buttons too."""
    await post_kind(coordinator, "correct")
    ann = await joined(coordinator, emulator, "ann", 501)
    await ann.say("/next")
    first = dict(ann.card())
    lease = lease_of(first)
    await ann.press(CORRECT, first)
    await ann.say("/next")
    again = ann.card()
    assert live_copies(emulator, 501) == {lease: [again["message_id"]]}

    assert await ann.reply("Take it with food and water.") == 200

    [event] = await answered(store)
    assert event["payload"]["decision"]["text"] == "Take it with food and water."
    assert lease not in live_copies(emulator, 501)
    assert "reply_markup" not in shown(emulator, 501, again["message_id"])
    assert "✅ Saved: correct" in ann.texts()
    assert list(live_copies(emulator, 501)) == [lease_of(ann.card())]  # only the next task


async def test_a_deleted_card_is_no_failure_when_shown_again_or_answered(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    """The expert deletes the card: taking its buttons off, or closing it after an answer given
    by a reply, finds nothing to edit. That counts as done; nothing is tried again."""
    await post_kind(coordinator, "correct")
    ann = await joined(coordinator, emulator, "ann", 501)
    await ann.say("/next")
    emulator.delete(501, ann.card()["message_id"])
    await ann.say("/next")  # the held card again: the deleted copy cannot lose its buttons
    card = dict(ann.card())
    await ann.press(CORRECT, card)
    emulator.delete(501, card["message_id"])

    assert await ann.reply("Only with food.") == 200

    assert len(await answered(store)) == 1
    assert [why for _, why in emulator.refused] == ["Bad Request: message to edit not found"] * 2
    assert "✅ Saved: correct" in ann.texts()  # said below, as the card is gone
    assert "Not saved" not in ann.texts()
    assert len(live_copies(emulator, 501)) == 1  # the next task only


async def test_a_step_on_a_card_deleted_meanwhile_is_no_failure(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post_kind(coordinator, "rank")
    ann = await joined(coordinator, emulator, "ann", 501)
    await ann.say("/next")
    card = dict(ann.card())
    emulator.delete(501, card["message_id"])  # tapped, then deleted before the bot edited it

    assert await ann.press("B", card) == 200

    assert emulator.refused == [("editMessageReplyMarkup",
                                 "Bad Request: message to edit not found")]  # once: not retried
    assert "Not saved" not in ann.texts() and await answered(store) == []


async def test_a_tap_on_a_replaced_copy_says_why_and_changes_nothing(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    """The expert tapped the first copy just as /next replaced it: the tap arrives after."""
    await post_kind(coordinator, "rank")
    ann = await joined(coordinator, emulator, "ann", 501)
    await ann.say("/next")
    first = dict(ann.card())
    await ann.say("/next")

    assert await ann.press("B", first) == 200

    assert "shown again further down" in ann.callback_texts()[-1]
    assert emulator.callback_answers[-1].get("show_alert") == "true"
    assert "reply_markup" not in shown(emulator, 501, first["message_id"])
    assert "Order: tap the best draft first" in emulator.buttons(ann.card())  # untouched
    assert await answered(store) == []


async def test_a_step_on_an_answered_card_says_why_and_gives_it_no_buttons_back(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post_kind(coordinator, "rank", n_items=1)
    ann = await joined(coordinator, emulator, "ann", 501)
    await ann.say("/next")
    card = dict(ann.card())
    for label in ("A", "B", "C", "Confirm"):
        await ann.press(label)

    assert await ann.press("B", card) == 200  # the first tap's buttons, pressed late

    assert "not yours" in ann.callback_texts()[-1]
    assert "reply_markup" not in shown(emulator, 501, card["message_id"])
    assert len(await answered(store)) == 1


async def test_a_step_on_someone_elses_card_says_why_and_changes_nothing(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator) -> None:
    await post_kind(coordinator, "rank")
    ann = await joined(coordinator, emulator, "ann", 501)
    eve = await joined(coordinator, emulator, "eve", 666)
    await ann.say("/next")
    anns = dict(ann.card())

    stolen = emulator.press_update(666, anns, emulator.buttons(anns)["B"])
    assert await emulator.send(stolen) == 200

    assert "not yours" in eve.callback_texts()[-1]
    assert emulator.buttons(shown(emulator, 501, anns["message_id"])) == emulator.buttons(anns)
