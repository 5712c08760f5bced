"""`expertloop demo` (what `make run` starts): the sample campaigns and two demo experts on the
embedded Redis, the web process and the worker, and optionally simulated experts at work."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from bots.runtime import Runtime
from bots.simulate import expert_loop
from bots.web import serve
from bots.worker import run_worker
from core.domain.experts import Expert
from core.errors import Conflict
from core.service.campaign_files import read_campaign

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_FILES = ("pairwise.yaml", "correct.yaml", "verify.yaml")
DEMO_EXPERTS = (
    Expert(id="demo-ana", name="Dr. Ana Ruiz", credentials="MD, internal medicine",
           time_zone="Europe/Madrid"),
    Expert(id="demo-ben", name="Ben Okafor", credentials="Senior software engineer",
           time_zone="Africa/Lagos"),
)


async def load_samples(runtime: Runtime) -> list[str]:
    """Post the sample campaigns and add the demo experts, once; a re-run keeps what is there."""
    posted, skills = [], set()
    for name in DEMO_FILES:
        spec, spool = read_campaign(EXAMPLES / name)
        skills |= set(spec.skills)
        try:
            campaign = await runtime.coordinator.post_campaign(spec, spool, actor_id="demo")
            posted.append(campaign.id)
        except Conflict:
            posted.append(str(spec.id))
        finally:
            spool.close()
    for expert in DEMO_EXPERTS:
        with contextlib.suppress(Conflict):
            with_skills = expert.model_copy(update={"skills": sorted(skills)})
            await runtime.coordinator.add_expert(with_skills)
    return posted


async def chat_links(runtime: Runtime) -> dict[str, str]:
    """Fresh web chat links for the demo experts (a restart revokes the old ones)."""
    url = runtime.settings.public_url()
    return {e.id: f"{url}/chat/{await runtime.coordinator.invite_web(e.id)}" for e in DEMO_EXPERTS}


async def add_simulated(runtime: Runtime, count: int) -> list[str]:
    skills = sorted({s for c in await runtime.coordinator.list_campaigns()
                     for s in (await runtime.coordinator.catalog.campaign(c.id)).spec.skills})
    ids = []
    for n in range(1, count + 1):
        expert = Expert(id=f"sim-{n:02d}", name=f"Simulated expert {n}", skills=skills)
        with contextlib.suppress(Conflict):
            await runtime.coordinator.add_expert(expert)
        ids.append(expert.id)
    return ids


def dashboard_url(runtime: Runtime) -> str:
    """With a token configured, the link signs the coordinator in once (then drops it)."""
    token = runtime.settings.api_token
    url = f"{runtime.settings.public_url()}/"
    return f"{url}?token={token.get_secret_value()}" if token else url


def channel_lines(runtime: Runtime) -> list[str]:
    settings = runtime.settings
    telegram = "on" if settings.telegram_bot_token else "off"
    slack = "on" if settings.slack_bot_token else "off"
    return [
        "Chat channels (set the variables, then restart):",
        f"  Telegram ({telegram})  TELEGRAM_BOT_TOKEN, plus TELEGRAM_WEBHOOK_SECRET for the "
        "webhook, or run `expertloop telegram-poll`",
        f"  Slack ({slack})     SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET for /slack/events, "
        "or SLACK_APP_TOKEN with `expertloop slack-socket`",
    ]


def welcome(runtime: Runtime, campaigns: list[str], links: dict[str, str]) -> str:
    url = runtime.settings.public_url()
    lines = [
        "", "expertloop is running on the embedded Redis (data in "
        f"{runtime.settings.data_dir.resolve()})", "",
        "Answer tasks as a demo expert in your browser:",
        *(f"  {expert_id:<13} {link}" for expert_id, link in links.items()), "",
        f"  dashboard     {dashboard_url(runtime)}",
        f"  health        {url}/healthz",
        f"  campaigns     {', '.join(campaigns)}", "",
        *channel_lines(runtime), "",
        "Try, in another terminal (.venv/bin/expertloop, or `source .venv/bin/activate`):",
        "  expertloop campaign list",
        f"  expertloop campaign status {campaigns[0]} --json",
        f"  expertloop provenance verify {campaigns[0]}",
        "  expertloop campaign post examples/rank.yaml",
        "Press Ctrl-C to stop.", "",
    ]
    return "\n".join(lines)


async def run(runtime: Runtime, stop: asyncio.Event, *, simulate: int = 0,
              speed: float = 20.0) -> None:
    campaigns = await load_samples(runtime)
    tasks = [asyncio.create_task(serve(runtime, stop)),
             asyncio.create_task(run_worker(runtime, stop))]
    for n, expert_id in enumerate(await add_simulated(runtime, simulate)):
        tasks.append(asyncio.create_task(
            expert_loop(runtime.service, expert_id, stop, speed=speed, seed=n)))
    print(welcome(runtime, campaigns, await chat_links(runtime)), flush=True)
    if simulate:
        print(f"{simulate} simulated experts are answering ({speed:g}x real time).", flush=True)
    await asyncio.gather(*tasks)
