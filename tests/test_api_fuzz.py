"""The coordinator API fuzzed from its own OpenAPI document: schemathesis generates valid and
invalid requests for every documented operation and sends them, with the API token, to a real
`expertloop serve` process. No request may get a 5xx, and every refusal must come in the
documented error shape `{"error": "...", "detail": [{"loc": [...], "msg": "..."}]}`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.http import openapi
from adapters.http.routes import ROUTES
from adapters.redis.embedded import EmbeddedRedis
from tests.test_cli import free_port

TOKEN = "fuzz-token-3e9a"
LOG: list[Path] = []  # the web process's stderr, quoted when it fails
EXAMPLES = 5  # random cases per operation; the coverage phase adds its boundary cases: ~600


@pytest.fixture(scope="module")
def web_process(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[str]:
    """`expertloop serve` on a free port with an API token, on the tests' Redis."""
    port, data_dir = free_port(), tmp_path_factory.mktemp("fuzz")
    LOG.append(data_dir / "serve.log")
    env = {**os.environ, "REDIS_URL": redis_server.url(), "PORT": str(port),
           "EXPERTLOOP_API_TOKEN": TOKEN, "EXPERTLOOP_MAX_BODY": "65536",
           "EXPERTLOOP_DATA_DIR": str(data_dir)}
    for name in ("SLACK_BOT_TOKEN", "TELEGRAM_BOT_TOKEN"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-m", "bots.cli", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=LOG[0].open("w"), text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        _seed(base)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # say so, but never leave the process behind
            process.kill()
            process.wait()
            raise


def _wait_healthy(base: str, process: subprocess.Popen[str]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"serve exited: {LOG[0].read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("serve did not answer /healthz")


def _seed(base: str) -> None:
    """A campaign and an expert, so the fuzz also reaches what exists (ids the coverage phase
    tries first). Earlier tests leave data behind (each flushes Redis as it starts): a 409
    here means it is there already."""
    drafts = [{"text": "Yes.", "model": "m1"}, {"text": "No.", "model": "m2"}]
    for path, body in (("/api/campaigns", {"id": "0", "title": "Better?", "kind": "pairwise",
                                           "items": [{"id": "q1", "prompt": "?",
                                                      "drafts": drafts}]}),
                       ("/api/experts", {"id": "0", "name": "Ann"})):
        status, _, _ = _send(base, "POST", path, json.dumps(body).encode())
        assert status in (201, 409), (path, status)


def served_document() -> dict[str, Any]:
    """The document `GET /api/openapi.json` serves, built as the route builds it (schemathesis
    parametrizes at collection, before any server runs; the test checks the two are equal)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = route.doc
    return json.loads(json.dumps(openapi.document(paths)))


schemathesis.serializer.alias("application/x-ndjson", "text/plain")  # items: lines of text
schema = schemathesis.openapi.from_dict(served_document())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                max_examples=EXAMPLES, deterministic=True)
schema.config.phases.coverage.unexpected_methods = {"PUT"}  # one method no route has is enough


def documented_error_shape(response: Any) -> None:
    """Every refusal: JSON with a string `error` and `detail` items that say where and what."""
    if response.status_code < 400:
        return
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) >= {"error", "detail"}, body
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["detail"], list), body
    for item in body["detail"]:
        assert isinstance(item, dict) and isinstance(item.get("loc"), list), body
        assert isinstance(item.get("msg"), str), body


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          database=None)
def test_no_request_gets_a_5xx_and_every_error_has_the_documented_shape(
        case: Any, web_process: str) -> None:
    response = case.call(base_url=web_process, headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=5)
    assert response.status_code < 500, (case.method, case.formatted_path, case.body,
                                        LOG[0].read_text()[-3000:])
    documented_error_shape(response)
    case.validate_response(response, checks=[status_code_conformance, content_type_conformance,
                                             response_schema_conformance])


def test_the_fuzzed_document_is_the_one_served(web_process: str) -> None:
    with urllib.request.urlopen(f"{web_process}/api/openapi.json", timeout=5) as response:
        assert json.loads(response.read()) == served_document()


def _send(base: str, method: str, path: str, body: bytes | None = None) -> tuple[int, Any, Any]:
    request = urllib.request.Request(f"{base}{path}", data=body, method=method, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers, json.loads(refused.read())


def test_what_the_fuzz_found_is_refused_in_the_documented_shape(web_process: str) -> None:
    """Found by the fuzz: a body that is not UTF-8 was a 500, and aiohttp's own 404 and 405
    were plain text."""
    status, _, body = _send(web_process, "POST", "/api/experts", b"\xff\xfe{")
    assert status == 400 and body["detail"][0]["loc"] == ["body"]
    status, headers, body = _send(web_process, "PUT", "/api/campaigns")
    assert status == 405 and headers["Allow"] and "PUT /api/campaigns" in body["error"]
    status, _, body = _send(web_process, "GET", "/api/no-such-thing")
    assert status == 404 and body["detail"] == []
