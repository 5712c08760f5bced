"""The honest measure of auto-accept: among the items whose draft was confident enough to be
accepted without an expert but that the audit sample sent to experts anyway
(`hard_cases.audited`), the share an expert overrode. Auto-accept lets that share through
unseen on the items it does accept."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from core.domain.campaigns import Campaign
from core.domain.hard_cases import AutoAccept, audited
from core.provenance.ledger import BATCH, Ledger
from core.reports.records import ITEM_EVENTS

REJECTIONS = ("override", "none_acceptable")  # an expert did not let the draft stand


class AutoAcceptAudit(BaseModel):
    confidence_at_least: float  # the threshold: mean token logprob of the draft
    audit_rate: float
    auto_accepted: int = 0  # items the model decided alone
    audited: int = 0  # confident items the sample sent to experts
    judged: int = 0  # ...that an expert has answered
    overridden: int = 0  # ...that an expert overrode (or found none acceptable)
    override_rate: float | None = None  # overridden / judged


async def auto_accept_audit(ledger: Ledger, campaign: Campaign) -> AutoAcceptAudit | None:
    """One read of the log; None for a campaign without auto-accept."""
    rule = campaign.spec.route.auto_accept
    if rule is None:
        return None
    report = AutoAcceptAudit(confidence_at_least=rule.confidence_at_least,
                             audit_rate=rule.audit_rate)
    sample: set[str] = set()
    verdicts: dict[str, bool] = {}  # audited item -> whether an expert overrode it
    after = 0
    while events := await ledger.events(campaign.id, after, BATCH):
        after = int(str(events[-1]["seq"]))
        for event in events:
            _read(event, campaign.id, rule, sample, verdicts, report)
    report.audited, report.judged = len(sample), len(verdicts)
    report.overridden = sum(verdicts.values())
    if verdicts:
        report.override_rate = round(report.overridden / len(verdicts), 4)
    return report


def _read(event: dict[str, Any], campaign_id: str, rule: AutoAccept, sample: set[str],
          verdicts: dict[str, bool], report: AutoAcceptAudit) -> None:
    kind, item = str(event["type"]), str(event.get("item") or "")
    payload: Any = event.get("payload") or {}
    if kind in ITEM_EVENTS and confident(payload.get("item") or {}, rule) \
            and audited(campaign_id, item, rule.audit_rate):
        sample.add(item)
    elif kind == "auto_accepted":
        report.auto_accepted += 1
    elif kind == "answered" and item in sample:
        decision = payload.get("decision") or {}
        rejected = decision.get("verdict") == "override" or decision.get("type") in REJECTIONS
        verdicts[item] = verdicts.get(item, False) or rejected


def confident(item: dict[str, Any], rule: AutoAccept) -> bool:
    """An item's confidence is its least confident draft's; a draft without one never is."""
    drafts = item.get("drafts") or []
    found = [d.get("confidence") for d in drafts]
    return bool(found) and None not in found and min(found) >= rule.confidence_at_least
