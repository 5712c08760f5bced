"""The web chat in a real browser (Debian's Chromium, driven by Playwright): an expert answers
every kind of card with mouse and keyboard, and the log shows exactly those answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page

from adapters.redis.store import RedisStore
from adapters.web.routes import add_chat_routes
from core.domain.campaigns import CampaignSpec
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items
from tests.conftest import serving

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
DRAFT = "Take ibuprofen with food.\nStop if your stomach hurts."
ITEM = {"prompt": "How should I take ibuprofen?",
        "drafts": [{"text": DRAFT, "model": "model-x"}, {"text": "With water.", "model": "model-y"},
                   {"text": "Any way you like.", "model": "model-z"}]}
KINDS: dict[str, dict[str, Any]] = {  # campaign options and drafts per kind, posted in this order
    "a-pairwise": {"kind": "pairwise", "drafts": 2},
    "b-rank": {"kind": "rank", "drafts": 3},
    "c-rate": {"kind": "rate", "drafts": 1},
    "d-correct": {"kind": "correct", "drafts": 1},
    "e-verify": {"kind": "verify", "drafts": 1},
    "f-label": {"kind": "label", "drafts": 1, "labels": ["accurate", "unsafe"], "multi": True},
    "g-write": {"kind": "write", "drafts": 0},
}


@pytest.fixture
async def site(service: Service, store: RedisStore) -> AsyncIterator[str]:
    app = web.Application()
    add_chat_routes(app, service, store)
    async with serving(app) as url:
        yield url


async def post_kinds(coordinator: Coordinator, only: tuple[str, ...] = tuple(KINDS),
                     items: int = 1) -> None:
    for campaign_id in only:
        options = dict(KINDS[campaign_id])
        drafts = ITEM["drafts"][: options.pop("drafts")]
        spec = CampaignSpec(id=campaign_id, title=f"Task: {campaign_id}", time_limit_s=60,
                            instructions=f"How to do {campaign_id}.", **options)
        spool = spool_items(spec, [{"id": f"q{n}", "prompt": ITEM["prompt"], "drafts": drafts}
                                   for n in range(items)])
        await coordinator.post_campaign(spec, spool)
        spool.close()


async def open_chat(browser: Browser, coordinator: Coordinator, site: str,
                    expert_id: str = "ann") -> Page:
    await coordinator.add_expert(Expert(id=expert_id, name="Ann Expert"))
    token = await coordinator.invite_web(expert_id)
    page = await browser.new_page(viewport={"width": 400, "height": 860})  # a phone's width
    await page.goto(f"{site}/chat/{token}")
    return page


async def saved(page: Page, count: int) -> str:
    """Wait for the `count`th bubble and return its text."""
    bubble = page.locator("#log .bubble").nth(count - 1)
    await bubble.wait_for()
    return await bubble.inner_text()


async def answered(store: RedisStore, campaign_id: str) -> list[dict[str, Any]]:
    events = [json.loads(e.body) for e in await store.read_events(campaign_id, 0, 10_000)]
    return [e for e in events if e["type"] in ("answered", "skipped", "flagged")]


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"webchat-{name}.png"), full_page=True)


async def test_an_expert_answers_every_kind_with_mouse_and_keyboard(
        browser: Browser, site: str, coordinator: Coordinator, store: RedisStore,
        ledger: Ledger) -> None:
    await post_kinds(coordinator)
    page = await open_chat(browser, coordinator, site)
    assert await page.locator("details.instructions").get_attribute("open") is not None
    await shot(page, "pairwise")

    await page.keyboard.press("2")  # pairwise: B is better
    assert "Saved your choice" in await saved(page, 1)

    for label in ("C", "A", "B"):  # rank by tapping drafts in order, then confirm
        await page.click(f"button.pick[data-pick={label}]")
    assert await page.locator("output.order").inner_text() == "C > A > B"
    await page.click("button.confirm")
    assert "Saved your ranking" in await saved(page, 2)

    await page.keyboard.press("4")  # rate
    assert "Saved your rating" in await saved(page, 3)

    await page.fill("textarea[name=text]", DRAFT.replace("food", "a meal"))  # correct
    await page.locator("pre.diff").filter(has_text="+ Take ibuprofen with a meal.").wait_for()
    await shot(page, "correct")
    await page.click("button.submit")
    assert "Saved your correction" in await saved(page, 4)

    await page.keyboard.press("o")  # verify: override
    await page.fill(".override-fields textarea", "Take it with food, at most 3 times a day.")
    await page.fill("input[name=reason]", "The dose limit is missing.")
    await page.click("button[value=override]")
    assert "Saved your verdict" in await saved(page, 5)

    await page.check("input[value=accurate]")
    await page.check("input[value=unsafe]")
    await page.click("button.submit")
    assert "Saved your labels" in await saved(page, 6)

    await page.fill("textarea[name=text]", "With food, and not for more than ten days.")
    await page.click("button.submit")
    assert "Saved your answer" in await saved(page, 7)
    await page.locator(".notice").filter(has_text="No tasks").wait_for()
    await shot(page, "done")

    decisions = {}
    for campaign_id in KINDS:
        await ledger.seal(campaign_id)
        assert (await ledger.verify(campaign_id)).ok
        [event] = await answered(store, campaign_id)
        decisions[campaign_id] = event["payload"]
    assert decisions["a-pairwise"]["decision"] == {"type": "pairwise", "choice": "B"}
    assert decisions["b-rank"]["decision"]["order"] == ["C", "A", "B"]
    assert decisions["c-rate"]["decision"]["score"] == 4
    assert "+Take ibuprofen with a meal." in decisions["d-correct"]["diff"]
    assert decisions["e-verify"]["decision"]["reason"] == "The dose limit is missing."
    assert decisions["f-label"]["decision"]["labels"] == ["accurate", "unsafe"]
    assert decisions["g-write"]["decision"]["text"].startswith("With food")
    assert all(p["channel"] == "web" and p["timing"]["delivered_at"] for p in decisions.values())
    assert all(p["timing"]["opened_at"] for p in decisions.values())  # first touch, then answer


async def test_a_double_click_or_a_resubmitted_form_records_one_answer(
        browser: Browser, site: str, coordinator: Coordinator, store: RedisStore) -> None:
    await post_kinds(coordinator, ("a-pairwise",), items=3)
    page = await open_chat(browser, coordinator, site)
    form = await page.evaluate("""() => {
        const form = document.querySelector("form.answer");
        return Object.fromEntries(new FormData(form));
    }""")

    await page.dblclick("button[value=A]")
    await saved(page, 1)
    again = await page.request.post(page.url + "/answer", form={**form, "choice": "B"},
                                    headers={"X-Requested-With": "fetch"})

    assert "already saved" in (await again.json())["log"][0]
    events = await answered(store, "a-pairwise")
    assert [e["payload"]["decision"]["choice"] for e in events] == ["A"]


async def test_the_second_click_or_a_held_key_does_not_answer_the_card_that_replaced_it(
        browser: Browser, site: str, coordinator: Coordinator, store: RedisStore) -> None:
    await post_kinds(coordinator, ("a-pairwise",), items=3)
    page = await open_chat(browser, coordinator, site)
    first = await page.get_attribute("#card", "data-lease")
    await page.click("button[value=A]")
    await saved(page, 1)
    await page.wait_for_function(f"document.getElementById('card').dataset.lease !== '{first}'")

    box = await page.locator("button[value=A]").bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + 5, box["y"] + 5)
    await page.mouse.down(click_count=2)  # the second click of a double-click, on the new card
    await page.mouse.up(click_count=2)
    await page.wait_for_timeout(500)
    assert len(await answered(store, "a-pairwise")) == 1

    second = await page.get_attribute("#card", "data-lease")
    await page.keyboard.down("1")
    await saved(page, 2)
    await page.wait_for_function(f"document.getElementById('card').dataset.lease !== '{second}'")
    await page.keyboard.down("1")  # still held: the browser repeats the key on the third card
    await page.keyboard.up("1")
    await page.wait_for_timeout(500)

    assert len(await answered(store, "a-pairwise")) == 2
    assert await page.locator("#log .bubble").count() == 2


async def test_a_stale_page_after_the_time_ran_out_records_nothing(
        browser: Browser, site: str, coordinator: Coordinator, store: RedisStore,
        clock: SetClock) -> None:
    await post_kinds(coordinator, ("a-pairwise",), items=2)
    page = await open_chat(browser, coordinator, site)
    stale = await page.get_attribute("#card", "data-lease")

    clock.advance(61)
    await page.keyboard.press("1")

    assert "Not saved" in await saved(page, 1) and "time ran out" in await saved(page, 1)
    assert await page.get_attribute("#card", "data-lease") != stale  # the next task came
    assert await answered(store, "a-pairwise") == []


async def test_pause_stops_the_flow_until_resume(
        browser: Browser, site: str, coordinator: Coordinator) -> None:
    await post_kinds(coordinator, ("a-pairwise",), items=2)
    page = await open_chat(browser, coordinator, site)

    await page.click("#pause-button")
    await page.locator(".notice").filter(has_text="paused").wait_for()
    await page.reload()
    assert await page.locator("#card").count() == 0
    await page.click("#pause-button")
    await page.locator("#card").wait_for()

    await page.click("#stats-button")
    await page.locator("#stats dl").wait_for()
    assert "0 of 200" in await page.inner_text("#stats")


async def test_a_conversation_shows_as_bubbles_by_role_and_is_answered(
        browser: Browser, site: str, coordinator: Coordinator, store: RedisStore) -> None:
    chat = [{"role": "system", "content": "You are a careful clinician."},
            {"role": "user", "content": "I take warfarin <5 mg>."},
            {"role": "assistant", "content": "Noted. What would you like to know?"},
            {"role": "user", "content": "Can I take ibuprofen?"}]
    spec = CampaignSpec(id="chat", title="Which reply?", kind="pairwise", instructions="Pick.")
    spool = spool_items(spec, [{"id": "q1", "prompt": chat, "drafts": ITEM["drafts"][:2]}])
    await coordinator.post_campaign(spec, spool)
    spool.close()
    page = await open_chat(browser, coordinator, site)

    turns = page.locator(".prompt.conversation .turn")
    assert await turns.locator(".role").all_inner_texts() == [
        "SYSTEM", "USER", "ASSISTANT", "USER"]  # labels shown upper-case by the style
    assert await turns.locator(".text").all_inner_texts() == [t["content"] for t in chat]
    user, assistant = turns.nth(1), turns.nth(2)
    user_box, assistant_box = await user.bounding_box(), await assistant.bounding_box()
    assert user_box and assistant_box and user_box["x"] > assistant_box["x"]  # sides of a chat
    await shot(page, "conversation")

    await page.keyboard.press("1")
    assert "Saved your choice" in await saved(page, 1)
    [event] = await answered(store, "chat")
    assert event["payload"]["decision"] == {"type": "pairwise", "choice": "A"}


async def test_a_required_line_of_why_is_typed_under_the_buttons_and_enter_answers_nothing(
        browser: Browser, site: str, coordinator: Coordinator, store: RedisStore) -> None:
    spec = CampaignSpec(id="why", title="Which is right?", instructions="Say why.",
                        kind="pairwise", rationale="required")
    spool = spool_items(spec, [{"id": f"q{n}", "prompt": ITEM["prompt"],
                                "drafts": ITEM["drafts"][:2]} for n in range(2)])
    await coordinator.post_campaign(spec, spool)
    spool.close()
    page = await open_chat(browser, coordinator, site)
    field = page.locator("input[name=rationale]")
    assert await field.evaluate("e => e.validity.valueMissing")  # the browser asks for it too

    await field.fill("B names the stomach risk")
    await field.press("Enter")  # would press "A is better", the form's first button
    await shot(page, "rationale")
    await page.click("button[value=B]")

    assert "Saved your choice" in await saved(page, 1)
    await field.fill("neither mentions warfarin")  # "None acceptable" is in the other form
    await page.click("button[value=none_acceptable]")
    assert "Saved none acceptable" in await saved(page, 2)

    first, second = await answered(store, "why")
    assert first["payload"]["decision"] == {"type": "pairwise", "choice": "B"}
    assert first["payload"]["rationale"] == "B names the stomach risk"
    assert second["payload"]["decision"]["type"] == "none_acceptable"
    assert second["payload"]["rationale"] == "neither mentions warfarin"
