"""The coordinator's hard-case commands over the API: expert level and roles, updating a
profile, sending an item to adjudication, and the final labels with and without the model's
decisions."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from core.domain.timing import SetClock
from core.service.service import Service
from tests import test_api
from tests.test_api import SPEC, call
from tests.test_labels_export import answer_all, pairwise

api = test_api.api  # the API over real HTTP, as `expertloop serve` wires it

Http = TestClient  # type: ignore[type-arg]


async def test_expert_level_roles_and_update(api: Http) -> None:
    status, made = await call(api, "POST", "/api/experts", json={
        "id": "dr-lee", "name": "Dr. Lee", "level": "senior", "roles": ["adjudicator"]})
    assert status == 201 and (made["level"], made["roles"]) == ("senior", ["adjudicator"])

    status, changed = await call(api, "PATCH", "/api/experts/dr-lee",
                                 json={"level": "junior", "roles": []})

    assert status == 200 and (changed["level"], changed["roles"]) == ("junior", [])
    _, read = await call(api, "GET", "/api/experts/dr-lee")
    assert (read["level"], read["roles"], read["name"]) == ("junior", [], "Dr. Lee")
    status, bad = await call(api, "PATCH", "/api/experts/dr-lee", json={"level": "guru"})
    assert status == 422 and bad["detail"][0]["loc"] == ["level"]
    status, fixed = await call(api, "PATCH", "/api/experts/dr-lee", json={"id": "other"})
    assert status == 400 and "id cannot be changed" in fixed["error"]
    assert (await call(api, "PATCH", "/api/experts/nobody", json={"name": "X"}))[0] == 404
    _, doc = await call(api, "GET", "/api/openapi.json")
    patch = doc["paths"]["/api/experts/{id}"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ExpertUpdate"}
    assert "id" not in doc["components"]["schemas"]["ExpertUpdate"]["properties"]


async def test_adjudicate_an_item_and_read_its_label(api: Http, service: Service,
                                                      clock: SetClock) -> None:
    spec: dict[str, Any] = {**SPEC, "overlap": 2, "adjudicate": True, "items": [
        {"id": "q1", "prompt": "Q1?", "drafts": [{"text": "Good q1.", "model": "m1"},
                                                 {"text": "Poor q1.", "model": "m2"}]}]}
    assert (await call(api, "POST", "/api/campaigns", json=spec))[0] == 201
    for name in ("ann", "bob"):
        await call(api, "POST", "/api/experts", json={"id": name, "name": name})
        await answer_all(service, clock, name, lambda card: pairwise(card, True))

    status, sent = await call(api, "POST", "/api/campaigns/c1/adjudicate", json={"item": "q1"})
    again = await call(api, "POST", "/api/campaigns/c1/adjudicate", json={"item": "q1"})

    assert status == 202 and sent["queued"] is True
    assert again[0] == 200 and again[1]["notes"] == ["it waits for an adjudicator already"]
    _, state = await call(api, "GET", "/api/campaigns/c1")
    assert state["awaiting_adjudication"] == 1
    _, labels = await call(api, "GET", "/api/campaigns/c1/export?format=labels")
    assert labels["state"] == "awaiting_adjudication"  # one line: read as one object
    unknown_item = await call(api, "POST", "/api/campaigns/c1/adjudicate", json={"item": "zz"})
    assert unknown_item[0] == 404 and "no item 'zz'" in unknown_item[1]["error"]
    unknown = await call(api, "POST", "/api/campaigns/nope/adjudicate", json={"item": "q1"})
    assert unknown[0] == 404
    assert (await call(api, "POST", "/api/campaigns/c1/adjudicate", json={}))[0] == 400
    _, doc = await call(api, "GET", "/api/openapi.json")
    params = doc["paths"]["/api/campaigns/{id}/export"]["get"]["parameters"]
    assert "labels" in params[1]["schema"]["enum"] and params[2]["name"] == "include_model"
    assert "post" in doc["paths"]["/api/campaigns/{id}/adjudicate"]


async def test_include_model_must_say_true_or_false(api: Http) -> None:
    assert (await call(api, "POST", "/api/campaigns", json=SPEC))[0] == 201
    status, refused = await call(api, "GET", "/api/campaigns/c1/export?include_model=maybe")
    assert status == 400 and "include_model" in refused["error"]
    status, text = await call(api, "GET", "/api/campaigns/c1/export?format=labels"
                                          "&include_model=true")
    assert status == 200 and text.count('"state":"unanswered"') == 3
