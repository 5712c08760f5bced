"""Rationale and adjudication in every channel, through the real libraries and emulators: a
line of why beside an answer (optional: recorded with it or after it, as `rationale_added`;
required: asked for, recorded with the answer, refused and not recorded without it), and an
adjudication card that shows the earlier answers unblinded (who said what, and why) and whose
final call, with its reason, lands as an `adjudicated` event."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.redis.store import RedisStore
from adapters.slack.channel import SlackChannel, SlackSettings, build_channel
from adapters.telegram.app import TelegramBot
from adapters.web.routes import add_chat_routes
from core.domain.answers import Answer
from core.domain.campaigns import CampaignSpec
from core.domain.cards import Card
from core.domain.experts import Expert
from core.domain.kinds import Choose
from core.service.coordinator import Coordinator
from core.service.inbox import settled
from core.service.service import Service
from core.service.staging import spool_items
from tests.emulators.slack import BOT_TOKEN, SIGNING_SECRET, SlackEmulator, SlackUser
from tests.telegram_session import User, joined
from tests.test_service import events
from tests.test_slack import first_card, handling_presses, web_process

DRAFTS = ["Take it with food.", "Never take it."]
NEEDED = "Add one line on why"


async def post(coordinator: Coordinator, **spec: Any) -> None:
    """One pairwise item; the campaign's rationale and hard-case blocks as given."""
    made = CampaignSpec(id="c1", title="Which is right?", instructions="Be careful.",
                        kind="pairwise", **spec)
    spool = spool_items(made, [{"id": "q1", "prompt": "Ibuprofen with warfarin?", "drafts": [
        {"text": text, "model": "m", "model_version": "1"} for text in DRAFTS]}])
    try:
        await coordinator.post_campaign(made, spool)
    finally:
        spool.close()


async def disagreeing(service: Service, coordinator: Coordinator, *adjudicator: str) -> None:
    """Two experts disagree on the one item of a campaign with overlap 2..2 and adjudication,
    each with a reason, through `Service.submit`; `adjudicator` (their id, and any identities)
    joins with the adjudicator role."""
    await post(coordinator, overlap={"min": 2, "max": 2}, adjudicate=True)
    for expert_id, text, why in (("ann", DRAFTS[0], "food protects the stomach"),
                                 ("bob", DRAFTS[1], "the bleeding risk is too high")):
        await coordinator.add_expert(Expert(id=expert_id, name=expert_id.title()))
        card = await service.next_task(expert_id)
        assert isinstance(card, Card)
        label = next(d.label for d in card.drafts if d.text == text)
        outcome = await service.submit(card_answer(expert_id, card, label, why))
        assert outcome.status == "recorded", outcome
    await coordinator.add_expert(Expert(id=adjudicator[0], name="Judy", roles=["adjudicator"],
                                        identities=list(adjudicator[1:])))


def card_answer(expert_id: str, card: Card, label: str, why: str | None) -> Answer:
    return Answer(expert=expert_id, lease=card.lease, decision=Choose(choice=label),
                  rationale=why)


async def of_type(store: RedisStore, kind: str) -> list[dict[str, Any]]:
    return [e for e in await events(store) if e["type"] == kind]


def shows_both_earlier_answers(text: str) -> None:
    """Who said what, and why: they disagreed, so one chose A and the other B as this card
    labels the drafts."""
    for name, why in (("ann", "food protects the stomach"),
                      ("bob", "the bleeding risk is too high")):
        assert name in text and why in text, text
    assert "Final call" in text and "A is better" in text and "B is better" in text


# the web chat


@pytest.fixture
async def http(service: Service, store: RedisStore) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = web.Application()
    add_chat_routes(app, service, store)
    async with TestClient(TestServer(app)) as client:
        yield client


async def web_page(http: TestClient, coordinator: Coordinator,  # type: ignore[type-arg]
                   store: RedisStore, expert_id: str, **profile: Any) -> tuple[str, str]:
    """The expert's chat link and the page it shows now."""
    if await store.load_expert(expert_id) is None:
        await coordinator.add_expert(Expert(id=expert_id, name=expert_id.title(), **profile))
    token = await coordinator.invite_web(expert_id)
    return token, await (await http.get(f"/chat/{token}")).text()


