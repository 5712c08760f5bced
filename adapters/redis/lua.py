"""Loads the Lua scripts, each with the shared helpers of `common.lua` prepended."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

SCRIPTS = Path(__file__).with_name("scripts")


@cache
def source(name: str) -> str:
    common = (SCRIPTS / "common.lua").read_text()
    return common + "\n" + (SCRIPTS / f"{name}.lua").read_text()


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
