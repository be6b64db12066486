"""What an agent run leaves behind: its steps and its result, as objects and as JSON lines.

A ``Step`` is one turn of the loop: the prompt the model saw, its raw output, the parsed
thought and tool call (or final answer), and the observation the tool returned. An
``AgentResult`` holds the steps, the final answer, the passages it can cite and why the
run ended. ``AgentResult.to_jsonl`` / ``from_jsonl`` write and read a trace;
``JsonlTraceHandler`` writes the same events live through the callbacks, so a trace file
can be replayed with ``replay(path)`` even when the run was interrupted.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: The agent events, named as in LangChain, that the loop sends to every callback handler.
AGENT_EVENTS = ("on_agent_start", "on_agent_action", "on_tool_start", "on_tool_end", "on_tool_error", "on_agent_finish")


@dataclass
class Step:
    """One thought → action → observation turn (or the final answer)."""

    index: int
    # "action", "final", "invalid" (malformed output, unknown tool, bad arguments), or "rejected"
    # (well formed, but against the agent's tool_choice: an answer before the first tool call)
    kind: str = "action"
    thought: str = ""
    tool: str | None = None
    tool_input: Any = None  # the arguments as the model gave them (dict, or raw text when malformed)
    observation: str | None = None
    answer: str | None = None  # for kind == "final"
    error: str | None = None  # what was wrong with the output, or what the tool raised
    prompt: list = field(default_factory=list)  # the chat messages the model saw
    raw: str = ""  # the model's raw output for this step
    seconds: float = 0.0
    tokens: int = 0
    constrained: bool = False
    sources: list = field(default_factory=list)  # passages this step's tool returned: {"number", "text", "source"}
    repeat_of: int | None = None  # the earlier step that made this very call (the tool did not run again)

    @property
    def malformed(self) -> bool:
        return self.kind == "invalid"


@dataclass
class AgentResult:
    """The outcome of ``Agent.run``: ``answer``, ``steps``, ``sources`` and ``finish_reason``.

    finish_reason: "final_answer", "max_steps", "time_limit", "interrupted" or "error".
    """

    task: str
    answer: str = ""
    steps: list[Step] = field(default_factory=list)
    finish_reason: str = ""
    model: str = ""
    mode: str = ""  # "react", "react+grammar" or "native"
    tools: list[str] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)  # every passage a search returned, numbered
    seconds: float = 0.0
    run_id: str = ""

    @property
    def malformed_calls(self) -> int:
        return sum(s.malformed for s in self.steps)

    @property
    def tool_calls(self) -> int:
        return sum(s.kind == "action" for s in self.steps)

    @property
    def cited(self) -> list[dict]:
        """Sources whose ``[n]`` appears in the answer; all of them when the answer cites none."""
        marked = [s for s in self.sources if f"[{s['number']}]" in self.answer]
        return marked or list(self.sources)

    def citations(self) -> str:
        return "\n".join(f"[{s['number']}] {s['source']}" for s in self.cited)

    def view(self):
        """The trace as an interactive widget (steps as a timeline; click one for its prompt and output)."""
        from ..widgets.agent_trace import AgentTraceWidget

        return AgentTraceWidget(self)

    def _repr_markdown_(self) -> str:
        lines = [f"**Answer:** {self.answer or '(none)'}", ""]
        lines.append(f"*{len(self.steps)} step(s), {self.tool_calls} tool call(s), {self.finish_reason}, {self.seconds:.1f} s*")
        if self.cited:
            lines += ["", "Sources:"] + [f"- [{s['number']}] {s['source']}" for s in self.cited]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<AgentResult {self.finish_reason}: {self.answer[:60]!r} in {len(self.steps)} steps>"

    # -- JSON lines ----------------------------------------------------------

    def to_jsonl(self, path) -> Path:
        """Write the run as JSON lines: a header, one line per step, the end."""
        path = Path(path)
        head = {k: v for k, v in asdict(self).items() if k not in ("steps", "answer", "finish_reason", "sources", "seconds")}
        with path.open("w", encoding="utf-8") as f:
            f.write(json.dumps({"event": "agent_start", **head}, default=str) + "\n")
            for step in self.steps:
                f.write(json.dumps({"event": "agent_step", **asdict(step)}, default=str) + "\n")
            end = {"answer": self.answer, "finish_reason": self.finish_reason, "sources": self.sources, "seconds": self.seconds}
            f.write(json.dumps({"event": "agent_finish", **end}, default=str) + "\n")
        return path

    @classmethod
    def from_jsonl(cls, path) -> "AgentResult":
        """Read a trace written by ``to_jsonl`` or by ``JsonlTraceHandler`` (a partial one too)."""
        return replay(path)


def replay(path) -> AgentResult:
    """Rebuild an AgentResult from a JSONL trace; a trace cut short gives the steps it has."""
    result: AgentResult | None = None
    step_fields = set(Step.__dataclass_fields__)
    head_fields = set(AgentResult.__dataclass_fields__)
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}, line {number}: not JSON ({e.msg}); the trace is damaged there.") from None
        event = record.pop("event", None)
        if event == "agent_start":
            result = cls_from(AgentResult, record, head_fields)
        elif event == "agent_step":
            if result is None:
                raise ValueError(f"{path}, line {number}: a step before agent_start.")
            result.steps.append(cls_from(Step, record, step_fields))
        elif event == "agent_finish" and result is not None:
            for key in ("answer", "finish_reason", "sources", "seconds"):
                if key in record:
                    setattr(result, key, record[key])
    if result is None:
        raise ValueError(f"{path}: no agent_start line; is this an agent trace?")
    if not result.finish_reason:
        result.finish_reason = "interrupted"  # the run never wrote its end
    return result


def cls_from(cls, record: dict, names: set):
    return cls(**{k: v for k, v in record.items() if k in names})


class JsonlTraceHandler:
    """A callback handler that appends each agent event to a JSONL file as it happens."""

    name = "agent_trace"

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")

    def _write(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"time": time.time(), **record}, default=str, ensure_ascii=False) + "\n")

    def on_agent_start(self, *, result: AgentResult, **kw):
        self._write({"event": "agent_start", "task": result.task, "model": result.model, "mode": result.mode, "tools": result.tools, "run_id": result.run_id})

    def on_agent_step(self, *, step: Step, **kw):
        self._write({"event": "agent_step", **asdict(step)})

    def on_agent_finish(self, *, result: AgentResult, **kw):
        self._write({"event": "agent_finish", "answer": result.answer, "finish_reason": result.finish_reason, "sources": result.sources, "seconds": result.seconds})
