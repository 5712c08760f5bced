"""Expert profiles: quiet hours and the calendar day follow the expert's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from core.domain.experts import Expert
from core.errors import Conflict
from core.service.coordinator import Coordinator


def utc_ms(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def expert(**fields: object) -> Expert:
    return Expert.model_validate({"id": "dr-lee", "name": "Dr. Lee", **fields})


BERLIN_NIGHTS = expert(time_zone="Europe/Berlin", quiet_hours="22:00-07:00")


@pytest.mark.parametrize(("utc_hour", "utc_minute", "quiet"), [
    (20, 59, False),  # 21:59 in Berlin (UTC+1 in January)
    (21, 0, True),    # 22:00, the window opens
    (23, 30, True),   # 00:30 the next day
    (5, 59, True),    # 06:59
    (6, 0, False),    # 07:00, the window has closed
    (12, 0, False),   # 13:00
])
def test_quiet_hours_wrap_past_midnight_in_the_experts_zone(utc_hour: int, utc_minute: int,
                                                            quiet: bool) -> None:
    assert BERLIN_NIGHTS.in_quiet_hours(utc_ms(2026, 1, 15, utc_hour, utc_minute)) is quiet


def test_quiet_hours_follow_summer_time() -> None:
    """Berlin is UTC+2 in July: 20:30 UTC is 22:30 there, already quiet."""
    assert BERLIN_NIGHTS.in_quiet_hours(utc_ms(2026, 7, 15, 20, 30))
    assert not BERLIN_NIGHTS.in_quiet_hours(utc_ms(2026, 1, 15, 20, 30))


@pytest.mark.parametrize(("utc_hour", "utc_minute", "quiet"), [
    (16, 59, False),  # 11:59 in New York (UTC-5 in January)
    (17, 0, True),    # 12:00
    (18, 30, True),   # 13:30
    (19, 0, False),   # 14:00, the window has closed
    (3, 0, False),    # 22:00 the evening before
])
def test_a_same_day_window(utc_hour: int, utc_minute: int, quiet: bool) -> None:
    lunch = expert(time_zone="America/New_York", quiet_hours="12:00-14:00")
    assert lunch.in_quiet_hours(utc_ms(2026, 1, 15, utc_hour, utc_minute)) is quiet


def test_no_quiet_hours_is_never_quiet() -> None:
    always = expert(time_zone="Europe/Berlin")
    assert not any(always.in_quiet_hours(utc_ms(2026, 1, 15, hour)) for hour in range(24))


def test_local_day_is_the_experts_calendar_day() -> None:
    moment = utc_ms(2026, 1, 15, 20)
    assert expert(time_zone="Asia/Tokyo").local_day(moment) == "2026-01-16"
    assert expert().local_day(moment) == "2026-01-15"
    assert expert(time_zone="America/Los_Angeles").local_day(utc_ms(2026, 1, 16, 5)) == "2026-01-15"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd", "berlin"])
def test_an_unknown_time_zone_is_refused(zone: str) -> None:
    with pytest.raises(ValidationError, match="time_zone"):
        expert(time_zone=zone)


@pytest.mark.parametrize("window", ["22:00 to 07:00", "22-07", "25:00-07:00", "22:60-07:00",
                                    "22:00-07:00-09:00", ""])
def test_malformed_quiet_hours_are_refused(window: str) -> None:
    with pytest.raises(ValidationError, match="quiet_hours"):
        expert(quiet_hours=window)


def test_valid_identities_are_kept() -> None:
    identities = ["slack:U123ABC", "telegram:456789", "web:dr.lee@clinic-1"]
    assert expert(identities=identities).identities == identities


@pytest.mark.parametrize("identity", ["slack:", "email:lee@example.org", "slack:U 123",
                                      "U123", "telegram:1\n", "web:" + "a" * 129])
def test_malformed_identities_are_refused(identity: str) -> None:
    with pytest.raises(ValidationError, match="identities"):
        expert(identities=["slack:U1", identity])


async def test_linking_a_malformed_identity_is_refused(coordinator: Coordinator) -> None:
    await coordinator.add_expert(expert())
    with pytest.raises(Conflict):
        await coordinator.link("dr-lee", "telegram:1\n")
    assert (await coordinator.expert("dr-lee")).identities == []
    assert (await coordinator.link("dr-lee", "telegram:1")).identities == ["telegram:1"]
