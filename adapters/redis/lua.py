"""Loads the Lua scripts, each with the shared helpers of `common.lua` prepended."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from adapters.redis.keys import script_keys

SCRIPTS = Path(__file__).with_name("scripts")


@cache
def source(name: str) -> str:
    common = (SCRIPTS / "common.lua").read_text()
    return common + "\n" + (SCRIPTS / f"{name}.lua").read_text()


@cache
def sha(name: str) -> str:
    return hashlib.sha1(source(name).encode()).hexdigest()


class Scripts:
    """One registered script per name; redis-py re-loads a script after a server restart."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._scripts: dict[str, AsyncScript] = {}

    def __getitem__(self, name: str) -> AsyncScript:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self._client.register_script(source(name))
        return script

    async def in_pipeline(self, pipe: Pipeline, name: str, keys: list[str], args: list[Any],
                          *more: Any) -> list[Any]:
        """Run a script first in a pipeline of other commands, in one round trip. redis-py's own
        pipelined scripts cost an extra SCRIPT EXISTS trip each time, so call by SHA and load
        the script only when the server says it has none (after a restart, say)."""
        # A raw EVALSHA: redis-py's cluster pipeline blocks its `evalsha` method, yet routes
        # the raw command by its keys (all in the campaign's slot) like any other.
        pipe.execute_command("EVALSHA", sha(name), len(keys), *keys, *args)
        for command in more:
            command(pipe)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        if isinstance(replies[0], NoScriptError):
            replies[0] = await self[name](keys=keys, args=args)
        if isinstance(replies[0], Exception):
            raise replies[0]
        return replies


class OnRedis:
    """What every role of the store is built from: the client handed in and its scripts."""

    def __init__(self, client: Redis, scripts: Scripts | None = None) -> None:
        self.client = client
        self.scripts = scripts or Scripts(client)

    async def _run(self, script: str, campaign_id: str, args: list[Any]) -> Any:
        """A campaign's script: its keys all in the campaign's slot (keys.script_keys)."""
        return await self.scripts[script](keys=script_keys(campaign_id), args=args)
