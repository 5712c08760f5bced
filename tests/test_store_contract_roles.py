"""Keeps the store's contract whole: every method of every role in core/ports.py is called by
name in a contract test, so a method added to a role cannot go untested unnoticed; and no role
grows past a dozen methods (a new concern is a new role)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import get_type_hints

import core.ports as ports

ROLES = (ports.Campaigns, ports.Experts, ports.Access, ports.Leases, ports.Log, ports.Inbox,
         ports.Outbox, ports.Turns, ports.Health, ports.Drafts, ports.Qualifications,
         ports.Archived, ports.AskStore, ports.AskBatches)
SUITES = sorted(Path(__file__).parent.glob("test_store_contract*.py"))


def methods(role: type) -> list[str]:
    return [name for name, _ in inspect.getmembers(role, inspect.iscoroutinefunction)]


def test_every_role_is_wired_in_stores() -> None:
    fields = get_type_hints(ports.Stores)

    assert sorted(fields.values(), key=str) == sorted(ROLES, key=str)


def test_every_method_of_every_role_has_a_contract_test() -> None:
    called = set(re.findall(r"\.(\w+)\(", "".join(path.read_text() for path in SUITES)))

    untested = [f"{role.__name__}.{name}" for role in ROLES for name in methods(role)
                if name not in called]

    assert untested == []


def test_no_role_passes_a_dozen_methods() -> None:
    sizes = {role.__name__: len(methods(role)) for role in ROLES}

    assert all(0 < n <= 12 for n in sizes.values()), sizes
