"""The coordinator dashboard over real HTTP, wired as `expertloop serve` wires it: the token's
login form and cookie, and a page for every kind built from answers given through the service."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from adapters.dashboard import charts
from adapters.dashboard.figures import SECOND_BINS, Figures, bin_of
from adapters.dashboard.routes import COOKIE, DASHBOARD
from adapters.redis.store import RedisStore
from bots.runtime import Runtime
from bots.settings import Settings
from bots.web import build_app
from core.domain.kinds import Choose
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.reports.pay import campaign_pay
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.dashboard_seed import DRAFTS, seed

TOKEN = "dash-s3cret"
Client = TestClient  # type: ignore[type-arg]


async def serve(client: aioredis.Redis, service: Service, token: str | None
                ) -> TestClient:  # type: ignore[type-arg]
    store = RedisStore(client)
    settings = Settings(EXPERTLOOP_API_TOKEN=SecretStr(token) if token else None)
    runtime = Runtime(settings, client, store, service,
                      Coordinator(store.roles(), service.clock, service.catalog), Ledger(store))
    app = build_app(runtime)
    app[DASHBOARD].panels.wait_s = 60  # tests read whole pages; the short wait has its own test
    return TestClient(TestServer(app))


@pytest.fixture
async def guarded(client: aioredis.Redis, service: Service) -> AsyncIterator[Client]:
    async with await serve(client, service, TOKEN) as http:
        yield http


@pytest.fixture
async def open_site(client: aioredis.Redis, service: Service) -> AsyncIterator[Client]:
    async with await serve(client, service, None) as http:
        yield http


class Checked(HTMLParser):
    """Fails on a tag closed out of order, so a broken page is an error, not a shrug."""

    VOID = {"meta", "link", "input", "br", "img", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        return

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-3:]}"
        self.stack.pop()


def well_formed(page: str) -> None:
    parser = Checked()
    parser.feed(page)
    assert parser.stack == ["html"] or parser.stack == [], parser.stack


async def test_without_the_cookie_the_dashboard_is_a_login_form(guarded: Client) -> None:
    response = await guarded.get("/", allow_redirects=False)
    page = await response.text()
    assert response.status == 401
    assert 'action="/login"' in page and 'type="password"' in page and "campaign" not in page


async def test_a_wrong_token_is_refused_and_sets_no_cookie(guarded: Client) -> None:
    for response in (await guarded.post("/login", data={"token": "wrong"},
                                        allow_redirects=False),
                     await guarded.get("/?token=wrong", allow_redirects=False),
                     await guarded.post("/login", data={}, allow_redirects=False)):
        assert response.status == 401
        assert "not right" in await response.text()
        assert COOKIE not in response.cookies
    guarded.session.cookie_jar.update_cookies({COOKIE: "forged"})
    assert (await guarded.get("/", allow_redirects=False)).status == 401


async def test_the_login_form_sets_a_strict_httponly_cookie_that_opens_the_page(
        guarded: Client) -> None:
    response = await guarded.post("/login", data={"token": TOKEN}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert TOKEN not in cookie.value  # a digest: the cookie cannot call the API
    page = await (await guarded.get("/")).text()
    assert "coordinator dashboard" in page and "Sign out" in page
    api = await guarded.get("/api/campaigns", headers={"Authorization": f"Bearer {cookie.value}"})
    assert api.status == 401
    out = await guarded.post("/logout", allow_redirects=False)
    assert out.status == 303
    assert (await guarded.get("/", allow_redirects=False)).status == 401


async def test_a_token_in_the_url_works_once_and_is_dropped_from_it(guarded: Client) -> None:
    response = await guarded.get(f"/?token={TOKEN}", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/"
    assert COOKIE in response.cookies
    assert (await guarded.get("/")).status == 200


async def test_without_a_token_configured_the_dashboard_is_open(open_site: Client) -> None:
    response = await open_site.get("/")
    page = await response.text()
    assert response.status == 200 and "No campaigns yet" in page and "Sign out" not in page
    assert (await open_site.get("/?token=anything", allow_redirects=False)).status == 303
    css = await open_site.get("/dashboard/static/dashboard.css")
    assert css.status == 200 and "svg.chart" in await css.text()


async def test_the_page_shows_every_kind_with_charts_experts_and_leaderboards(
        open_site: Client, coordinator: Coordinator, service: Service,
        clock: SetClock) -> None:
    await seed(coordinator, service, clock)
    response = await open_site.get("/")
    page = await response.text()
    assert response.status == 200
    well_formed(page)
    sections = re.findall(r'<section class="campaign" id="c-(\w+)" data-kind="(\w+)"', page)
    assert sorted(kind for _, kind in sections) == sorted(DRAFTS)
    assert page.count('<svg class="chart progress"') == len(DRAFTS)
    assert page.count('<svg class="chart throughput"') == len(DRAFTS)
    assert page.count('<svg class="chart seconds"') == len(DRAFTS)
    assert page.count('<svg class="chart kinds"') == 1 and page.count('class="box"') == 7
    assert page.count('<section class="leaderboard">') == 2  # pairwise and rank only
    assert page.count('<tr class="model">') == 6  # three models on each board
    assert "gpt-x@2026-09" in page and "mistral-z" in page
    for name in ("ana", "ben", "cho", "dev", "eve"):
        assert f"<td>{name}</td>" in page
    assert 'class="expert listed"' in page and "check:" in page  # eve answers in 1-3 s
    assert "alpha (nominal)" in page and "alpha (interval)" in page and "gold accuracy" in page
    assert "Traceback" not in page and "None" not in page.replace("None acceptable", "")


async def test_a_quiet_campaign_is_not_reread_until_its_log_grows(
        open_site: Client, coordinator: Coordinator, service: Service, clock: SetClock) -> None:
    await seed(coordinator, service, clock, kinds=("pairwise",), count=3)
    first = await (await open_site.get("/")).text()
    read = re.search(r"up to event ([\d,]+), read in\s+([\d.]+) s", first)
    again = await (await open_site.get("/")).text()
    assert read and read.group(0) in again


async def test_a_slow_build_shows_counts_first_and_the_panel_when_ready(
        open_site: Client, coordinator: Coordinator, service: Service, clock: SetClock) -> None:
    await seed(coordinator, service, clock, kinds=("rank",), count=3)
    board = open_site.app[DASHBOARD]  # type: ignore[index]
    board.panels.wait_s = 0
    first = await (await open_site.get("/")).text()
    assert "Reading this campaign&#x27;s log" in first and 'http-equiv="refresh"' in first
    assert 'class="campaign pending"' in first
    for task in list(board.panels.building.values()):
        await task
    ready = await (await open_site.get("/")).text()
    assert "Reading this campaign&#x27;s log" not in ready and 'http-equiv="refresh"' not in ready
    assert '<svg class="chart progress"' in ready and '<tr class="model">' in ready


async def test_pay_on_the_page_matches_the_pay_report(
        open_site: Client, coordinator: Coordinator, service: Service, clock: SetClock,
        ledger: Ledger) -> None:
    await seed(coordinator, service, clock, kinds=("verify", "label"), count=5)
    board = open_site.app[DASHBOARD]  # type: ignore[index]
    await open_site.get("/")
    for campaign_id, panel in board.panels.kept.items():
        report = await campaign_pay(ledger, await coordinator.catalog.campaign(campaign_id))
        assert panel.pay == report


async def test_titles_and_ids_are_escaped(
        open_site: Client, coordinator: Coordinator, service: Service, clock: SetClock) -> None:
    from tests.campaign_play import post_items
    await post_items(coordinator, [{"id": "q", "prompt": "p", "drafts": [{"text": "t"}]}],
                     id="x", title="<script>alert(1)</script>", kind="rate")
    page = await (await open_site.get("/")).text()
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_figures_aggregate_into_bounded_buckets() -> None:
    figures = Figures()
    start = 1_795_000_000_000
    for n in range(100_000):
        figures.add(start + n * 1500, 5 + n % 50)
    points = figures.cumulative(120)
    assert len(points) <= 122 and points[-1][1] == 100_000 and points[0][1] == 0
    hours = figures.hourly(72)
    assert len(hours) <= 72 and all(n <= 2400 for _, n in hours)
    assert sum(n for _, _, n in figures.seconds_histogram()) == 100_000
    assert len(figures.sample) == 10_000
    assert bin_of(0) == 0 and bin_of(1e9) == len(SECOND_BINS)


def test_charts_draw_nothing_without_data_and_escape_labels() -> None:
    assert "no answers yet" in charts.progress([], 10)
    assert "no answers yet" in charts.hourly([])
    drawn = charts.intervals([charts.Interval("<m>", 0.1, 0.0, 0.3),
                              charts.Interval("n", -0.1, None, None)])
    assert "&lt;m&gt;" in drawn and drawn.count('class="ci"') == 1
    assert charts.nice_ticks(95) == [0, 25, 50, 75, 100]


def expert_row(page: str, name: str) -> str:
    found = re.search(rf'<tr class="expert[^"]*"><td>{name}</td>.*?</tr>', page, re.S)
    assert found, name
    return found.group(0)


async def test_an_hourly_rate_over_seconds_is_a_dash_with_its_reason(
        open_site: Client, coordinator: Coordinator, service: Service, clock: SetClock) -> None:
    """Two keyboard answers timed at 16 ms each read as 337,500 USD an hour: not a rate."""
    from tests.campaign_play import add_expert, post_items, work
    pair = [{"text": "One.", "model": "m1"}, {"text": "Two.", "model": "m2"}]
    await post_items(coordinator, [{"id": f"q{i}", "prompt": "Q?", "drafts": pair}
                                   for i in range(2)], kind="pairwise", overlap=2,
                     pay={"per_task": 1.5, "currency": "USD"})
    for expert, seconds in (("ann", 0.016), ("bob", 61.0)):
        await add_expert(coordinator, expert)
        await work(service, clock, expert, lambda card: Choose(choice="A"), seconds=seconds)

    page = await (await open_site.get("/")).text()

    well_formed(page)
    assert "337,500" not in page
    ann = expert_row(page, "ann")
    assert '<span class="unrated" title="under a minute measured: no hourly rate">—</span>' in ann
    assert "88.52" in expert_row(page, "bob")
    assert "Effective hourly —: under a minute measured: no hourly rate; the pay itself is " \
           "exact." in page
