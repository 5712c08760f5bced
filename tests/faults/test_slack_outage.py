"""Slack down for a while (every Web API call answered 429) while experts answer: the answers
are recorded, what Slack would not take (the answered card's update, the next card) waits in
the outbox, and once Slack is back the worker process sends it: every expert ends with their
card marked and exactly one live card, nothing posted twice, each answer in the log once."""

from __future__ import annotations

import json
from collections.abc import Callable

from core.domain.experts import Expert
from core.provenance.ledger import Ledger
from core.service.coordinator import Coordinator
from core.service.service import Service
from tests.emulators.slack import BOT_TOKEN, SIGNING_SECRET, SlackEmulator, SlackUser
from tests.faults.processes import Expertloop, RedisServer, environment, wait_until, web_environment
from tests.faults.scene import BUTTONS, answered_leases
from tests.telegram_session import post_kind

EXPERTS = 3
SLACK_METHODS = ("chat.postMessage", "chat.update", "chat.postEphemeral", "conversations.open")


async def test_cards_and_confirmations_wait_out_a_slack_outage_and_arrive_once(
        redis_server: RedisServer, spawn: Callable[..., Expertloop], coordinator: Coordinator,
        service: Service, ledger: Ledger) -> None:
    slack = SlackEmulator()
    await slack.start()
    try:
        env = environment(redis_server.url, SLACK_BOT_TOKEN=BOT_TOKEN,
                          SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.url,
                          EXPERTLOOP_WORKER_INTERVAL="0.2")
        await post_kind(coordinator, BUTTONS, n_items=2 * EXPERTS, overlap=1)
        web = spawn("serve", {**env, **web_environment(redis_server.url)})
        worker = spawn("worker", env)
        await web.start()
        users = [SlackUser(slack, f"{web.url}/slack/events", f"U{i}") for i in range(EXPERTS)]
        for user in users:
            await coordinator.add_expert(Expert(id=user.id, name=user.id,
                                                identities=[f"slack:{user.id}"]))
            assert (await user.command("next"))[0] == 200
        assert await slack.until(lambda: all(slack.cards(u.id) for u in users))
        first = {user.id: slack.cards(user.id)[-1] for user in users}

        for method in SLACK_METHODS:  # Slack is away: every call is refused
            slack.fail_next(method, 429, retry_after=0, times=100_000)
        await worker.start()
        for user in users:
            assert (await user.press("el_choose", "A"))[0] == 200
        await wait_until(lambda: owed_to_all(service, users), "the outbox holds what is owed")
        slack.failures.clear()  # Slack is back

        assert await slack.until(lambda: all(delivered(slack, u, first[u.id]) for u in users),
                                 within_s=30)
        await wait_until(lambda: outbox_empty(service), "the worker empties the outbox")
    finally:
        await slack.stop()

    for user in users:
        assert len(slack.cards(user.id)) == 1  # one live card: the answered one is marked
        assert len(slack.dm(user.id)) == 2  # the first card and the next, none twice
    found = await answered_leases(service.stores.log, "c1")
    assert len(found) == EXPERTS and max(found.values()) == 1
    answers = [json.loads(e.body) for e in await service.stores.log.read_events("c1", 0, 10_000)]
    assert sorted(e["expert"] for e in answers if e["type"] == "answered") == sorted(
        u.id for u in users)
    await ledger.seal("c1")
    assert (await ledger.verify("c1")).ok


def delivered(slack: SlackEmulator, user: SlackUser, first: dict[str, object]) -> bool:
    """The answered card lost its buttons and a newer card is live."""
    live = slack.cards(user.id)
    return bool(live) and all(card["ts"] != first["ts"] for card in live)


async def owed_to_all(service: Service, users: list[SlackUser]) -> bool:
    owed = await service.stores.outbox.outbox_items("slack", 100)
    return all(f"card:{user.id}" in owed for user in users)


async def outbox_empty(service: Service) -> bool:
    return not await service.stores.outbox.outbox_items("slack", 100)