async def web_answer(http: TestClient, token: str, page: str,  # type: ignore[type-arg]
                     **fields: str) -> str:
    """Press a button of the page's answer form, as the page's script posts it."""
    lease = re.search(r'name="lease" value="([^"]+)"', page)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert lease and csrf, page
    sent = await http.post(f"/chat/{token}/answer", headers={"X-Requested-With": "fetch"},
                           data={"lease": lease[1], "csrf": csrf[1], "type": "pairwise",
                                 **fields})
    assert sent.status == 200
    reply = await sent.json()
    return "".join(reply["log"]) + reply["current"]


async def test_web_an_optional_line_of_why_is_recorded_with_the_answer(
        http: TestClient, coordinator: Coordinator, store: RedisStore) -> None:  # type: ignore[type-arg]
    await post(coordinator, rationale="optional")
    token, page = await web_page(http, coordinator, store, "ann")
    assert re.search(r'<input name="rationale"[^>]*placeholder="Why\? One line \(optional\)">',
                     page), page

    await web_answer(http, token, page, choice="B", rationale="  clearer\n and safer  ")

    answered = await of_type(store, "answered")
    assert [e["payload"]["rationale"] for e in answered] == ["clearer and safer"]


async def test_web_a_required_line_is_asked_for_and_its_absence_refused(
        http: TestClient, coordinator: Coordinator, store: RedisStore) -> None:  # type: ignore[type-arg]
    await post(coordinator, rationale="required")
    token, page = await web_page(http, coordinator, store, "ann")
    assert re.search(r'<input name="rationale"[^>]* required>', page), page

    refused = await web_answer(http, token, page, choice="A")

    assert f"Not saved: {NEEDED}" in refused
    assert 'name="rationale"' in refused  # the card is still there, to give the reason
    assert await of_type(store, "answered") == []

    await web_answer(http, token, refused, choice="A", rationale="it says to eat first")
    answered = await of_type(store, "answered")
    assert [e["payload"]["rationale"] for e in answered] == ["it says to eat first"]


async def test_web_an_adjudication_shows_the_earlier_answers_and_records_the_final_call(
        http: TestClient, service: Service, coordinator: Coordinator,
        store: RedisStore) -> None:  # type: ignore[type-arg]
    await disagreeing(service, coordinator, "judy")
    token, page = await web_page(http, coordinator, store, "judy")
    prior = page[page.index('class="prior"'):page.index("</section>", page.index('class="prior"'))]
    shows_both_earlier_answers(prior)
    anns = re.search(r'data-label="(\w)"><h3>\w</h3><div class="text">Take it with food', page)
    assert anns and f"ann</strong>: <span class=\"said\">{anns[1]} is better" in prior

    refused = await web_answer(http, token, page, choice="A")
    assert f"Not saved: {NEEDED}" in refused
    assert await of_type(store, "adjudicated") == []

    await web_answer(http, token, refused, choice="A", rationale="food is the safer advice")
    called = await of_type(store, "adjudicated")
    assert len(called) == 1 and called[0]["expert"] == "judy"
    assert called[0]["payload"]["rationale"] == "food is the safer advice"


# Telegram


async def tg_answered(store: RedisStore) -> list[dict[str, Any]]:
    return await of_type(store, "answered")


async def test_telegram_an_optional_line_is_offered_after_the_tap_and_kept_beside_it(
        bot: TelegramBot, coordinator: Coordinator, emulator: Any, store: RedisStore) -> None:
    await post(coordinator, rationale="optional")
    user = await joined(coordinator, emulator, "ann", 501)
    await user.say("/next")

    await user.press("B is better")

    answered = await tg_answered(store)
    assert len(answered) == 1 and "rationale" not in answered[0]["payload"]
    assert "Add one line on why?" in user.texts()

    assert await user.reply("it names the bleeding risk") == 200

    added = await of_type(store, "rationale_added")
    assert len(added) == 1
    assert added[0]["payload"]["rationale"] == "it names the bleeding risk"
    assert added[0]["payload"]["answer"] == answered[0]["seq"]
    assert added[0]["lease"] == answered[0]["lease"] and added[0]["expert"] == "ann"
    assert "Reason saved" in user.texts()


