"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) on seeded campaigns:
sign in with the token, then the charts and the leaderboards are drawn. Asserts on SVG elements
and table rows, not pixels; the screenshot is kept in artifacts/dashboard.png to look at."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser

from adapters.dashboard.routes import COOKIE, DASHBOARD, add_dashboard_routes
from adapters.models.openai_drafter import OpenAIDrafter
from adapters.redis.store import RedisStore
from core.domain.experts import Expert
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.conftest import KEY_ENV, serving
from tests.dashboard_seed import seed
from tests.emulators.openai import OpenAIEmulator
from tests.test_drafting import drafting, loop_of, post

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
TOKEN = "browser-s3cret"


@pytest.fixture
async def site(coordinator: Coordinator, ledger: Ledger) -> AsyncIterator[str]:
    app = web.Application()
    add_dashboard_routes(app, coordinator, ledger, TOKEN)
    app[DASHBOARD].panels.wait_s = 60  # the seeded page whole, not its placeholders
    async with serving(app) as url:
        yield url


async def test_sign_in_then_the_plots_and_leaderboards_render(
        browser: Browser, site: str, coordinator: Coordinator, service: Service,
        clock: SetClock) -> None:
    await seed(coordinator, service, clock, count=12)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(site)
    await page.fill("input[name=token]", "wrong")
    await page.click("form button")
    assert "not right" in await page.locator(".error").inner_text()
    await page.fill("input[name=token]", TOKEN)
    await page.click("form button")
    await page.wait_for_selector("section.campaign")
    assert page.url == f"{site}/"
    cookie = next(c for c in await context.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    campaigns = page.locator("section.campaign")
    assert await campaigns.count() == 7
    pairwise = page.locator("section.campaign[data-kind=pairwise]")
    line = pairwise.locator("svg.progress polyline.line")
    assert len((await line.get_attribute("points") or "").split()) >= 3
    assert await pairwise.locator("svg.progress line.target").count() == 1
    assert await pairwise.locator("svg.throughput rect.bar").count() >= 2
    assert await pairwise.locator("svg.seconds rect.bar").count() >= 3
    assert await pairwise.locator("svg.seconds line.mark").count() == 2  # median, fast below
    assert await page.locator("svg.kinds g.box").count() == 7
    box = await page.locator("svg.kinds").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100  # drawn, not collapsed

    for kind in ("pairwise", "rank"):
        board = page.locator(f"section.campaign[data-kind={kind}] section.leaderboard")
        rows = board.locator("tr.model")
        assert await rows.count() == 3
        first = (await rows.first.locator("td").all_inner_texts())
        assert first[0] == "1" and first[1] in ("gpt-x@2026-09", "llama-y@70b", "mistral-z")
        assert await board.locator("svg.intervals circle.point").count() == 3
        assert await board.locator("svg.intervals line.ci").count() >= 2
    assert await page.locator("section.campaign[data-kind=rate] section.leaderboard").count() == 0

    listed = page.locator("section.campaign[data-kind=pairwise] tr.expert.listed")
    assert await listed.count() >= 1 and "eve" in await listed.first.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-top.png"))
    await pairwise.screenshot(path=str(ARTIFACTS / "dashboard-pairwise.png"))
    await page.click("text=Sign out")
    await page.wait_for_selector("input[name=token]")
    await context.close()


async def test_the_models_panel_and_a_paused_drafting_status_render(
        browser: Browser, site: str, store: RedisStore, coordinator: Coordinator,
        service: Service, clock: SetClock, models: OpenAIEmulator, drafter: OpenAIDrafter,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    await seed(coordinator, service, clock, kinds=("verify", "correct"), count=6)
    secret = "sk-live-0123456789abcdefWXYZ"
    monkeypatch.setenv(KEY_ENV, secret)
    await post(coordinator, {"id": "dr", "drafting": drafting(models, "model-a")},
               [{"id": "q1", "prompt": "Dose?"}])
    await loop_of(store, drafter, clock).run_until_idle()
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{site}/?token={TOKEN}")
    await page.wait_for_selector("section.campaign")

    for kind, chart in (("verify", "acceptance"), ("correct", "edits")):
        panel = page.locator(f"section.campaign[data-kind={kind}] section.models")
        row = await panel.locator("tr.model-drafts").first.locator("td").all_inner_texts()
        assert row[0] == "gpt-x@2026-09" and int(row[1]) == 6  # made: one draft per item
        assert await panel.locator(f"svg.{chart} g.series circle.point").count() >= 1
    paused = page.locator("#c-dr section.drafting .drafting-paused")
    text = await paused.inner_text()
    assert "model-a: 401" in text and "expertloop campaign redraft dr" in text
    assert secret not in await page.content()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.locator("section.campaign[data-kind=correct] section.models").screenshot(
        path=str(ARTIFACTS / "dashboard-models.png"))
    await page.close()


async def test_send_an_item_to_adjudication_and_see_it_wait(
        browser: Browser, site: str, coordinator: Coordinator, service: Service,
        clock: SetClock) -> None:
    from tests.test_labels_export import answer_all, pairwise, post_items
    items = [{"id": f"q{n}", "prompt": f"Q{n}?", "drafts": [
        {"text": f"Good q{n}.", "model": "a"}, {"text": f"Poor q{n}.", "model": "b"}]}
        for n in (1, 2)]
    await post_items(coordinator, items, kind="pairwise", overlap=1, adjudicate=True, id="adj")
    await coordinator.add_expert(Expert(id="ann", name="Ann"))
    await answer_all(service, clock, "ann", lambda card: pairwise(card, True))
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{site}/?token={TOKEN}")
    panel = page.locator("#c-adj")
    waiting = panel.locator(".tile[data-name='awaiting adjudication'] b")
    assert await waiting.inner_text() == "0"

    await panel.locator("form.adjudicate input[name=item]").fill("q2")
    await panel.locator("form.adjudicate button").click()

    await page.wait_for_selector(".notice")
    assert await page.locator(".notice").inner_text() == "adj: item q2 sent to adjudication"
    assert await page.locator("#c-adj .tile[data-name='awaiting adjudication'] b"
                              ).inner_text() == "1"
    await page.locator("#c-adj form.adjudicate input[name=item]").fill("nope")
    await page.locator("#c-adj form.adjudicate button").click()
    await page.wait_for_selector(".notice.error")
    assert "no item 'nope'" in await page.locator(".notice.error").inner_text()
    assert (await coordinator.status("adj")).awaiting_adjudication == 1
    ARTIFACTS.mkdir(exist_ok=True)
    await page.locator("#c-adj").screenshot(path=str(ARTIFACTS / "dashboard-adjudicate.png"))
    await page.close()


async def test_the_adjudicate_form_needs_the_dashboard_cookie(site: str) -> None:
    import aiohttp
    async with aiohttp.ClientSession() as http, http.post(
            f"{site}/campaigns/adj/adjudicate", data={"item": "q1"},
            allow_redirects=False) as response:
        assert response.status == 401
