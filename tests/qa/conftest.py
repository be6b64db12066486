"""Fixtures for the %%ask / %chain tests.

``scripted`` registers a test-double backend plugin (like simonw/llm's MockModel): tests
``enqueue`` replies, and each model call takes the next one. The real default model and
embedder are loaded once per session for the end-to-end tests.
"""

from __future__ import annotations

import collections
import re
from typing import ClassVar

import pytest

from llm_magics import config, plugins
from llm_magics.qa import session
from llm_magics.backends.base import Backend
from llm_magics.ingest.documents import Hit
from llm_magics.hookspecs import hookimpl


class ScriptedBackend(Backend):
    """Replies from a queue; an Exception in the queue is raised, a callable gets the messages."""

    name = "scripted"
    default_model = "scripted-1"
    queue: ClassVar[collections.deque] = collections.deque()
    calls: ClassVar[list] = []
    window: ClassVar[int] = 2048
    default_reply: ClassVar[str] = "ok"
    interrupt_after: ClassVar[int | None] = None  # raise KeyboardInterrupt after N pieces

    @property
    def context_window(self) -> int:
        return self.window

    def stream(self, messages, params, usage):
        type(self).calls.append({"messages": messages, "params": params})
        reply = self.queue.popleft() if self.queue else self.default_reply
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            reply = reply(messages)
        usage.prompt_tokens = sum(self.count_tokens(m["content"]) for m in messages)
        pieces = re.findall(r"\S+\s*|\s+", reply)
        for i, piece in enumerate(pieces):
            if self.interrupt_after is not None and i == self.interrupt_after:
                usage.finish_reason = "interrupted"
                raise KeyboardInterrupt
            usage.completion_tokens += 1
            yield piece
        usage.finish_reason = "stop"


class ScriptedPlugin:
    @hookimpl
    def register_backends(self, register):
        register(ScriptedBackend)


@pytest.fixture
def scripted():
    """The scripted backend, registered for one test; ``scripted.enqueue(*replies)``."""
    ScriptedBackend.queue.clear()
    ScriptedBackend.calls.clear()
    ScriptedBackend.window = 2048
    ScriptedBackend.interrupt_after = None
    ScriptedBackend.enqueue = classmethod(lambda cls, *r: cls.queue.extend(r))
    name = plugins.register(ScriptedPlugin(), "test-scripted-backend")
    try:
        yield ScriptedBackend
    finally:
        plugins.unregister(name)
        ScriptedBackend.queue.clear()


@pytest.fixture(autouse=True)
def fresh_state(tmp_path, monkeypatch):
    """Each test starts with default settings, no memory and its own working folder."""
    monkeypatch.chdir(tmp_path)
    s = config.LLMMagics()
    config.use(s)
    session.current().reset()
    yield s
    session.current().reset()


class ListIndex:
    """An in-memory stand-in for ``Index``: word-overlap scores over fixed chunks."""

    def __init__(self, chunks: list[tuple[str, dict]], collection: str = "docs"):
        self.chunks = chunks
        self.collection = collection
        self.queries: list[str] = []

    def search(self, query: str, k: int = 4) -> list[Hit]:
        self.queries.append(query)
        q = set(re.findall(r"[a-z]+", query.lower()))
        hits = []
        for i, (text, md) in enumerate(self.chunks):
            words = set(re.findall(r"[a-z]+", text.lower()))
            score = len(q & words) / max(1, len(q))
            hits.append(Hit(text, score, dict(md), id=f"c{i}"))
        return sorted(hits, key=lambda h: -h.score)[:k]


@pytest.fixture
def index():
    return ListIndex(
        [
            ("Paris is the capital of France. The Eiffel tower stands in Paris.", {"source": "france.txt", "start_index": 0}),
            ("Berlin is the capital of Germany. The Brandenburg gate is in Berlin.", {"source": "germany.txt", "start_index": 0}),
            ("Rome is the capital of Italy. The Colosseum is in Rome.", {"source": "italy.pdf", "page": 2, "start_index": 120}),
        ]
    )
