"""Checkpoints as an operator and an auditor meet them: `keys init`, a real `expertloop worker`
signing with the key, then `provenance prove`, `verify --checkpoints`, and `check-proof` run
where no Redis is reachable at all."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

from adapters.redis.store import RedisStore
from core.domain.campaigns import CampaignSpec
from core.domain.timing import SystemClock
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.staging import spool_items
from tests.faults.processes import Expertloop, RedisServer, environment, wait_until
from tests.test_cli import run

NOWHERE = "redis://127.0.0.1:9/0"  # the discard port: nothing answers Redis there




async def test_keys_init_writes_a_private_key_for_its_owner_only_and_never_overwrites(
        tmp_path: Path) -> None:
    done = await asyncio.to_thread(run, tmp_path / "var", "keys", "init", redis_url=NOWHERE)

    private, public = tmp_path / "var" / "keys" / "signing.pem", tmp_path / "var" / "keys" / \
        "signing.pub.pem"
    assert done.returncode == 0, done.stderr
    assert str(private) in done.stdout and str(public) in done.stdout
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = await asyncio.to_thread(run, tmp_path / "var", "keys", "init", redis_url=NOWHERE)
    assert again.returncode != 0 and "exists; not overwriting" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


async def test_a_worker_signs_and_an_auditor_checks_a_proof_offline(
        own_redis: RedisServer, own_store: RedisStore, tmp_path: Path) -> None:
    var, redis_url = tmp_path / "var", own_redis.url
    assert (await asyncio.to_thread(run, var, "keys", "init", redis_url=NOWHERE)).returncode == 0
    key, public = var / "keys" / "signing.pem", var / "keys" / "signing.pub.pem"
    spec = CampaignSpec(id="c1", title="Better?", kind="pairwise")
    spool = spool_items(spec, [{"id": f"q{i}", "prompt": f"Q{i}?", "drafts": [
        {"text": "yes", "model": "m1"}, {"text": "no", "model": "m2"}]} for i in range(3)])
    await Coordinator(own_store.roles(), SystemClock()).post_campaign(spec, spool)
    spool.close()
    worker = Expertloop("worker", environment(
        redis_url, EXPERTLOOP_DATA_DIR=str(var), EXPERTLOOP_SIGNING_KEY=str(key),
        EXPERTLOOP_CHECKPOINT_MINUTES="0.01", EXPERTLOOP_WORKER_INTERVAL="0.2"), tmp_path)
    await worker.start()
    checkpoints = var / "checkpoints" / "c1.checkpoints"
    try:
        await wait_until(checkpoints.exists, f"the worker signs; see {worker.log}",
                         within=60, process=worker.process)
    finally:
        await worker.stop()
    [event] = [e for e in await Ledger(own_store).events("c1", 0, 100) if e.get("item") == "q1"]

    proved = await asyncio.to_thread(run, var, "provenance", "prove", "c1", "--event",
                                     str(event["hash"]), redis_url=redis_url)
    assert proved.returncode == 0, proved.stderr
    proof = tmp_path / "proof.json"
    proof.write_text(proved.stdout)
    checked = await asyncio.to_thread(run, var, "provenance", "check-proof", str(proof),
                                      "--public-key", str(public), redis_url=NOWHERE)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"ok: event {event['seq']} ")
    verified = await asyncio.to_thread(run, var, "provenance", "verify", "c1", "--checkpoints",
                                       str(checkpoints), "--public-key", str(public),
                                       redis_url=redis_url)
    assert verified.returncode == 0 and "matches all" in verified.stdout, verified.stderr

    forged = json.loads(proved.stdout) | {"seq": 1, "leaf_index": 0}
    proof.write_text(json.dumps(forged))
    refused = await asyncio.to_thread(run, var, "provenance", "check-proof", str(proof),
                                      "--public-key", str(public), redis_url=NOWHERE)
    assert refused.returncode != 0 and refused.stdout == ""
    assert refused.stderr.strip() == f"error: event 1 is not in the tree of size " \
                                     f"{forged['tree_size']} that the checkpoint signed"
