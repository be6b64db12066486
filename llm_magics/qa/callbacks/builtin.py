"""Built-in callback handlers: ``logging``, ``timing`` (feeds ``Answer.timings``), ``trace``."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import ClassVar

from ...hookspecs import hookimpl
from .base import CallbackHandler

log = logging.getLogger("llm_magics.qa.callbacks")


class LoggingHandler(CallbackHandler):
    """Log every event to the ``llm_magics.qa.callbacks`` logger (tokens at DEBUG)."""

    name = "logging"

    def on_llm_start(self, *, model, messages, step, run_id, **kw):
        log.info("[%s] llm start %s (%s): %d messages", run_id, step, model, len(messages))

    def on_llm_new_token(self, *, token, step, run_id, **kw):
        log.debug("[%s] token %s: %r", run_id, step, token)

    def on_llm_end(self, *, text, usage, step, run_id, **kw):
        log.info("[%s] llm end %s: %d tokens, %s", run_id, step, getattr(usage, "completion_tokens", 0), getattr(usage, "finish_reason", None))

    def on_llm_error(self, *, error, step, run_id, **kw):
        log.warning("[%s] llm error %s: %s: %s", run_id, step, type(error).__name__, error)

    def on_chain_start(self, *, name, run_id, **kw):
        log.info("[%s] chain start %s", run_id, name)

    def on_chain_end(self, *, name, run_id, **kw):
        log.info("[%s] chain end %s", run_id, name)

    def on_retriever_start(self, *, query, run_id, **kw):
        log.info("[%s] retrieve %r", run_id, query)

    def on_retriever_end(self, *, hits, run_id, **kw):
        log.info("[%s] retrieved %d hits", run_id, len(hits))


class TimingHandler(CallbackHandler):
    """Measure retrieval, each model call, and time to first token; read back by ``ask``.

    ``timings`` holds seconds: ``retrieval``, ``llm`` (all calls), ``first_token`` (of the
    first call), ``llm_calls`` and ``completion_tokens``.
    """

    name = "timing"
    always_on: ClassVar[bool] = True

    def __init__(self, **options):
        super().__init__(**options)
        self.timings: dict[str, float] = {"retrieval": 0.0, "llm": 0.0, "llm_calls": 0, "completion_tokens": 0}
        self._retrieval_start: float | None = None
        self._llm_start: float | None = None

    def on_retriever_start(self, **kw):
        self._retrieval_start = time.perf_counter()

    def on_retriever_end(self, **kw):
        if self._retrieval_start is not None:
            self.timings["retrieval"] += time.perf_counter() - self._retrieval_start
            self._retrieval_start = None

    def on_llm_start(self, **kw):
        self._llm_start = time.perf_counter()
        self.timings["llm_calls"] += 1

    def on_llm_new_token(self, **kw):
        if "first_token" not in self.timings and self._llm_start is not None:
            self.timings["first_token"] = time.perf_counter() - self._llm_start

    def _stop(self):
        if self._llm_start is not None:
            self.timings["llm"] += time.perf_counter() - self._llm_start
            self._llm_start = None

    def on_llm_end(self, *, usage, **kw):
        self._stop()
        self.timings["completion_tokens"] += getattr(usage, "completion_tokens", 0) or 0

    def on_llm_error(self, **kw):
        self._stop()


class TraceHandler(CallbackHandler):
    """Append every event as one JSON line to ``LLMMagics.trace_path`` (no-op when unset).

    Prompts, parameters, model names and replies are written, so a run can be replayed;
    single tokens are not (the reply is in ``llm_end``).
    """

    name = "trace"
    always_on: ClassVar[bool] = True
    _lock = threading.Lock()

    def __init__(self, **options):
        super().__init__(**options)
        from ... import config

        self.path = getattr(config.settings(), "trace_path", "") or ""

    def _write(self, event: str, **fields):
        if not self.path:
            return
        record = {"time": time.time(), "event": event}
        record.update({k: _jsonable(v) for k, v in fields.items()})
        path = Path(self.path).expanduser()
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def on_llm_start(self, **kw):
        self._write("llm_start", **kw)

    def on_llm_end(self, **kw):
        self._write("llm_end", **kw)

    def on_llm_error(self, *, error, **kw):
        self._write("llm_error", error=f"{type(error).__name__}: {error}", **kw)

    def on_chain_start(self, **kw):
        self._write("chain_start", **kw)

    def on_chain_end(self, **kw):
        self._write("chain_end", **kw)

    def on_retriever_start(self, **kw):
        self._write("retriever_start", **kw)

    def on_retriever_end(self, *, hits, **kw):
        self._write("retriever_end", hits=[{"text": h.text, "score": h.score, "metadata": h.metadata} for h in hits], **kw)


def _jsonable(value):
    """Dataclasses, pydantic models and odd objects as JSON-friendly values."""
    import dataclasses

    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump())
    return repr(value)


@hookimpl
def register_callbacks(register):
    register(LoggingHandler)
    register(TimingHandler)
    register(TraceHandler)
