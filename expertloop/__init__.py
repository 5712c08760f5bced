"""Ask credentialed experts from an agent: `ask` / `aask` block until an expert decides,
`@requires_approval` guards a tool behind an expert's approval, `expert_tool` lets a model
ask by itself. Speaks the expertloop server's /api/asks over HTTP; nothing else of it."""

from expertloop.aclient import AsyncClient, aask
from expertloop.approval import requires_approval
from expertloop.client import Client, ask
from expertloop.decision import AskFailed, Decision
from expertloop.tools import ahandle_tool_call, expert_tool, handle_tool_call

__all__ = ["AskFailed", "AsyncClient", "Client", "Decision", "aask", "ahandle_tool_call",
           "ask", "expert_tool", "handle_tool_call", "requires_approval"]
