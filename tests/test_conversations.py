"""Conversations as prompts (issue 14, section 2): a malformed one is refused whole with file,
line and field; a card shows one turn by turn in the web chat, Telegram and Slack, inside each
platform's limits; every trainer export writes TRL's conversational shape, one shape per file;
and a campaign of conversations drafted by two emulated models is answered over the web chat and
Telegram with the drafts recorded as shown."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from adapters.models.openai_drafter import OpenAIDrafter
from adapters.redis.store import RedisStore
from adapters.slack.blocks import render_card
from adapters.telegram.app import TelegramBot
from adapters.web import render
from core.domain.campaigns import Campaign, CampaignSpec
from core.domain.cards import Card, CardDraft, Estimate
from core.domain.items import Turn
from core.domain.kinds import Choose, Correct, Decision, Kind, Rate, Verify
from core.domain.timing import SetClock
from core.errors import InvalidCampaign
from core.provenance.ledger import Ledger
from core.reports.exports import Export
from core.reports.trainers import ExportOptions
from core.service.campaign_files import read_campaign
from core.service.coordinator import Coordinator
from core.service.service import Service
from core.service.staging import spool_items
from tests.campaign_play import add_expert, draft_index, post_items, work
from tests.emulators.block_kit import refusals_of_message
from tests.emulators.openai import OpenAIEmulator
from tests.emulators.slack import SlackEmulator, SlackUser
from tests.emulators.telegram import TelegramEmulator
from tests.telegram_session import answered, joined
from tests.test_drafting import drafting, loop_of
from tests.test_slack import ann, answered_once, channel, events_url  # noqa: F401  (fixtures)
from tests.test_webchat import http, link  # noqa: F401  (fixtures)

SYSTEM = "You are a careful clinician."
CHAT = [{"role": "system", "content": SYSTEM},
        {"role": "user", "content": "I take warfarin <5 mg> & aspirin."},
        {"role": "assistant", "content": "Noted. What would you like to know?"},
        {"role": "user", "content": "Can I take ibuprofen?"}]
DRAFTS = [{"text": "No: it raises the bleeding risk.", "model": "good"},
          {"text": "Yes, any dose.", "model": "poor"}]


# a malformed conversation in a campaign file


CAMPAIGN_FILE = """\
title: Which reply is better?
instructions: Pick one.
kind: pairwise
items:
  - id: fine
    prompt:
      - {role: user, content: "Hi"}
    drafts: [{text: a}, {text: b}]
  - id: unknown-role
    prompt:
      - {role: user, content: "Hi"}
      - {role: tool, content: "lookup"}
      - {role: user, content: "And?"}
    drafts: [{text: a}, {text: b}]
  - id: empty
    prompt:
      - role: system
        content: "   "
      - {role: user, content: "Hi"}
    drafts: [{text: a}, {text: b}]
  - id: ends-with-assistant
    prompt:
      - {role: user, content: "Hi"}
      - {role: assistant, content: "Hello"}
    drafts: [{text: a}, {text: b}]
