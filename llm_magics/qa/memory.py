"""Conversation memory for ``%%ask``: earlier questions and answers, so follow-ups work.

Three kinds, chosen by ``LLMMagics.memory``:

- ``buffer`` (default): the newest turns that fit ``LLMMagics.memory_tokens``;
- ``window``: the last ``k`` turns;
- ``summary``: a running summary, written by the model, plus the newest turns.

Memory is kept per named session (``--session NAME``), otherwise per collection, by the
``Session`` in ``session.py``. A turn is saved only after an answer succeeded, so a failed
call leaves memory as it was.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import UsageError

Message = dict


@dataclass
class Turn:
    question: str
    answer: str

    def messages(self) -> list[Message]:
        return [{"role": "user", "content": self.question}, {"role": "assistant", "content": self.answer}]


def _count(text: str, llm: Any = None) -> int:
    return llm.count_tokens(text) if llm is not None else max(1, len(text) // 4)


class Memory(ABC):
    """Turns of one conversation. ``messages()`` is what the next prompt sees."""

    kind: ClassVar[str]

    def __init__(self):
        self.turns: list[Turn] = []

    @abstractmethod
    def messages(self, llm: Any = None) -> list[Message]:
        """Chat messages to put before the next question (``llm`` counts tokens)."""

    def save(self, question: str, answer: str, llm: Any = None) -> None:
        """Remember one finished turn."""
        self.turns.append(Turn(question, answer))

    def reset(self) -> None:
        self.turns.clear()

    def __len__(self) -> int:
        return len(self.turns)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self.turns)} turns>"


class BufferMemory(Memory):
    """The newest turns whose text fits ``max_tokens`` tokens."""

    kind = "buffer"

    def __init__(self, max_tokens: int = 600):
        super().__init__()
        self.max_tokens = max_tokens

    def messages(self, llm: Any = None) -> list[Message]:
        kept: list[Turn] = []
        used = 0
        for turn in reversed(self.turns):
            cost = _count(turn.question, llm) + _count(turn.answer, llm)
            if used + cost > self.max_tokens:
                break
            kept.append(turn)
            used += cost
        return [m for t in reversed(kept) for m in t.messages()]

    def save(self, question, answer, llm=None):
        super().save(question, answer, llm)
        # Keep the store bounded: what no longer fits will never be shown again.
        while len(self.turns) > 1 and sum(_count(t.question, llm) + _count(t.answer, llm) for t in self.turns) > 4 * self.max_tokens:
            self.turns.pop(0)


class WindowMemory(Memory):
    """The last ``k`` turns."""

    kind = "window"

    def __init__(self, k: int = 3):
        super().__init__()
        if k < 1:
            raise UsageError(f"A window memory needs k >= 1, got {k}.")
        self.k = k

    def messages(self, llm: Any = None) -> list[Message]:
        return [m for t in self.turns[-self.k:] for m in t.messages()]


class SummaryMemory(Memory):
    """A summary of older turns (written by the model) plus the newest turns within ``max_tokens``.

    When the turns outgrow the budget, the oldest are folded into the summary with one
    model call (step ``summarize memory``) through the ``llm`` passed to ``save``.
    """

    kind = "summary"

    def __init__(self, max_tokens: int = 600, keep_turns: int = 1):
        super().__init__()
        self.max_tokens = max_tokens
        self.keep_turns = keep_turns
        self.summary = ""

    def _tokens(self, llm) -> int:
        return _count(self.summary, llm) * bool(self.summary) + sum(_count(t.question, llm) + _count(t.answer, llm) for t in self.turns)

    def messages(self, llm: Any = None) -> list[Message]:
        out: list[Message] = []
        if self.summary:
            out.append({"role": "user", "content": f"Summary of our conversation so far: {self.summary}"})
            out.append({"role": "assistant", "content": "OK."})
        return out + [m for t in self.turns for m in t.messages()]

    def save(self, question, answer, llm=None):
        super().save(question, answer, llm)
        if self._tokens(llm) <= self.max_tokens or len(self.turns) <= self.keep_turns:
            return
        old, self.turns = self.turns[: -self.keep_turns], self.turns[-self.keep_turns:]
        if llm is None or not hasattr(llm, "generate"):
            raise UsageError("A summary memory needs a model to summarise with; pass llm= to save().")
        from .chain_types import prompts

        lines = [m for t in old for m in t.messages()]
        text = llm.generate(prompts.render("summarize", summary=self.summary, messages=lines), step="summarize memory")
        self.summary = llm.truncate(text.strip(), self.max_tokens // 2) if hasattr(llm, "truncate") else text.strip()

    def reset(self):
        super().reset()
        self.summary = ""


KINDS: dict[str, type[Memory]] = {"buffer": BufferMemory, "window": WindowMemory, "summary": SummaryMemory}


def make(kind: str | None = None) -> Memory | None:
    """A new memory of ``kind`` (default ``LLMMagics.memory``); None for ``none``."""
    from .. import config

    s = config.settings()
    kind = (kind or getattr(s, "memory", "buffer") or "none").lower()
    if kind == "none":
        return None
    budget = int(getattr(s, "memory_tokens", 600))
    if kind == "buffer":
        return BufferMemory(budget)
    if kind == "window":
        return WindowMemory(int(getattr(s, "memory_window", 3)))
    if kind == "summary":
        return SummaryMemory(budget)
    raise UsageError(f"No memory kind {kind!r}. Known: buffer, window, summary, none. Set %config LLMMagics.memory = 'buffer'.")
