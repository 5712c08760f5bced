"""The bot's commands: /start <invite> links a Telegram account to an expert; /next, /pause,
/resume, /stats and /help are what an expert can ask for by typing."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Update

from adapters.telegram.chats import Chats, Context, chat_of, html
from core.errors import Conflict
from core.service.coordinator import Coordinator

HELP = ("/next — your next task\n/pause — stop receiving tasks\n/resume — start again\n"
        "/stats — what you have done and earned\n/help — this message\n\n"
        "Answer with the buttons; for corrections and written answers, reply to my prompt "
        "with the full text.")
BAD_INVITE = ("This invite is not valid: it was used, has expired or was mistyped. "
              "Ask your coordinator for a new link.")


@dataclass
class Commands:
    chats: Chats
    coordinator: Coordinator  # invites

    async def start(self, update: Update, context: Context) -> None:
        """`/start <token>`: what an invite link sends (https://t.me/<bot>?start=<token>)."""
        chat, user = chat_of(update), update.effective_user
        token = context.args[0] if context.args else ""
        expert = None
        if token and user is not None:
            try:
                expert = await self.coordinator.redeem_invite(token, f"telegram:{user.id}")
            except Conflict as exc:
                await self.chats.messenger(context).send(chat, f"Not linked: {exc}")
                return
        expert = expert or await self.chats.expert(update)
        if expert is None:
            await self.chats.messenger(context).send(chat, BAD_INVITE)
            return
        await self.chats.messenger(context, expert).send(
            chat, f"Welcome, {html(expert.name)}! You will get your tasks here.\n\n{HELP}")
        await self.chats.deliver_next(update, context, expert)

    async def next(self, update: Update, context: Context) -> None:
        if expert := await self.chats.known(update, context):
            await self.chats.deliver_next(update, context, expert)

    async def pause(self, update: Update, context: Context) -> None:
        if expert := await self.chats.known(update, context):
            await self.chats.service.set_paused(expert.id, True)
            await self.chats.messenger(context, expert).send(
                chat_of(update), "Paused: no tasks until you send /resume.")

    async def resume(self, update: Update, context: Context) -> None:
        if expert := await self.chats.known(update, context):
            expert = await self.chats.service.set_paused(expert.id, False)
            await self.chats.deliver_next(update, context, expert)

    async def stats(self, update: Update, context: Context) -> None:
        if expert := await self.chats.known(update, context):
            figures = await self.chats.service.stats(expert.id)
            rows = [f"{label}: {value}" for label, value in figures.lines()]
            await self.chats.messenger(context, expert).send(chat_of(update), html(
                "\n".join(rows) + ("\nYou are paused." if figures.paused else "")))

    async def help(self, update: Update, context: Context) -> None:
        """Also the answer to any text that is no command and no reply to a prompt."""
        await self.chats.messenger(context).send(chat_of(update), html(HELP))