"""


def test_a_malformed_conversation_is_refused_whole_with_file_line_and_field(
        tmp_path: Path) -> None:
    path = tmp_path / "chats.yaml"
    path.write_text(CAMPAIGN_FILE, encoding="utf-8")

    with pytest.raises(InvalidCampaign) as caught:
        read_campaign(path)  # nothing is returned to post: the good item goes nowhere either

    found = [(p.source, p.line, p.field()) for p in caught.value.problems]
    assert found == [("chats.yaml", 12, "items.1.prompt.1.role"),
                     ("chats.yaml", 18, "items.2.prompt.0.content"),
                     ("chats.yaml", 22, "items.3.prompt")]
    said = [str(p) for p in caught.value.problems]
    assert "'system', 'user' or 'assistant'" in said[0]
    assert "ends with a user turn" in said[2] and "'assistant'" in said[2]


# the card in each channel


def card_of(prompt: str | list[dict[str, str]], drafts: list[str] | None = None,
            kind: Kind = Kind.pairwise) -> Card:
    texts = drafts if drafts is not None else [d["text"] for d in DRAFTS]
    turns = prompt if isinstance(prompt, str) else [Turn(**t) for t in prompt]  # type: ignore[arg-type]
    return Card(lease="1.abcdefghijklmnop", campaign="c1", title="Which reply?",
                instructions="Pick one.", kind=kind, item="q1", prompt=turns,
                drafts=[CardDraft(label=chr(65 + i), text=t) for i, t in enumerate(texts)],
                allowed=[kind.value], expires_at=0, estimate=Estimate(seconds=60))


def test_the_web_chat_shows_each_turn_as_a_bubble_labelled_by_its_role() -> None:
    html = render.card(card_of(CHAT), "token", "csrf")

    bubbles = re.findall(r'<div class="turn (\w+)"><span class="role">(\w+)</span>'
                         r'<div class="text">([^<]*)</div></div>', html)
    assert [(css, label) for css, label, _ in bubbles] == [
        ("system", "System"), ("user", "User"), ("assistant", "Assistant"), ("user", "User")]
    assert [unescape(text) for _, _, text in bubbles] == [t["content"] for t in CHAT]
    assert "&lt;5 mg&gt; &amp; aspirin" in html and "<5 mg>" not in html


def test_a_plain_prompt_is_shown_as_before() -> None:
    html = render.card(card_of("Ibuprofen & <warfarin>?"), "token", "csrf")
    assert '<div class="prompt">Ibuprofen &amp; &lt;warfarin&gt;?</div>' in html
    assert 'class="turn' not in html


async def post_chats(coordinator: Coordinator, prompts: list[Any], campaign_id: str = "c1",
                     drafts: list[dict[str, str]] | None = None, **spec: Any) -> None:
    made = CampaignSpec(id=campaign_id, title="Which reply is better?",
                        instructions="Pick the safer reply.", kind="pairwise", **spec)
    items = [{"id": f"q{i}", "prompt": prompt, "drafts": drafts or DRAFTS}
             for i, prompt in enumerate(prompts)]
    spool = spool_items(made, items)
    try:
        await coordinator.post_campaign(made, spool)
    finally:
        spool.close()


def sent_html(emulator: TelegramEmulator, chat: int) -> list[str]:
    """What the bot sent to a chat, as the HTML it sent (the emulator keeps the plain text)."""
    return [p["text"] for method, p in emulator.calls
            if method == "sendMessage" and str(p.get("chat_id")) == str(chat)]


async def test_telegram_labels_each_turn_and_the_card_is_answered(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    await post_chats(coordinator, [CHAT])
    user = await joined(coordinator, emulator, "ann", 501)

    assert await user.say("/next") == 200

    [card_html] = [h for h in sent_html(emulator, 501) if "Conversation" in h]
    labels = re.findall(r"<b>(System|User|Assistant):</b>", card_html)
    assert labels == ["System", "User", "Assistant", "User"]
    assert "warfarin &lt;5 mg&gt; &amp; aspirin" in card_html
    shown = user.card()["text"]
    positions = [shown.index(t["content"]) for t in CHAT]
    assert positions == sorted(positions)  # the turns in their order, each whole
    assert await user.press("A is better") == 200
    [event] = await answered(store)
    assert event["payload"]["decision"]["choice"] == "A"
    assert emulator.refused == []


async def test_telegram_splits_a_long_conversation_between_turns_and_a_long_turn_at_a_break(
        bot: TelegramBot, emulator: TelegramEmulator, coordinator: Coordinator,
        store: RedisStore) -> None:
    first = "".join(f"First question, line {n} & <more>.\n" for n in range(90))[:3000]
    reply = " ".join(f"reply{n}" for n in range(500))[:3000]
    long = "".join(f"Line {n}: words & <brackets> follow here.\n" for n in range(130))  # ~5.4k
    assert len(long) > 4096
    chat = [{"role": "user", "content": first}, {"role": "assistant", "content": reply},
            {"role": "user", "content": long}]
    await post_chats(coordinator, [chat])
    user = await joined(coordinator, emulator, "ann", 501)

    assert await user.say("/next") == 200

    assert emulator.refused == [] and not emulator.documents
    texts = [t for t in emulator.texts(501) if t != "/next"]
    assert len(texts) > 2 and all(len(t) <= 4096 for t in texts)
    for turn in (first, reply):  # a turn that fits one message is never cut
        assert sum(turn in text for text in texts) == 1
    long_parts = [t for t in texts if t.startswith("User: (cont.)") or "Line 0:" in t]
    assert len(long_parts) == 2
    head = long_parts[0].split("User:\n", 1)[1]
    tail = long_parts[1].split("User: (cont.)\n", 1)[1].split("\n\nDraft A")[0]
    assert head + tail == long
    assert head[-1] in "\n "  # cut at a line or word break
    assert await user.press("B is better") == 200
    assert len(await answered(store)) == 1


async def test_slack_shows_one_section_per_turn_and_the_card_is_answered(
        ann: SlackUser, slack: SlackEmulator, store: RedisStore,  # noqa: F811
        coordinator: Coordinator) -> None:
    await post_chats(coordinator, [CHAT])
    await ann.command("next")
    await slack.wait_for("chat.postMessage")

    [card] = slack.cards(ann.id)
    sections = [b["text"]["text"] for b in card["blocks"] if b["type"] == "section"]
    turns = [s for s in sections if s.split("*")[1] in ("System", "User", "Assistant")]
    assert [s.split("*")[1] for s in turns] == ["System", "User", "Assistant", "User"]
    assert turns[1] == "*User*\nI take warfarin &lt;5 mg&gt; &amp; aspirin."
    status, _ = await ann.press("el_choose", "A")
    assert status == 200
    event = await answered_once(slack, store, ann)
    assert event["payload"]["decision"]["choice"] == "A"


async def test_slack_continues_a_long_conversation_in_further_messages(
        ann: SlackUser, slack: SlackEmulator, store: RedisStore,  # noqa: F811
        coordinator: Coordinator) -> None:
    chat = [{"role": "user" if n % 2 == 0 else "assistant",
             "content": f"Turn {n}: " + "dose & <timing> " * 150} for n in range(45)]
    chat.append({"role": "user", "content": "Last: " + "a long question & <more> " * 400})
    await post_chats(coordinator, [chat])
    await ann.command("next")
    await slack.until(lambda: bool(slack.cards(ann.id)))

    messages = slack.dm(ann.id)
    assert len(messages) > 1 and len(slack.called("chat.postMessage")) == len(messages)
    assert all(len(m["blocks"]) <= 50 and refusals_of_message(m["blocks"]) == []
               for m in messages)
    sections = [b["text"]["text"] for m in messages for b in m["blocks"]
                if b["type"] == "section"]
    assert turns_shown(sections) == [(t["role"], t["content"]) for t in chat]
    status, _ = await ann.press("el_choose", "B")
    assert status == 200 and await slack.until(lambda: bool(slack.called("chat.update")))


def turns_shown(sections: list[str]) -> list[tuple[str, str]]:
    """The turns as Slack shows them: a section headed by a role starts a turn, and one headed
    "(continued, n/m)" carries on the turn before."""
    turns: list[tuple[str, str]] = []
    for text in sections:
        head, _, body = text.partition("\n")
        role = head.strip("*").split(" ")[0].lower()
        if role not in ("system", "user", "assistant"):
            continue
        body = body.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        if "(continued," in head:
            turns[-1] = (role, turns[-1][1] + body)
        else:
            turns.append((role, body))
    return turns


def test_every_slack_message_of_a_conversation_card_is_one_block_kit_accepts() -> None:
    chat = [{"role": "system", "content": "S " * 2000}, *[
        {"role": "user" if n % 2 == 0 else "assistant", "content": f"{n} & <x> " * 700}
        for n in range(61)]]
    messages = render_card(card_of(chat))
    assert len(messages) > 2
    sections = [b["text"]["text"] for m in messages for b in m if b["type"] == "section"]
    assert turns_shown(sections) == [(t["role"], t["content"]) for t in chat]
    assert all(refusals_of_message(blocks) == [] for blocks in messages)
    assert [b["type"] for b in messages[-1][-2:]] == ["actions", "actions"]


# exports


async def export_rows(ledger: Ledger, campaign: Campaign, fmt: str, conversations: int,
                      **options: Any) -> list[dict[str, Any]]:
    run = Export(ledger, campaign, fmt, ExportOptions(**options), conversations=conversations)
    return [json.loads(line) async for line in run.lines()]


def assert_conversational(prompt: Any, *replies: Any) -> None:
    """TRL's conversational rows: the prompt ends with the user turn, the replies are the
    assistant turn alone."""
    assert isinstance(prompt, list) and prompt[-1]["role"] == "user"
    assert all(set(turn) == {"role", "content"} for turn in prompt)
    for reply in replies:
        assert isinstance(reply, list) and [m["role"] for m in reply] == ["assistant"]


MIXED = [CHAT, "Ibuprofen with warfarin?", CHAT[1:]]  # two conversations and a plain string


async def mixed_campaign(coordinator: Coordinator, service: Service, clock: SetClock,
                         kind: str, decide: Any, drafts: list[dict[str, str]],
                         **spec: Any) -> tuple[Campaign, int]:
    items = [{"id": f"q{i}", "prompt": prompt, "drafts": drafts} for i, prompt in
             enumerate(MIXED)]
    campaign = await post_items(coordinator, items, kind=kind, **spec)
    await add_expert(coordinator, "ann")
    await work(service, clock, "ann", decide)
    return campaign, (await coordinator.status(campaign.id)).conversations


def expected_prompt(item: int) -> list[dict[str, str]]:
    prompt = MIXED[item]
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


async def test_preference_and_openai_dpo_rows_are_conversational_one_shape_per_file(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    def decide(card: Card) -> Decision:
        return Choose(choice=draft_index(card, DRAFTS[0]["text"]))  # type: ignore[arg-type]

    campaign, conversations = await mixed_campaign(coordinator, service, clock, "pairwise",
                                                   decide, DRAFTS)
    assert conversations == 2

    rows = await export_rows(ledger, campaign, "preference", conversations)
    assert len(rows) == 3
    for row in rows:
        assert_conversational(row["prompt"], row["chosen"], row["rejected"])
        assert row["prompt"] == expected_prompt(int(row["item"][1:]))
        assert row["chosen"][0]["content"] == DRAFTS[0]["text"]
        assert row["rejected"][0]["content"] == DRAFTS[1]["text"]
    assert rows[0]["prompt"][0] == {"role": "system", "content": SYSTEM}  # the system turn kept

    dpo = await export_rows(ledger, campaign, "openai-dpo", conversations)
    assert [row["input"]["messages"] for row in dpo] == [expected_prompt(i) for i in range(3)]
    assert all(row["preferred_output"] == [{"role": "assistant", "content": DRAFTS[0]["text"]}]
               for row in dpo)


async def test_a_campaign_of_strings_alone_still_exports_strings(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    items = [{"id": "q0", "prompt": "Plain?", "drafts": DRAFTS}]
    campaign = await post_items(coordinator, items, kind="pairwise")
    await add_expert(coordinator, "ann")
    await work(service, clock, "ann", lambda card: Choose(choice="A"))
    conversations = (await coordinator.status(campaign.id)).conversations

    [row] = await export_rows(ledger, campaign, "preference", conversations)

    assert conversations == 0 and row["prompt"] == "Plain?" and isinstance(row["chosen"], str)


async def test_kto_rows_are_conversational(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    def decide(card: Card) -> Decision:
        if card.item == "q0":
            return Verify(verdict="override", text="No: ask your doctor.", reason="unsafe")
        return Verify(verdict="accept")

    campaign, conversations = await mixed_campaign(coordinator, service, clock, "verify",
                                                   decide, DRAFTS[:1])
    rows = await export_rows(ledger, campaign, "kto", conversations)

    assert [(row["item"], row["label"]) for row in rows] == [
        ("q0", False), ("q0", True), ("q1", True), ("q2", True)]
    for row in rows:
        assert_conversational(row["prompt"], row["completion"])
        assert row["prompt"] == expected_prompt(int(row["item"][1:]))
    assert rows[1]["completion"] == [{"role": "assistant", "content": "No: ask your doctor."}]


async def test_sft_rows_are_the_conversation_and_the_experts_reply(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    def decide(card: Card) -> Decision:
        return Correct(text=f"Corrected for {card.item}.")

    campaign, conversations = await mixed_campaign(coordinator, service, clock, "correct",
                                                   decide, DRAFTS[:1])

    rows = await export_rows(ledger, campaign, "sft", conversations)
    assert [row["messages"] for row in rows] == [
        [*expected_prompt(i), {"role": "assistant", "content": f"Corrected for q{i}."}]
        for i in range(3)]
    split = await export_rows(ledger, campaign, "sft", conversations,
                              sft_shape="prompt_completion")
    for i, row in enumerate(split):
        assert_conversational(row["prompt"], row["completion"])
        assert row["prompt"] == expected_prompt(i)
        assert row["completion"][0]["content"] == f"Corrected for q{i}."


async def test_ratings_pair_drafts_of_the_same_conversation_only(
        service: Service, coordinator: Coordinator, clock: SetClock, ledger: Ledger) -> None:
    """Two items share a conversation and two share its last turn as a plain string: the
    pair comes from the drafts of the same conversation, never across."""
    items = [{"id": "a", "prompt": CHAT, "drafts": DRAFTS[:1]},
             {"id": "b", "prompt": CHAT, "drafts": DRAFTS[1:]},
             {"id": "c", "prompt": CHAT[-1]["content"], "drafts": [{"text": "Maybe."}]}]
    campaign = await post_items(coordinator, items, kind="rate")
    await add_expert(coordinator, "ann")
    scores = {"a": 5, "b": 1, "c": 3}
    await work(service, clock, "ann", lambda card: Rate(score=scores[card.item]))
    conversations = (await coordinator.status(campaign.id)).conversations

    [row] = await export_rows(ledger, campaign, "preference", conversations)

    assert row["prompt"] == CHAT and (row["item"], row["rejected_item"]) == ("a", "b")
    assert_conversational(row["prompt"], row["chosen"], row["rejected"])
    assert row["margin"] == 4.0


# drafted by two models, answered over the web chat and Telegram


async def test_conversations_drafted_by_two_models_are_answered_on_the_web_and_telegram(
        store: RedisStore, coordinator: Coordinator, service: Service, clock: SetClock,
        ledger: Ledger, models: OpenAIEmulator, drafter: OpenAIDrafter,  # noqa: F811
        http: TestClient, bot: TelegramBot,  # type: ignore[type-arg]  # noqa: F811
        emulator: TelegramEmulator) -> None:
    made = CampaignSpec.model_validate({
        "id": "dr", "title": "Which reply?", "instructions": "Pick one.", "kind": "pairwise",
        "overlap": 2, "drafting": drafting(models, "model-a", "model-b")})
    spool = spool_items(made, [{"id": "q1", "prompt": CHAT}])
    await coordinator.post_campaign(made, spool)
    spool.close()
    await loop_of(store, drafter, clock).run_until_idle()
    texts = {m: models.draft_for(m, CHAT, temperature=0.7) for m in ("model-a", "model-b")}
    assert texts["model-a"] != texts["model-b"]

    token = await link(coordinator, "web-ann")
    page = await (await http.get(f"/chat/{token}")).text()
    assert len(re.findall(r'<div class="turn ', page)) == len(CHAT)
    web_a = unescape(re.findall(r'data-label="A"><h3>A</h3><div class="text">([^<]*)', page)[0])
    form = {name: re.findall(rf'name="{name}" value="([^"]+)"', page)[0]
            for name in ("lease", "csrf")}
    sent = await http.post(f"/chat/{token}/answer", allow_redirects=False,
                           data={**form, "type": "pairwise", "choice": "A"})
    assert sent.status == 303

    bob = await joined(coordinator, emulator, "tg-bob", 502)
    await bob.say("/next")
    shown = bob.card()["text"]
    assert [label for label in ("System:", "User:", "Assistant:") if label in shown] == [
        "System:", "User:", "Assistant:"]
    tg_b = shown.split("Draft B\n", 1)[1].strip()
    assert await bob.press("B is better") == 200

    [ready] = [json.loads(e.body) for e in await store.read_events("dr", 0, 1000)
               if json.loads(e.body)["type"] == "item_ready"]
    item_drafts = [d["text"] for d in ready["payload"]["item"]["drafts"]]
    assert sorted(item_drafts) == sorted(texts.values())
    by_channel = {e["payload"]["channel"]: e for e in await answered(store, "dr")}
    assert set(by_channel) == {"web", "telegram"}
    assert item_drafts[by_channel["web"]["payload"]["order"][0]] == web_a
    assert item_drafts[by_channel["telegram"]["payload"]["order"][1]] == tg_b

    campaign = await coordinator.catalog.campaign("dr")
    rows = await export_rows(ledger, campaign, "preference",
                             (await coordinator.status("dr")).conversations)
    assert [row["prompt"] for row in rows] == [CHAT, CHAT]
    assert {row["chosen"][0]["content"] for row in rows} <= set(texts.values())
    assert rows[0]["chosen"] == [{"role": "assistant", "content": web_a}]
    trail = await export_rows(ledger, campaign, "trail", 0)
    assert [row["prompt"] for row in trail] == [CHAT, CHAT]
    assert {row["channel"] for row in trail} == {"web", "telegram"}