async def test_telegram_a_skip_is_not_asked_why(
        bot: TelegramBot, coordinator: Coordinator, emulator: Any, store: RedisStore) -> None:
    await post(coordinator, rationale="optional")
    user = await joined(coordinator, emulator, "ann", 501)
    await user.say("/next")

    await user.press("Skip")

    assert len(await of_type(store, "skipped")) == 1
    assert "Add one line on why?" not in user.texts()


async def test_telegram_a_required_line_holds_the_tap_until_it_comes(
        bot: TelegramBot, coordinator: Coordinator, emulator: Any, store: RedisStore) -> None:
    await post(coordinator, rationale="required")
    user = await joined(coordinator, emulator, "ann", 501)
    await user.say("/next")
    assert "needs one line on why" in user.texts()

    await user.press("A is better")

    assert await tg_answered(store) == []  # nothing recorded without the reason
    assert any("One line on why" in text for text in user.callback_texts())
    prompt = user.texts()
    assert "One line on why, please" in prompt and "Your answer: A is better" in prompt

    assert await user.reply("  eating first\nprotects the stomach ") == 200

    answered = await tg_answered(store)
    assert len(answered) == 1
    assert answered[0]["payload"]["rationale"] == "eating first protects the stomach"
    assert answered[0]["payload"]["decision"]["choice"] == "A"


async def test_telegram_a_text_answer_that_needs_a_reason_asks_for_it_first(
        bot: TelegramBot, coordinator: Coordinator, emulator: Any, store: RedisStore) -> None:
    made = CampaignSpec(id="c1", title="Write it", instructions="Answer.", kind="write",
                        rationale="required")
    spool = spool_items(made, [{"id": "q1", "prompt": "Ibuprofen?", "drafts": []}])
    try:
        await coordinator.post_campaign(made, spool)
    finally:
        spool.close()
    user = await joined(coordinator, emulator, "ann", 501)
    await user.say("/next")

    await user.press("✍️ Write the answer (reply with text)")
    await user.reply("patients on warfarin bleed more")
    assert await tg_answered(store) == []
    await user.reply("Avoid it; ask your doctor for paracetamol.")

    answered = await tg_answered(store)
    assert len(answered) == 1
    assert answered[0]["payload"]["decision"]["text"] == \
        "Avoid it; ask your doctor for paracetamol."
    assert answered[0]["payload"]["rationale"] == "patients on warfarin bleed more"


async def test_telegram_an_adjudication_shows_the_earlier_answers_and_records_the_call(
        bot: TelegramBot, service: Service, coordinator: Coordinator, emulator: Any,
        store: RedisStore) -> None:
    await disagreeing(service, coordinator, "judy", "telegram:777")
    user = User(emulator, 777)
    await user.say("/next")
    shows_both_earlier_answers(user.texts())

    await user.press("B is better")
    assert await of_type(store, "adjudicated") == []
    await user.reply("the interaction is dangerous")

    called = await of_type(store, "adjudicated")
    assert len(called) == 1 and called[0]["expert"] == "judy"
    assert called[0]["payload"]["rationale"] == "the interaction is dangerous"
    assert called[0]["payload"]["decision"]["choice"] == "B"


# Slack


def slack_settings(slack: SlackEmulator) -> SlackSettings:
    return SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack.url,
                         post_interval_s=0.0)


@pytest.fixture
async def slack_url(slack: SlackEmulator, service: Service, coordinator: Coordinator,
                    store: RedisStore) -> AsyncIterator[str]:
    """`POST /slack/events` and a worker's drain of the presses it keeps."""
    channel: SlackChannel = build_channel(slack_settings(slack), service, coordinator,
                                          store.roles())
    async with web_process(slack, channel) as url, handling_presses(
            slack_settings(slack), service, coordinator):
        slack.settle = partial(settled, store.roles().inbox, "slack")
        yield url
        slack.settle = None


