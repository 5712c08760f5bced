"""A pytest plugin (`-p tests.tiers` in pyproject.toml): the suite's tiers as markers, so the
edit-test loop runs the fast ones (`make check`: unit and contract, on the embedded Redis) and
`make test` runs everything. A file's tier is named here once, rather than by a marker in each
file, so a new file lands in `unit` unless it says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = {
    "unit": "the core and the coordinator surface in one process, on the embedded Redis",
    "contract": "every port's contract, and the Lua rules against their Python references",
    "channels": "the real slack-bolt and python-telegram-bot against the platform emulators",
    "processes": "real expertloop processes and commands started as a user would",
    "faults": "processes and Redis killed, restarted or cut off mid-work",
    "browser": "the dashboard and the web chat in Chromium",
    "cluster": "a local 3-master Redis Cluster",
}
BY_FILE = {
    "test_store_contract.py": "contract", "test_lua_rules.py": "contract",
    "test_channel_health.py": "channels", "test_delivery_loop.py": "channels",
    "test_webchat.py": "channels", "test_security.py": "channels",
    "test_cli.py": "processes", "test_processes.py": "processes",
    "test_procfile.py": "processes", "test_scale_out.py": "processes",
    "test_dashboard_browser.py": "browser", "test_webchat_browser.py": "browser",
    "test_cluster.py": "cluster", "test_openai_emulator.py": "channels",
    "test_conversations.py": "channels", "test_rationale_channels.py": "channels",
    "test_webchat_images.py": "browser",
    "test_drafting_worker.py": "processes", "test_cli_drafting.py": "processes",
    "test_cli_hard_cases.py": "processes", "test_checkpoints_cli.py": "processes",
    "test_asks_cli.py": "processes",
    "test_asks_telegram.py": "channels", "test_asks_slack.py": "channels",
    "test_asks_webchat.py": "browser", "test_asks_processes.py": "processes",
    "test_client.py": "processes",
    "test_archive_crash.py": "processes",
    "test_history_contract.py": "contract",
}
PREFIXES = {"test_slack": "channels", "test_telegram": "channels",
            "test_store_contract": "contract"}  # each role's section of the store contract
CLUSTER_FIXTURES = {"redis_cluster", "cluster_client"}


def tier_of(path: Path) -> str:
    if "faults" in path.parts:
        return "faults"
    if path.name in BY_FILE:
        return BY_FILE[path.name]
    return next((tier for prefix, tier in PREFIXES.items() if path.name.startswith(prefix)),
                "unit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One tier per test, plus `cluster` where a test runs on the Cluster too."""
    for item in items:
        item.add_marker(getattr(pytest.mark, tier_of(item.path)))
        if _on_cluster(item):
            item.add_marker(pytest.mark.cluster)


def _on_cluster(item: pytest.Item) -> bool:
    """A test asks for the Cluster by fixture, or by a parameter (a contract's `redis-cluster`)."""
    callspec = getattr(item, "callspec", None)
    on_param = callspec is not None and "cluster" in callspec.id
    return on_param or bool(CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_configure(config: pytest.Config) -> None:
    for name, what in TIERS.items():
        config.addinivalue_line("markers", f"{name}: {what}")
