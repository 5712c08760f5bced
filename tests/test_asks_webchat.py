"""Live asks in the web chat, in a real browser (Debian's Chromium, driven by Playwright): the
page shows the expert's open asks first, with who asks, the deadline and the pay above the
question; approve in one press, reject with its reason (and not without), edit a field per
argument; choose, verify (accept, override) and write on the campaign cards; a card whose ask
a colleague decided meanwhile, and a forged token, record nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page

from adapters.redis.store import RedisStore
from adapters.web.routes import add_chat_routes
from core.domain.answers import Answer
from core.domain.asks import AskView
from core.domain.experts import Expert
from core.domain.kinds import Approve
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.conftest import serving
from tests.test_asks_telegram import ARGS, CALLER, CHOOSE, VERIFY, WRITE, ask_events, asked

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture
async def site(service: Service, store: RedisStore) -> AsyncIterator[str]:
    app = web.Application()
    add_chat_routes(app, service, store)
    async with serving(app) as url:
        yield url


async def add(coordinator: Coordinator, *names: str) -> None:
    for name in names:
        await coordinator.add_expert(Expert(id=name, name=name.title(), skills=["billing"]))


async def post(service: Service, **fields: Any) -> AskView:
    view, created = await service.asks.post(asked(**fields), CALLER)
    assert created
    return view


async def open_chat(browser: Browser, coordinator: Coordinator, site: str,
                    expert_id: str = "ann") -> Page:
    token = await coordinator.invite_web(expert_id)
    page = await browser.new_page(viewport={"width": 400, "height": 860})  # a phone's width
    await page.goto(f"{site}/chat/{token}")
    return page


async def bubble(page: Page, count: int = 1) -> str:
    """Wait for the `count`th bubble and return its text."""
    found = page.locator("#log .bubble").nth(count - 1)
    await found.wait_for()
    return await found.inner_text()


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"asks-webchat-{name}.png"), full_page=True)


async def test_the_card_shows_who_asks_the_deadline_the_pay_and_the_call(
        browser: Browser, site: str, service: Service, coordinator: Coordinator) -> None:
    await add(coordinator, "ann")
    await post(service)
    page = await open_chat(browser, coordinator, site)

    card = await page.locator("#card").inner_text()
    header = await page.locator(".ask-header").inner_text()
    assert "Asked by refund-bot" in header and "answer within 15 min" in header
    assert "pays 2.00 EUR" in header
    assert card.index("Asked by refund-bot") < card.index("Refund 120 EUR to order 5512?")
    rows = await page.locator(".proposal tr").all_inner_texts()
    assert [r.split("\t") for r in rows] == [["order", "5512"], ["amount", "120"],
                                             ["currency", "EUR"]]
    assert await page.locator("button[value=skip]").count() == 0  # an ask wants a call
    await shot(page, "approve")


async def test_approve_is_one_press(browser: Browser, site: str, service: Service,
                                    coordinator: Coordinator) -> None:
    await add(coordinator, "ann")
    view = await post(service)
    page = await open_chat(browser, coordinator, site)

    await page.keyboard.press("y")

    assert await bubble(page) == "Approved"
    decided = await service.asks.view(view.id)
    assert decided.status == "approved" and decided.decision == {"verdict": "approved"}


async def test_reject_needs_its_reason(browser: Browser, site: str, service: Service,
                                       coordinator: Coordinator, store: RedisStore) -> None:
    await add(coordinator, "ann")
    view = await post(service)
    page = await open_chat(browser, coordinator, site)

    await page.click("details.reject summary")
    await page.click("button[value=rejected]")
    assert "Not saved: a rejection needs its reason" in await bubble(page)
    assert await ask_events(store, "ask_answered") == []

    await page.fill("input[name=comment]", "The order was already refunded.")
    await page.click("button[value=rejected]")
    assert await bubble(page, 2) == "Rejected: The order was already refunded."
    decided = await service.asks.view(view.id)
    assert decided.status == "rejected" and decided.comment == "The order was already refunded."


async def test_edit_has_a_field_per_argument(browser: Browser, site: str, service: Service,
                                             coordinator: Coordinator) -> None:
    await add(coordinator, "ann")
    view = await post(service)
    page = await open_chat(browser, coordinator, site)

    await page.click("details.edit summary")
    fields = page.locator("details.edit input")
    assert [await fields.nth(n).input_value() for n in range(3)] == ["5512", "120", '"EUR"']
    await page.fill("input[name='arg:amount']", "100")
    await page.fill("input[name='arg:currency']", "USD")  # not JSON: taken as the text
    await shot(page, "edit")
    await page.click("button[value=edited]")

    assert await bubble(page) == "Edited: amount 100, currency USD"
    decided = await service.asks.view(view.id)
    assert decided.decision == {"verdict": "edited",
                                "args": {**ARGS, "amount": 100, "currency": "USD"}}


@pytest.mark.parametrize(("fields", "decision"), [
    (CHOOSE, {"choice": "B"}), (VERIFY, {"verdict": "accept"}),
    (VERIFY, {"verdict": "override", "text": "Refunds take 5 working days.",
              "reason": "It is five days."}),
    (WRITE, {"text": "We refund you today."}),
])
async def test_choose_verify_and_write_asks_use_the_campaign_cards(
        browser: Browser, site: str, service: Service, coordinator: Coordinator,
        fields: dict[str, Any], decision: dict[str, Any]) -> None:
    await add(coordinator, "ann")
    view = await post(service, **fields)
    page = await open_chat(browser, coordinator, site)
    assert "Asked by refund-bot" in await page.locator(".ask-header").inner_text()

    if "choice" in decision:
        await page.keyboard.press("2")
    elif decision.get("verdict") == "accept":
        await page.keyboard.press("a")
    elif "reason" in decision:
        await page.keyboard.press("o")
        await page.fill(".override-fields textarea", decision["text"])
        await page.fill("input[name=reason]", decision["reason"])
        await page.click("button[value=override]")
    else:
        await page.fill("textarea[name=text]", decision["text"])
        await page.click("button.submit")

    await bubble(page)
    done = await service.asks.view(view.id)
    assert done.status == "answered" and done.decision == decision


async def test_a_card_a_colleague_decided_meanwhile_records_nothing(
        browser: Browser, site: str, service: Service, coordinator: Coordinator) -> None:
    await add(coordinator, "ann", "bob")
    view = await post(service)
    page = await open_chat(browser, coordinator, site)
    bobs = (await service.asks.cards_for("bob"))[0]
    assert (await service.submit(Answer(expert="bob", lease=bobs.lease,
                                        decision=Approve(verdict="approved")))).status == \
        "recorded"

    await page.keyboard.press("y")

    assert "already decided by another expert; nothing was recorded" in await bubble(page)
    assert (await service.asks.view(view.id)).by == ["bob"]
    assert await page.locator(".ask-header").count() == 0  # its card is gone


async def test_a_forged_token_records_nothing(browser: Browser, site: str, service: Service,
                                              coordinator: Coordinator,
                                              store: RedisStore) -> None:
    """Bob is one of the experts the ask allows, yet Ann's token is not his to answer with."""
    await add(coordinator, "ann", "bob")
    view = await post(service)
    anns = (await service.asks.cards_for("ann"))[0]
    page = await open_chat(browser, coordinator, site, "bob")

    await page.evaluate("(lease) => document.querySelectorAll('input[name=lease]')"
                        ".forEach((i) => { i.value = lease; })", anns.lease)
    await page.keyboard.press("y")

    assert "not yours" in await bubble(page)
    assert (await service.asks.view(view.id)).status == "pending"
    assert await ask_events(store, "ask_answered") == []
