"""The chain-type extension point, and ``LLM``: a model call with callbacks and budgets.

A chain type (``stuff``, ``refine``, ``map_reduce``, ``map_rerank``) turns a question and
retrieved hits into an answer through one or more model calls. It calls the model only
through ``LLM.generate``, which streams the final call to the cell, fires callbacks,
records every prompt, adds up usage, and keeps partial text when the kernel is
interrupted.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

from ...backends.base import Backend, GenerationParams, Message, Usage
from ...ingest.documents import Hit
from ...errors import LLMMagicsError, UsageError
from ...extension import Extension
from . import prompts


class GenerationError(LLMMagicsError):
    """The model backend failed; the message is one line naming the model and the reason."""


@dataclass
class ChainResult:
    """What a chain type returns.

    ``used`` are the hits the model saw, in the order numbered ``[1]``, ``[2]``... in the
    prompts; ``dropped`` did not fit the context window. ``cited`` are the numbers the
    chain itself chose (map_rerank's best chunk); ``final_messages`` is the last prompt,
    used to retry a reply an output parser rejects.
    """

    answer: str
    used: list[Hit]
    dropped: list[Hit] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)
    final_messages: list[Message] = field(default_factory=list)
    extras: dict = field(default_factory=dict)


@dataclass
class Numbered:
    """A hit with its citation number, as templates see it (``c.number``, ``c.text``)."""

    number: int
    text: str
    hit: Hit


class LLM:
    """One backend with fixed sampling parameters, for the calls of one run.

    ``stream_to(piece)`` receives the text of calls made with ``final=True`` as it is
    generated. ``prompts`` records ``{"step", "messages", "reply"}`` per call; ``usage``
    adds up tokens; ``partial`` is the text of the call in progress.
    """

    def __init__(self, backend: Backend, params: GenerationParams, callbacks=None, stream_to: Callable[[str], None] | None = None, system: str = prompts.SYSTEM):
        from ..callbacks import CallbackManager

        self.backend = backend
        self.params = params
        self.callbacks = callbacks or CallbackManager()
        self.stream_to = stream_to
        self.system = system
        self.prompts: list[dict] = []
        self.usage = Usage()
        self.usage.extra["calls"] = 0
        self.partial = ""
        self.final_text = ""
        self.model_seconds = 0.0
        self.first_answer_at: float | None = None  # perf_counter() of the first streamed answer text
        # What the model attended to while writing the final answer, when the backend
        # captures it (the local backend does): {"attention": ..., "prompt_ids": [...]}.
        self.final_capture: dict | None = None

    # -- budgets -------------------------------------------------------------
    @property
    def context_window(self) -> int:
        return int(self.backend.context_window)

    def count_tokens(self, text: str) -> int:
        return int(self.backend.count_tokens(text)) if text else 0

    def prompt_budget(self, *texts: str, history: Sequence[Message] = (), system: str | None = None) -> int:
        """Tokens left for context once the system prompt (``system``, else ``self.system``),
        ``texts``, history and reply are counted."""
        per_message = 8  # chat-template tokens around each message
        fixed = self.count_tokens(self.system if system is None else system) + sum(self.count_tokens(t) for t in texts)
        fixed += sum(self.count_tokens(m["content"]) + per_message for m in history) + 3 * per_message
        return self.context_window - self.params.max_tokens - fixed

    def truncate(self, text: str, tokens: int) -> str:
        """``text`` cut (at a word boundary) to at most ``tokens`` tokens."""
        if tokens <= 0:
            return ""
        if self.count_tokens(text) <= tokens:
            return text
        lo, hi = 0, len(text)
        while lo < hi:  # longest prefix that fits
            mid = (lo + hi + 1) // 2
            if self.count_tokens(text[:mid]) <= tokens:
                lo = mid
            else:
                hi = mid - 1
        cut = text[:lo]
        space = cut.rfind(" ")
        return (cut[:space] if space > lo // 2 else cut).rstrip() + " …"

    # -- calls ---------------------------------------------------------------
    def messages(self, user: str, history: Sequence[Message] = (), system: str | None = None) -> list[Message]:
        system = self.system if system is None else system
        out: list[Message] = [{"role": "system", "content": system}] if system else []
        return out + list(history) + [{"role": "user", "content": user}]

    def generate(self, user: str, *, step: str, history: Sequence[Message] = (), final: bool = False, system: str | None = None) -> str:
        """Send ``user`` (after the system prompt, ``system`` for this call if given, and
        ``history``) and return the reply."""
        return self.chat(self.messages(user, history, system), step=step, final=final)

    def chat(self, messages: list[Message], *, step: str, final: bool = False) -> str:
        usage = Usage()
        pieces: list[str] = []
        self.partial = ""
        record = {"step": step, "messages": messages, "reply": ""}
        self.prompts.append(record)
        self.usage.extra["calls"] += 1
        self.callbacks.on_llm_start(model=self.backend.model_id, messages=messages, params=self.params, step=step)
        start = time.perf_counter()
        try:
            for piece in self.backend.stream(messages, self.params, usage):
                if not piece:
                    continue
                pieces.append(piece)
                self.partial += piece
                if final:
                    self.first_answer_at = self.first_answer_at or time.perf_counter()
                    self.final_text += piece
                    if self.stream_to is not None:
                        self.stream_to(piece)
                self.callbacks.on_llm_new_token(token=piece, step=step)
        except KeyboardInterrupt:
            usage.finish_reason = "interrupted"
            self._finish(record, usage, pieces, start, step)
            raise
        except UsageError as e:
            self.model_seconds += time.perf_counter() - start
            self.callbacks.on_llm_error(error=e, step=step)
            raise
        except Exception as e:  # noqa: BLE001 - any backend failure becomes one line
            self.model_seconds += time.perf_counter() - start
            self.callbacks.on_llm_error(error=e, step=step)
            reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise GenerationError(f"Model {self.backend.model_id} failed in step {step!r}: {type(e).__name__}{': ' + reason if reason else ''}") from e
        if final and usage.extra.get("attention") is not None:
            self.final_capture = {"attention": usage.extra["attention"], "prompt_ids": usage.extra.get("prompt_ids")}
        return self._finish(record, usage, pieces, start, step)

    def emit(self, text: str) -> None:
        """Stream ``text`` as final-answer output without a model call (map_rerank's pick)."""
        self.final_text += text
        self.first_answer_at = self.first_answer_at or time.perf_counter()
        if self.stream_to is not None and text:
            self.stream_to(text)

    def _finish(self, record, usage: Usage, pieces: list[str], start: float, step: str) -> str:
        self.model_seconds += time.perf_counter() - start
        text = "".join(pieces)
        record["reply"] = text
        if not usage.completion_tokens and text:
            usage.completion_tokens = self.count_tokens(text)
        self.usage.prompt_tokens += usage.prompt_tokens
        self.usage.completion_tokens += usage.completion_tokens
        self.usage.finish_reason = usage.finish_reason
        self.callbacks.on_llm_end(text=text, usage=usage, step=step)
        return text


class ChainType(Extension):
    """A way to answer a question from retrieved hits. Subclasses set ``name`` and ``run``."""

    kind: ClassVar[str] = "chain_type"

    @abstractmethod
    def run(self, question: str, hits: list[Hit], llm: LLM, *, history: Sequence[Message] = (), instructions: str = "") -> ChainResult:
        """Answer ``question`` from ``hits`` (best first) with ``llm``.

        ``history`` is earlier conversation (chat messages) for the answering call;
        ``instructions`` are output-format instructions for it. Exactly the calls that
        produce the final answer pass ``final=True`` so they stream to the cell.
        """


def get_chain_type(name: str | None, **options) -> ChainType:
    from ... import config, registry

    return registry.get("chain_type", name or config.settings().chain_type)(**options)
