"""The web chat's Messenger: a page or a fetch response is the channel, so 'sending' a card
adds its HTML to what this request will answer with."""

from __future__ import annotations

from adapters.web import render
from adapters.web.media import MediaLinks
from core.domain.answers import Outcome
from core.domain.cards import Card
from core.ports import Clock, Delivery


class WebMessenger:
    channel = "web"

    def __init__(self, clock: Clock, token: str, csrf: str, links: MediaLinks,
                 said: str = "") -> None:
        self.clock = clock
        self.token = token
        self.csrf = csrf
        self.links = links  # signs the card's image links, valid while its lease is
        self.said = said  # a live ask's decision in words, for what was recorded
        self.log: list[str] = []  # bubbles: what was recorded, notices
        self.current = ""  # the card (or notice) the expert acts on now

    async def send_card(self, address: str, card: Card) -> Delivery:
        urls = [self.links.url(image.sha256, card.expires_at) for image in card.images]
        self.current = render.card(card, self.token, self.csrf, urls, self.clock.now_ms())
        shown = tuple({"sha256": image.sha256, "as": "original"} for image in card.images)
        return Delivery(message_id=f"web:{card.lease}", at=self.clock.now_ms(), images=shown)

    async def send_notice(self, address: str, text: str) -> Delivery:
        self.current = render.notice(text)
        return Delivery(message_id="web:notice", at=self.clock.now_ms())

    async def show_outcome(self, address: str, outcome: Outcome) -> None:
        self.log.append(render.outcome(outcome, self.said))
