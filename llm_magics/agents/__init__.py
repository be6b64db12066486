"""Agents: a model that decides which tool to call, reads the result and goes on.

``Agent(tools=[...], model=...).run(task)`` returns an ``AgentResult`` (the answer, every
step, the passages it can cite). Tools are plugins (the ``register_tools`` hook); the
built-ins are ``calculator``, ``sql`` and ``search``; ``@tool`` registers a notebook function.
"""

from .agent import Agent, AgentInterrupted, run_agent
from .tools import Tool, ToolArgumentsError, ToolResult, available, get_tools, tool
from .trace import AgentResult, Step, replay

__all__ = ["Agent", "AgentInterrupted", "AgentResult", "Step", "Tool", "ToolArgumentsError", "ToolResult",
           "available", "get_tools", "replay", "run_agent", "tool"]
