"""The web chat's guarantees over real HTTP: links, CSRF, ownership, and the form parser."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.redis.store import RedisStore
from adapters.web.answers import InvalidForm, answer_from_form
from adapters.web.routes import add_chat_routes
from core.domain.experts import Expert
from core.domain.kinds import Choose, Flag, Label, Rank, Verify
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.test_service import post


@pytest.fixture
async def http(service: Service, store: RedisStore) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = web.Application()
    add_chat_routes(app, service, store)
    async with TestClient(TestServer(app)) as client:
        yield client


async def link(coordinator: Coordinator, expert_id: str) -> str:
    await coordinator.add_expert(Expert(id=expert_id, name=expert_id.title()))
    return await coordinator.invite_web(expert_id)


async def card_form(http: TestClient, token: str) -> dict[str, str]:  # type: ignore[type-arg]
    page = await (await http.get(f"/chat/{token}")).text()
    lease = re.search(r'name="lease" value="([^"]+)"', page)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert lease and csrf, page
    return {"lease": lease[1], "csrf": csrf[1], "type": "pairwise", "choice": "A"}


async def test_a_revoked_or_made_up_link_shows_nothing(
        http: TestClient, coordinator: Coordinator) -> None:  # type: ignore[type-arg]
    await post(coordinator)
    token = await link(coordinator, "ann")
    assert (await http.get(f"/chat/{token}")).status == 200

    await coordinator.revoke_web("ann")
    gone = await http.get(f"/chat/{token}")
    made_up = await http.get("/chat/not-a-real-token")

    assert gone.status == made_up.status == 404
    assert "Ask your coordinator for a new one" in await gone.text()


async def test_a_new_invite_replaces_the_old_link(
        http: TestClient, coordinator: Coordinator) -> None:  # type: ignore[type-arg]
    old = await link(coordinator, "ann")
    new = await coordinator.invite_web("ann")
    assert (await http.get(f"/chat/{old}")).status == 404
    assert (await http.get(f"/chat/{new}")).status == 200


async def test_an_answer_without_the_csrf_token_is_refused(
        http: TestClient, coordinator: Coordinator, store: RedisStore) -> None:  # type: ignore[type-arg]
    await post(coordinator)
    token = await link(coordinator, "ann")
    form = await card_form(http, token)

    forged = await http.post(f"/chat/{token}/answer", data={**form, "csrf": "guess"})

    assert forged.status == 403
    assert (await coordinator.status("c1")).answers == 0


async def test_one_experts_link_cannot_answer_anothers_task(
        http: TestClient, coordinator: Coordinator) -> None:  # type: ignore[type-arg]
    await post(coordinator)
    anns = await card_form(http, await link(coordinator, "ann"))
    eve = await link(coordinator, "eve")
    eves = await card_form(http, eve)

    stolen = await http.post(f"/chat/{eve}/answer", data={**anns, "csrf": eves["csrf"]},
                             headers={"X-Requested-With": "fetch"})

    assert "Not saved" in (await stolen.json())["log"][0]
    assert (await coordinator.status("c1")).answers == 0


async def test_a_form_without_script_redirects_back_to_the_chat(
        http: TestClient, coordinator: Coordinator) -> None:  # type: ignore[type-arg]
    await post(coordinator)
    token = await link(coordinator, "ann")
    form = await card_form(http, token)

    sent = await http.post(f"/chat/{token}/answer", data=form, allow_redirects=False)

    assert sent.status == 303 and sent.headers["Location"] == f"/chat/{token}"
    assert (await coordinator.status("c1")).answers == 1


@pytest.mark.parametrize(("fields", "labels", "decision"), [
    ({"type": "pairwise", "choice": "tie"}, [], Choose(choice="tie")),
    ({"type": "rank", "order": "B,A,C"}, [], Rank(order=["B", "A", "C"])),
    ({"type": "label"}, ["x", "y"], Label(labels=["x", "y"])),
    ({"type": "verify", "verdict": "accept", "text": "draft", "reason": ""}, [],
     Verify(verdict="accept")),
    ({"type": "flag", "reason": "harmful", "note": "dose"}, [], Flag(reason="harmful",
                                                                    note="dose")),
])
def test_forms_become_typed_decisions(fields: dict[str, str], labels: list[str],
                                      decision: object) -> None:
    answer = answer_from_form("ann", {"lease": "1.abc", **fields}, labels)
    assert answer.decision == decision and answer.channel == "web"


@pytest.mark.parametrize("fields", [{}, {"type": "drop-table"}, {"type": "rate", "score": "x"},
                                    {"type": "flag", "reason": "boring"}])
def test_a_form_that_makes_no_decision_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(InvalidForm):
        answer_from_form("ann", {"lease": "1.abc", **fields}, [])
