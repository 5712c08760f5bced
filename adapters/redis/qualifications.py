"""The Qualifications role on Redis: a campaign's qualification items in their own queue (`qual`,
with `qitems` beside it), each expert's latest lease per item (`qual:<expert>`) and each
expert's result (`qualified`), all in the campaign's slot."""

from __future__ import annotations

import json

from adapters.redis import keys as k
from adapters.redis.leases import _claim_request
from adapters.redis.lua import OnRedis
from core.domain.answers import Lease
from core.domain.qualification import QualificationAnswer, QualificationResult
from core.ports import Claim, Claimed, QualificationClaim, StagedItem


class RedisQualifications(OnRedis):
    async def add_qualification_items(self, campaign_id: str, items: list[StagedItem],
                                      event_prefix: str) -> int:
        args: list[str | int] = [len(items)]
        for item in items:
            body = (f'{event_prefix},"item":{json.dumps(item.id)},'
                    f'"payload":{{"item":{item.json},"qualification":true}}}}')
            args += [item.id, item.n_drafts, body]
        return int(await self._run("add_qualification", campaign_id, args))

    async def claim_qualification(self, claim: Claim) -> QualificationClaim:
        reply, *item_body = await self._run("claim_qualification", claim.campaign,
                                            [_claim_request(claim)])
        result = json.loads(reply)
        status = str(result["status"])
        if status == "complete":
            return QualificationClaim(status, answers=_answers(str(result["answers"])))
        if status != "lease":
            return QualificationClaim(str(result.get("state") or status))
        median = result.get("estimate_s")
        claimed = Claimed(Lease.model_validate(result["lease"]), item_body[0],
                          float(median) if median is not None else None,
                          int(result.get("estimate_n") or 0))
        return QualificationClaim(status, claimed, int(result["position"]), int(result["total"]))

    async def decide_qualification(self, campaign_id: str, result: QualificationResult,
                                   event_body: str) -> bool:
        return bool(await self._run("decide_qualification", campaign_id,
                                    [result.expert, result.model_dump_json(), event_body]))

    async def requalify(self, campaign_id: str, expert_id: str, event_body: str) -> bool:
        return bool(await self._run("requalify", campaign_id, [expert_id, event_body]))

    async def qualification_results(self, campaign_id: str) -> list[QualificationResult]:
        found = await self.client.hgetall(k.campaign_key(campaign_id, "qualified"))
        return [QualificationResult.model_validate_json(found[expert]) for expert in sorted(found)]


def _answers(text: str) -> tuple[QualificationAnswer, ...]:
    """claim_qualification.lua's lines of item, item seq and answer seq (tab-separated)."""
    found = []
    for entry in filter(None, text.split("\n")):
        item, item_seq, answer_seq = entry.split("\t")
        found.append(QualificationAnswer(item, int(item_seq), int(answer_seq)))
    return tuple(found)
