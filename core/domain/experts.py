"""Experts: who they are, what they know, and when they do not want to be disturbed."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.domain.campaigns import ID_PATTERN
from core.domain.hard_cases import Level

IDENTITY_PATTERN = r"^(slack|telegram|web):[A-Za-z0-9_.@-]{1,128}$"


class Expert(BaseModel):
    """A profile; `identities` are the platform accounts that act as this expert."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    skills: list[str] = Field(default_factory=list)
    credentials: str = ""
    time_zone: str = "UTC"
    quiet_hours: str | None = Field(default=None, pattern=r"^\d\d:\d\d-\d\d:\d\d$")
    daily_cap: int = Field(default=200, ge=0)
    hourly_rate: float | None = Field(default=None, ge=0)
    identities: list[str] = Field(default_factory=list)
    paused: bool = False
    level: Level = "standard"  # extra judgments on hard cases go to `senior` first
    roles: list[Literal["adjudicator"]] = Field(default_factory=list)
    urgent_ok: bool = False  # an urgent live ask may reach them even in quiet hours

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _valid_clock(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_window(value)
        return value

    @field_validator("identities")
    @classmethod
    def _valid_identities(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.fullmatch(IDENTITY_PATTERN, v)]
        if bad:
            raise ValueError(f"identities look like slack:U123, telegram:456 or web:abc, not {bad}")
        return value

    def has_skills(self, needed: list[str]) -> bool:
        return set(needed) <= set(self.skills)

    def in_quiet_hours(self, now_ms: int) -> bool:
        if not self.quiet_hours:
            return False
        start, end = _parse_window(self.quiet_hours)
        local = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(self.time_zone)).time()
        if start <= end:
            return start <= local < end
        return local >= start or local < end  # the window wraps past midnight

    def local_day(self, now_ms: int) -> str:
        """The expert's own calendar day: a daily cap resets at their midnight, not ours."""
        return datetime.fromtimestamp(now_ms / 1000, ZoneInfo(self.time_zone)).date().isoformat()


def web_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_web_token() -> str:
    """192 random bits: unguessable, and short enough for a link."""
    return secrets.token_urlsafe(24)


def _parse_window(window: str) -> tuple[time, time]:
    start, end = window.split("-")
    try:
        return time.fromisoformat(start), time.fromisoformat(end)
    except ValueError as exc:
        raise ValueError(f"quiet hours look like 22:00-07:00, not {window!r}") from exc


class ExpertStats(BaseModel):
    """What an expert sees of their own work: today, all told, time and pay before top-ups."""

    today: int = 0
    answers: int = 0
    seconds: float = 0.0
    earned: dict[str, float] = Field(default_factory=dict)
    daily_cap: int = 0
    paused: bool = False
    agreement: float | None = None  # share of compared answers matching the others' majority
    compared: int = 0  # answers that had a peer majority to compare with

    def lines(self) -> list[tuple[str, str]]:
        """(label, value) rows every channel shows, each in its own markup."""
        earned = ", ".join(f"{amount:.2f} {currency}"
                           for currency, amount in sorted(self.earned.items())) or "—"
        agreement = (f"{self.agreement:.0%} of {self.compared} compared"
                     if self.agreement is not None else "not known yet")
        return [("Today", f"{self.today} of {self.daily_cap}"),
                ("All told", f"{self.answers} answers"),
                ("Time", f"{self.seconds / 60:.0f} min"),
                ("Earned", f"{earned} (before any top-up)"),
                ("Agreement with peers", agreement)]


def stats_from_tallies(expert: Expert, tallies: dict[str, float], now_ms: int) -> ExpertStats:
    earned = {name.split(":", 1)[1]: round(value, 2) for name, value in tallies.items()
              if name.startswith("earned:")}
    agreed, compared = _summed(tallies, "agreed:"), int(_summed(tallies, "compared:"))
    return ExpertStats(today=int(tallies.get(f"day:{expert.local_day(now_ms)}", 0)),
                       answers=int(tallies.get("answers", 0)),
                       seconds=round(tallies.get("seconds", 0.0), 1), earned=earned,
                       daily_cap=expert.daily_cap, paused=expert.paused,
                       agreement=agreed / compared if compared else None, compared=compared)


def _summed(tallies: dict[str, float], prefix: str) -> float:
    """Agreement is kept per campaign (`agreed:<campaign>`, `compared:<campaign>`, written by
    the worker from the campaign's quality report) and shown summed over campaigns."""
    return sum(value for name, value in tallies.items() if name.startswith(prefix))
