"""Pay from measured active time: per task, per hour, the hourly floor's top-up, and the CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from adapters.redis.embedded import EmbeddedRedis
from core.domain.kinds import Choose, Flag
from core.domain.timing import SetClock
from core.provenance.ledger import Ledger
from core.reports.pay import SHORT_TIME_NOTE, campaign_pay, pay_csv
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.campaign_play import add_expert, post_items, work

PAIR = [{"text": "One.", "model": "m1"}, {"text": "Two.", "model": "m2"}]


def items(n: int) -> list[dict[str, object]]:
    return [{"id": f"q{i}", "prompt": f"Q{i}?", "drafts": PAIR} for i in range(n)]


async def test_a_slow_expert_gets_a_top_up_to_the_hourly_floor(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    pay = {"per_task": 1.5, "currency": "USD", "min_hourly": 60}
    campaign = await post_items(coordinator, items(8), kind="pairwise", overlap=2, pay=pay)
    await add_expert(coordinator, "quick")
    await add_expert(coordinator, "careful")
    await work(service, clock, "quick", lambda card: Choose(choice="A"), seconds=60)
    await work(service, clock, "careful", lambda card: Choose(choice="B"), seconds=180)

    report = await campaign_pay(ledger, campaign)

    lines = {line.expert: line for line in report.lines}
    quick, careful = lines["quick"], lines["careful"]
    assert (quick.tasks, quick.active_seconds, quick.base) == (8, 480.0, 12.0)
    assert quick.effective_hourly == 90.0 and quick.top_up == 0 and quick.total == 12.0
    # 8 tasks in 24 minutes: 12.00 is 30/h; the floor of 60/h over 0.4 h is 24.00
    assert (careful.base, careful.effective_hourly) == (12.0, 30.0)
    assert careful.top_up == 12.0 and careful.total == 24.0
    assert (report.base, report.top_up, report.total) == (24.0, 12.0, 36.0)


async def test_per_hour_pay_uses_time_capped_at_the_limit_and_flags_are_paid(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    pay = {"per_hour": 80, "currency": "EUR"}
    campaign = await post_items(coordinator, items(3), kind="pairwise", pay=pay,
                                time_limit_s=120)
    await add_expert(coordinator, "ann")
    decisions = iter([Choose(choice="A"), Flag(reason="broken"), None])
    await work(service, clock, "ann", lambda card: next(decisions), seconds=90)

    report = await campaign_pay(ledger, campaign)

    (line,) = report.lines
    assert line.basis == "per_hour" and line.currency == "EUR"
    assert line.tasks == 2 and line.active_seconds == 180.0  # the skip is not paid
    assert line.base == 4.0 and line.top_up == 0 and line.min_hourly is None


async def test_per_hour_pay_is_to_the_cent_of_measured_time(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    campaign = await post_items(coordinator, items(1), kind="pairwise", time_limit_s=60,
                                pay={"per_hour": 60, "currency": "USD"})
    await add_expert(coordinator, "ann")
    await work(service, clock, "ann", lambda card: Choose(choice="A"), seconds=59.5)

    line = (await campaign_pay(ledger, campaign)).lines[0]

    assert line.active_seconds == 59.5 and line.base == 0.99


async def test_pay_csv_is_the_payout_ledger(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger,
) -> None:
    campaign = await post_items(coordinator, items(2), kind="pairwise",
                                pay={"per_task": 2, "currency": "USD", "min_hourly": 30})
    await add_expert(coordinator, "ann")
    await work(service, clock, "ann", lambda card: Choose(choice="A"), seconds=540)

    rows = list(csv.DictReader(pay_csv(await campaign_pay(ledger, campaign))))

    assert rows == [{"campaign": "c1", "expert": "ann", "currency": "USD", "basis": "per_task",
                     "rate": "2.0", "tasks": "2", "active_seconds": "1080.0",
                     "hours": "0.3", "base": "4.0", "effective_hourly": "13.33",
                     "min_hourly": "30.0", "top_up": "5.0", "total": "9.0", "rate_note": ""}]


async def test_a_campaign_without_pay_reports_time_only(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    campaign = await post_items(coordinator, items(1), kind="pairwise")
    await add_expert(coordinator, "ann")
    await work(service, clock, "ann", lambda card: Choose(choice="A"), seconds=30)

    report = await campaign_pay(ledger, campaign)

    assert report.basis == "none" and report.lines[0].total == 0
    assert report.lines[0].active_seconds == 30.0


async def zero_second_answers(service: Service, coordinator: Coordinator,
                              clock: SetClock) -> None:
    """Ann: two keyboard answers in the web chat, timed at 16 ms each: 3.00 over 32 ms would
    read as 337,500 an hour. Bob: the same two answers over two minutes, a real rate."""
    campaign = await post_items(coordinator, items(2), kind="pairwise", overlap=2,
                                pay={"per_task": 1.5, "currency": "USD", "min_hourly": 60})
    await add_expert(coordinator, "ann")
    await work(service, clock, "ann", lambda card: Choose(choice="A"), seconds=0.016)
    await add_expert(coordinator, "bob")
    await work(service, clock, "bob", lambda card: Choose(choice="B"), seconds=61)
    assert campaign.id == "c1"


async def test_under_a_minute_measured_gives_no_hourly_rate_and_exact_pay(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    await zero_second_answers(service, coordinator, clock)

    report = await campaign_pay(ledger, await coordinator.catalog.campaign("c1"))

    ann, bob = report.lines
    assert (ann.expert, ann.active_seconds, ann.effective_hourly) == ("ann", 0.032, None)
    assert ann.rate_note == SHORT_TIME_NOTE and (ann.base, ann.total) == (3.0, 3.0)
    assert (bob.active_seconds, bob.rate_note) == (122.0, None)
    assert bob.effective_hourly == 88.52 and bob.total == 3.0  # a rate: over two minutes


def cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run([sys.executable, "-m", "bots.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120)


async def test_campaign_pay_json_and_csv_say_why_a_rate_is_missing(
        service: Service, coordinator: Coordinator, clock: SetClock,
        redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    await zero_second_answers(service, coordinator, clock)
    ledger_csv = tmp_path / "pay.csv"

    as_json = cli(redis_server.url(), "campaign", "pay", "c1", "--json", "--csv", str(ledger_csv))
    as_text = cli(redis_server.url(), "campaign", "pay", "c1")

    assert as_json.returncode == 0, as_json.stderr
    ann, bob = json.loads(as_json.stdout)["lines"]
    assert ann["effective_hourly"] is None and ann["rate_note"] == SHORT_TIME_NOTE
    assert ann["total"] == 3.0 and bob["effective_hourly"] == 88.52 and bob["rate_note"] is None
    rows = list(csv.DictReader(io.StringIO(ledger_csv.read_text())))
    assert [(r["expert"], r["effective_hourly"], r["rate_note"]) for r in rows] == [
        ("ann", "", SHORT_TIME_NOTE), ("bob", "88.52", "")]
    ann_line = next(line for line in as_text.stdout.splitlines() if line.startswith("ann"))
    assert "—" in ann_line and "337" not in as_text.stdout
    assert f"— per hour: {SHORT_TIME_NOTE}" in as_text.stdout