async def slack_user(slack: SlackEmulator, url: str, coordinator: Coordinator,
                     store: RedisStore, expert_id: str = "ann", user: str = "UANN") -> SlackUser:
    if await store.load_expert(expert_id) is None:
        await coordinator.add_expert(Expert(id=expert_id, name=expert_id.title(),
                                            identities=[f"slack:{user}"]))
    return SlackUser(slack, url, user)


def blocks_text(message: dict[str, Any]) -> str:
    return str(message["blocks"])


async def test_slack_an_optional_line_is_offered_after_the_press(
        slack: SlackEmulator, slack_url: str, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post(coordinator, rationale="optional")
    ann = await slack_user(slack, slack_url, coordinator, store)
    card = await first_card(ann)

    await ann.press("el_choose", "B")
    await slack.wait_for("chat.update")
    answered = await of_type(store, "answered")
    assert len(answered) == 1 and "rationale" not in answered[0]["payload"]

    shown = slack.messages[(ann.channel, card["ts"])]
    assert "Add a reason" in blocks_text(shown)
    await ann.interact(ann.block_action("el_open_reason", message=shown))
    assert await slack.wait_for("views.open")
    status, _ = await ann.submit({"rationale": "it names the bleeding risk"})

    assert status == 200
    added = await of_type(store, "rationale_added")
    assert [(e["payload"]["rationale"], e["payload"]["answer"]) for e in added] == [
        ("it names the bleeding risk", answered[0]["seq"])]


async def test_slack_a_required_line_is_asked_in_a_modal_that_holds_the_choice(
        slack: SlackEmulator, slack_url: str, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post(coordinator, rationale="required")
    ann = await slack_user(slack, slack_url, coordinator, store)
    await first_card(ann)

    status, _ = await ann.press("el_open_why:el_choose:A")
    assert status == 200 and await slack.wait_for("views.open")
    assert await of_type(store, "answered") == []

    status, body = await ann.submit({})  # Slack checks a required input; we check it too
    assert status == 200 and "errors" in body and NEEDED in body
    assert await of_type(store, "answered") == []

    status, _ = await ann.submit({"rationale": "eating first protects the stomach"})
    assert status == 200
    answered = await of_type(store, "answered")
    assert len(answered) == 1
    assert answered[0]["payload"]["decision"]["choice"] == "A"
    assert answered[0]["payload"]["rationale"] == "eating first protects the stomach"


async def test_slack_a_modal_kind_carries_the_line_in_its_own_form(
        slack: SlackEmulator, slack_url: str, coordinator: Coordinator,
        store: RedisStore) -> None:
    made = CampaignSpec(id="c1", title="Fix it", instructions="Fix.", kind="correct",
                        rationale="optional")
    spool = spool_items(made, [{"id": "q1", "prompt": "Ibuprofen?", "drafts": [
        {"text": DRAFTS[0], "model": "m", "model_version": "1"}]}])
    try:
        await coordinator.post_campaign(made, spool)
    finally:
        spool.close()
    ann = await slack_user(slack, slack_url, coordinator, store)
    await first_card(ann)
    await ann.press("el_open_correct")
    await slack.wait_for("views.open")

    await ann.submit({"text_0": "Take it with food and water.", "rationale": "water helps"})

    answered = await of_type(store, "answered")
    assert [e["payload"]["rationale"] for e in answered] == ["water helps"]


async def test_slack_an_adjudication_shows_the_earlier_answers_and_records_the_call(
        slack: SlackEmulator, slack_url: str, service: Service, coordinator: Coordinator,
        store: RedisStore) -> None:
    await disagreeing(service, coordinator, "judy", "slack:UJUDY")
    judy = await slack_user(slack, slack_url, coordinator, store, "judy", "UJUDY")
    card = await first_card(judy)
    shows_both_earlier_answers(str([b for b in card["blocks"] if b["type"] != "actions"]))

    await judy.press("el_open_why:el_choose:B")
    assert await slack.wait_for("views.open")
    await judy.submit({"rationale": "the interaction is dangerous"})

    called = await of_type(store, "adjudicated")
    assert len(called) == 1 and called[0]["expert"] == "judy"
    assert called[0]["payload"]["rationale"] == "the interaction is dangerous"
    assert called[0]["payload"]["decision"]["choice"] == "B"
