"""A live ask as an expert's card and as the agent's AskView, from what the store holds."""

from __future__ import annotations

import json

from core.domain.asks import ASKS_LOG, CARD_KINDS, AskAnswer, AskRequest, AskView
from core.domain.cards import AskInfo, Card, CardDraft, Estimate
from core.domain.items import draft_label
from core.domain.kinds import DEFAULT_SECONDS
from core.ports import HeldAsk, StoredAsk
from core.provenance.events import iso_ms
from core.service.ask_tokens import parsed_request

INSTRUCTIONS = {
    "approve": "Approve the call, reject it (say why), or edit its arguments.",
    "choose": "Pick the better answer, A or B, or call it a tie.",
    "verify": "Accept the draft, or override it with your text and the reason.",
    "write": "Write the answer.",
}


def request_of(ask: StoredAsk) -> AskRequest:
    return parsed_request(ask.spec)


def card_for(held: HeldAsk, request: AskRequest) -> Card:
    """The ask as every channel shows a task: its drafts in the ask's own order (A, B), only
    its kind's answer allowed (an ask wants a call: no skip or flag), who asks, by when, and
    what it pays."""
    ask, pay = held.ask, request.pay
    kind = CARD_KINDS[request.kind]
    prompt = request.question + (f"\n\n{request.context}" if request.context else "")
    proposal = request.proposal
    return Card(
        lease=held.token, campaign=ASKS_LOG, title=f"Question from {request.asker}",
        instructions=INSTRUCTIONS[request.kind], kind=kind, item=ask.id, prompt=prompt,
        drafts=[CardDraft(label=draft_label(i), text=d.text)
                for i, d in enumerate(request.drafts)],
        allowed=[kind.value], expires_at=ask.expires_at,
        estimate=Estimate(seconds=DEFAULT_SECONDS[kind], pay=pay.per_ask if pay else None,
                          currency=pay.currency if pay else None, pilot=False),
        resumed=held.delivered_at is not None,
        ask=AskInfo(ask=ask.id, asker=request.asker, deadline_at=ask.expires_at,
                    pay=pay.per_ask if pay else None, currency=pay.currency if pay else None,
                    urgent=request.urgent, function=proposal.function if proposal else None,
                    args=dict(proposal.args) if proposal else None),
    )


def view_of(ask: StoredAsk, hashes: dict[int, str]) -> AskView:
    """`events`: the hashes of the ask's events sealed so far, in log order."""
    request = request_of(ask)
    answers = [_answer(text) for text in ask.answers]
    return AskView(
        id=ask.id, call_id=request.call_id, kind=request.kind, status=ask.status,
        question=request.question,
        decision=json.loads(ask.decision) if ask.decision else None,
        decisions=answers, comment=ask.comment, by=ask.by,
        created_at=iso_ms(ask.created_at), expires_at=iso_ms(ask.expires_at),
        decided_at=iso_ms(ask.decided_at) if ask.decided_at else None,
        waiting=ask.waiting if ask.status == "pending" else None, stage=ask.stage,
        events=[hashes[seq] for seq in ask.seqs if seq in hashes])


def posted_view(ask_id: str, request: AskRequest, created_at: int, waiting: str) -> AskView:
    """A new ask's view as it was written, so a POST need not read it back: pending, stage 0,
    no answers, and no events yet (the worker seals them; a GET shows their hashes)."""
    return AskView(id=ask_id, call_id=request.call_id, kind=request.kind, status="pending",
                   question=request.question, created_at=iso_ms(created_at),
                   expires_at=iso_ms(created_at + request.deadline_s * 1000),
                   waiting=waiting or None)


def _answer(text: str) -> AskAnswer:
    fields = json.loads(text)
    return AskAnswer(expert=fields["expert"], decision=fields["decision"],
                     comment=fields.get("comment") or None, at=int(fields["at"]),
                     seq=int(fields["seq"]), after_withdrawal=bool(fields["after_withdrawal"]))
