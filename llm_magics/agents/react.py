"""ReAct (Yao et al., 2022) for any chat model: the model writes a thought, then either an
action with JSON arguments or a final answer; the tool's output comes back as an observation.

    Thought: I need the product first.
    Action: calculator
    Action Input: {"expression": "12 * 7"}
    Observation: 84                      <- written by the agent, not the model
    Thought: I know the answer.
    Final Answer: 84

On our own runtime the step can be *constrained*: a Lark grammar allows exactly this
shape, the tool names that exist, and for each tool the JSON Schema of its arguments
(``runtime.grammar``, through llguidance), so even a 135M model cannot write a malformed
call. Any other model (an OpenAI-compatible server) gets the same prompt and a lenient parser.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .tools import Tool

FORMAT = """Use exactly this format:

Thought: what to do next
Action: the tool to use, one of [{names}]
Action Input: the tool's arguments as a JSON object

Then you receive an Observation with the tool's result. Repeat Thought/Action/Action Input as needed. When you know the answer:

Thought: I know the answer.
Final Answer: the answer"""

EXAMPLE = """Example:
Question: What is 15% of 80?
Thought: I should compute 0.15 * 80.
Action: calculator
Action Input: {"expression": "0.15 * 80"}
Observation: 12
Thought: I know the answer.
Final Answer: 12"""


def system_prompt(tools: list[Tool]) -> str:
    lines = ["You answer questions using tools. Never guess a number: use a tool.", "", "Tools:"]
    for t in tools:
        args = json.dumps(t.parameters.get("properties", {}))
        lines.append(f"- {t.name}: {t.description} Arguments: {args}")
    text = "\n".join(lines) + "\n\n" + FORMAT.format(names=", ".join(t.name for t in tools))
    if any(t.name == "calculator" for t in tools):
        text += "\n\n" + EXAMPLE
    if any(t.name == "search" for t in tools):
        text += "\n\nCite the passages you used like [1]."
    return text


def observation_message(observation: str, question: str | None = None) -> dict:
    """The tool's result as the user's turn; ``question`` restates the task after it, so a long
    observation (passages that ask questions of their own) does not become the new question."""
    reminder = f"\n\n(The question is still: {question})" if question else ""
    return {"role": "user", "content": f"Observation: {observation}{reminder}"}


# ─── the grammar of one step ───────────────────────────────────────────────────

#: Compact JSON spacing like models write it; no newlines inside an Action Input.
_JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def step_grammar(tools: list[Tool], thought_chars: int = 160, answer_chars: int = 240, final: bool = True) -> str:
    """A Lark grammar (llguidance dialect) for one ReAct step over ``tools``; ``final=False``: a call only;
    no tools: a final answer only."""
    if not tools:
        return "\n".join([
            'start: "Thought: " THOUGHT "\\n" final',
            f"THOUGHT: /[^\\n]{{1,{thought_chars}}}/",
            f'final: "Final Answer: " /[^\\n]{{1,{answer_chars}}}/',
        ])  # fmt: skip
    rules = []
    for i, t in enumerate(tools):
        schema = {**t.parameters, "x-guidance": _JSON_STYLE}
        schema.setdefault("additionalProperties", False)
        rules.append(f'call{i}: "Action: {t.name}\\nAction Input: " %json{json.dumps(schema)}')
    calls = " | ".join(f"call{i}" for i in range(len(tools)))
    return "\n".join([
        'start: "Thought: " THOUGHT "\\n" ' + ("(action | final)" if final else "action"),
        f"THOUGHT: /[^\\n]{{1,{thought_chars}}}/",
        f"action: {calls}",
        *rules,
        f'final: "Final Answer: " /[^\\n]{{1,{answer_chars}}}/',
    ])  # fmt: skip


# ─── reading a step ────────────────────────────────────────────────────────────


@dataclass
class Parsed:
    thought: str = ""
    tool: str | None = None
    tool_input: object = None
    answer: str | None = None
    error: str | None = None


_THOUGHT = re.compile(r"Thought\s*:\s*(.*?)(?=\n\s*(?:Action|Final Answer)\s*:|\Z)", re.S | re.I)
_ACTION = re.compile(r"Action\s*:\s*`?([A-Za-z_][\w.-]*)`?\s*\n+\s*Action Input\s*:\s*(.*)", re.S | re.I)
_FINAL = re.compile(r"Final Answer\s*:\s*(.*)", re.S | re.I)


def parse_step(text: str) -> Parsed:
    """Thought, tool and arguments (or the final answer) from one step's output.

    The action wins when both appear before any observation (as in LangChain's parser, an
    answer written after an action was the model running ahead). Arguments stay as the
    model wrote them when they are not a JSON object; the tool's schema decides.
    """
    text = text.split("\nObservation")[0].strip()
    thought = _THOUGHT.search(text)
    parsed = Parsed(thought=(thought.group(1).strip() if thought else "").split("\n")[0])
    action, final = _ACTION.search(text), _FINAL.search(text)
    if action and (not final or action.start() < final.start()):
        parsed.tool = action.group(1).strip()
        parsed.tool_input = _arguments(action.group(2))
        return parsed
    if final:
        parsed.answer = final.group(1).strip()
        return parsed
    if re.search(r"Action\s*:", text, re.I):
        parsed.error = "an Action needs an 'Action Input:' line with a JSON object of arguments"
    else:
        parsed.error = "write 'Action:' with 'Action Input:', or 'Final Answer:'"
    return parsed


def _arguments(raw: str):
    raw = raw.strip().strip("`").strip()
    if raw.startswith("json"):
        raw = raw[4:].strip()
    try:
        value, _ = json.JSONDecoder().raw_decode(raw)
        return value
    except json.JSONDecodeError:
        return raw.split("\n")[0].strip()


def coerce_arguments(tool: Tool, value):
    """A bare string for a tool with one required string argument becomes ``{that: value}``.

    LangChain does the same for single-input tools; anything else is left for validation.
    """
    if isinstance(value, str):
        required = tool.parameters.get("required") or []
        props = tool.parameters.get("properties") or {}
        if len(required) == 1 and props.get(required[0], {}).get("type") == "string":
            return {required[0]: value.strip().strip('"')}
    return value


# ─── asking the model for one step ─────────────────────────────────────────────


class ReActPolicy:
    """Asks a backend for one ReAct step; constrained by the step grammar on the local runtime."""

    def __init__(self, backend, tools: list[Tool], constrained: bool | None = None, max_tokens: int = 200, first_tool: str | None = None):
        self.backend, self.tools, self.max_tokens = backend, tools, max_tokens
        local = hasattr(backend, "runtime_model")
        if constrained and not local:
            from ..errors import UsageError

            raise UsageError(f"Constrained decoding needs our runtime (a local model), not {backend.model_id}. Drop --constrained, or use native tool calls.")
        self.constrained = local if constrained is None else constrained
        self.mode = "react+grammar" if self.constrained else "react"
        self.grammar = step_grammar(tools) if self.constrained else None
        # the first step's grammar under tool_choice (Agent.first_tool): a call to any tool, or to the one named
        first = tools if not first_tool else [t for t in tools if t.name == first_tool]
        self.first_grammar = step_grammar(first, final=False) if self.constrained and first_tool is not None else self.grammar
        self.final_grammar = step_grammar([]) if self.constrained else None  # the answer-only step at the budget
        self._steps = 0

    def start(self, task: str, history: list[dict]) -> list[dict]:
        self.task = task
        return [{"role": "system", "content": system_prompt(self.tools)}, *history, {"role": "user", "content": f"Question: {task}"}]

    def decide(self, messages: list[dict], on_token, should_stop, final: bool = False) -> tuple[str, Parsed, int]:
        """(raw output, parsed step, tokens generated) for the next step; ``final``: an answer only."""
        from ..backends import GenerationParams, Usage

        if self.constrained:
            from ..runtime.grammar import GrammarConstraint

            lm = self.backend.runtime_model
            grammar = self.final_grammar if final else self.first_grammar if self._steps == 0 else self.grammar
            constraint = GrammarConstraint.from_lark(lm.tokenizer, grammar)
            generation = lm.generate(
                self.backend.prompt(messages), max_new_tokens=self.max_tokens, stream=True, stop_on_loop=False,
                logits_processor=constraint, repetition_penalty=self.backend.options.repetition_penalty,
            )  # fmt: skip
            for piece in generation:
                on_token(piece)
                if should_stop():
                    break
            raw, tokens = generation.text, len(generation.token_ids)
        else:
            usage = Usage()
            params = GenerationParams(temperature=0.0, max_tokens=self.max_tokens, stop=["\nObservation", "Observation:"])
            pieces = []
            for piece in self.backend.stream(messages, params, usage):
                pieces.append(piece)
                on_token(piece)
                if should_stop():
                    break
            raw, tokens = "".join(pieces), usage.completion_tokens
        self._steps += 1
        return raw, parse_step(raw), tokens

    def record(self, messages: list[dict], raw: str, parsed: Parsed, observation: str | None) -> None:
        messages.append({"role": "assistant", "content": raw.strip()})
        if observation is not None:
            messages.append(observation_message(observation, getattr(self, "task", None)))
