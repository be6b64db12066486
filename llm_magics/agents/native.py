"""Native tool calls on an OpenAI-compatible server: the ``tools`` / ``tool_calls`` fields.

The server sees each tool as ``{"type": "function", "function": {name, description,
parameters}}``; it replies either with text (the final answer) or with
``message.tool_calls`` (a name and JSON-encoded arguments). The observation goes back as a
``{"role": "tool", "tool_call_id": ...}`` message. llama.cpp's server does this with a chat
format that supports function calling (llama-cpp-python: ``chatml-function-calling``;
``llama-server --jinja``); vLLM and OpenAI do it natively.
"""

from __future__ import annotations

import json

from ..errors import UsageError
from .react import Parsed
from .tools import Tool


class NativePolicy:
    """Asks an OpenAI-compatible backend for the next move, offering the tools natively."""

    mode = "native"

    def __init__(self, backend, tools: list[Tool], max_tokens: int = 200, first_tool: str | None = None):
        if not hasattr(backend, "connection"):
            raise UsageError(f"Native tool calls need an OpenAI-compatible server (--model openai:MODEL), not {backend.model_id}. Use --mode react.")
        self.backend, self.tools, self.max_tokens = backend, tools, max_tokens
        self._last_call_id: str | None = None
        # OpenAI's tool_choice for the first step (Agent's first_tool: None free, "" any tool, else a name); then "auto".
        # "Any tool" goes on the wire only when one tool makes it a name: servers differ on "required" (llama-cpp-python's
        # chatml-function-calling asserts "auto"), so with several tools the Agent turns back a first step without a call.
        if first_tool == "" and len(tools) == 1:
            first_tool = tools[0].name
        self.first_tool_choice = {"type": "function", "function": {"name": first_tool}} if first_tool else "auto"
        self._steps = 0

    def start(self, task: str, history: list[dict]) -> list[dict]:
        system = "You answer questions. Call a tool whenever it helps; never guess a number. Cite passages you used like [1]."
        return [{"role": "system", "content": system}, *history, {"role": "user", "content": task}]

    def body(self, messages: list[dict], final: bool = False) -> dict:
        """The request; ``final``: the answer-only step at the step budget, sent without tools."""
        body = {"model": self.backend.resolved_model(), "messages": messages, "temperature": 0.0, "max_tokens": self.max_tokens}
        if not final:
            body["tools"] = [t.openai_schema() for t in self.tools]
            body["tool_choice"] = self.first_tool_choice if self._steps == 0 else "auto"
        return body

    def decide(self, messages: list[dict], on_token, should_stop, final: bool = False) -> tuple[str, Parsed, int]:
        data = self.backend.connection.post_json("/chat/completions", self.body(messages, final))
        self._steps += 1
        choice = (data.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        tokens = int((data.get("usage") or {}).get("completion_tokens") or 0)
        content = message.get("content") or ""
        calls = message.get("tool_calls") or []
        raw = json.dumps({"content": content, "tool_calls": calls}, ensure_ascii=False)
        if content:
            on_token(content)
        if not calls:
            return raw, Parsed(answer=content.strip()), tokens
        call = calls[0]  # one call per step: the loop's observation answers exactly it
        function = call.get("function") or {}
        self._last_call_id = call.get("id") or "call_0"
        # content "" rather than null: OpenAI takes both, llama-cpp-python's server only a string
        self._last_message = {"role": "assistant", "content": content,
                              "tool_calls": [{"id": self._last_call_id, "type": "function", "function": function}]}  # fmt: skip
        on_token(f"{function.get('name')}({function.get('arguments')})")
        arguments = function.get("arguments")
        try:
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        except json.JSONDecodeError:
            pass  # left as text: validation reports it to the model
        return raw, Parsed(thought=content.strip(), tool=function.get("name"), tool_input=arguments), tokens

    def record(self, messages: list[dict], raw: str, parsed: Parsed, observation: str | None) -> None:
        if parsed.tool is None:  # an invalid step without a call: say so as the user
            messages.append({"role": "user", "content": observation or ""})
            return
        messages.append(self._last_message)
        messages.append({"role": "tool", "tool_call_id": self._last_call_id, "name": parsed.tool, "content": observation or ""})
