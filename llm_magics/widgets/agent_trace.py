"""``AgentTraceWidget``: an agent run as a timeline of steps; click one to see its prompt and raw output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

HERE = Path(__file__).parent


def _get(obj, name, default=None):
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def _step(s) -> dict:
    return {
        "index": int(_get(s, "index", 0)),
        "kind": str(_get(s, "kind", "action")),
        "thought": str(_get(s, "thought", "") or ""),
        "tool": _get(s, "tool"),
        "tool_input": _text(_get(s, "tool_input")),
        "observation": _text(_get(s, "observation")),
        "answer": _text(_get(s, "answer")),
        "error": _get(s, "error"),
        "raw": str(_get(s, "raw", "") or ""),
        "prompt": [{"role": str(_get(m, "role", "")), "content": _text(_get(m, "content", ""))} for m in _get(s, "prompt", None) or []],
        "seconds": float(_get(s, "seconds", 0.0) or 0.0),
        "tokens": int(_get(s, "tokens", 0) or 0),
        "constrained": bool(_get(s, "constrained", False)),
    }


class AgentTraceWidget(anywidget.AnyWidget):
    """The steps of an ``AgentResult`` (or a replayed trace) as a timeline.

    Each step is a box: its kind (action, final answer, invalid), the tool and its
    arguments, the observation. Clicking a step shows the chat prompt the model saw and
    its raw output below the timeline (``selected`` syncs back to Python).
    """

    _esm = HERE / "js" / "agent_trace.js"
    _css = HERE / "js" / "agent_trace.css"

    task = t.Unicode("").tag(sync=True)
    answer = t.Unicode("").tag(sync=True)
    finish_reason = t.Unicode("").tag(sync=True)
    model_name = t.Unicode("").tag(sync=True)
    mode = t.Unicode("").tag(sync=True)
    seconds = t.Float(0.0).tag(sync=True)
    steps = t.List(t.Dict()).tag(sync=True)
    sources = t.List(t.Dict()).tag(sync=True)
    selected = t.Int(-1).tag(sync=True)  # index into steps of the step shown in full

    def __init__(self, result: Any, *, selected: int = -1):
        super().__init__(
            task=str(_get(result, "task", "") or ""),
            answer=str(_get(result, "answer", "") or ""),
            finish_reason=str(_get(result, "finish_reason", "") or ""),
            model_name=str(_get(result, "model", "") or ""),
            mode=str(_get(result, "mode", "") or ""),
            seconds=float(_get(result, "seconds", 0.0) or 0.0),
            steps=[_step(s) for s in _get(result, "steps", None) or []],
            sources=[{k: _text(v) if k != "number" else int(v) for k, v in dict(s).items()} for s in _get(result, "sources", None) or []],
            selected=selected,
        )
