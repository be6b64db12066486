"""The ask session: the conversation memories and the last answer, in one object.

``ask`` keeps a memory per collection (or per named ``session``) so a follow-up question
sees the earlier turns, and records its newest ``Answer`` for ``%attnviz --last``. Both
live in the process's ``Session`` (``current()``); ``reset()`` forgets everything::

    from llm_magics.qa import session
    session.current().last                         # the newest Answer, or None
    session.current().forget(collection="docs")    # what %ask --reset does
    session.current().reset()                      # memories and last answer (tests do this)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .memory import Memory, make

if TYPE_CHECKING:
    from .answer import Answer


class Session:
    """Conversation memories by key (``session:NAME`` or ``collection:NAME``) and the last answer."""

    def __init__(self) -> None:
        self._memories: dict[str, Memory] = {}
        self._last: Answer | None = None
        self._lock = threading.Lock()

    # -- keys ----------------------------------------------------------------

    @staticmethod
    def key(session: str | None = None, collection: str | None = None, index: Any = None) -> str:
        """``session:NAME`` for a named session, else ``collection:NAME`` (of ``index`` if given)."""
        if session:
            return f"session:{session}"
        from .. import config

        collection = collection or getattr(index, "collection", None) or getattr(index, "name", None)
        return f"collection:{collection or config.settings().collection}"

    # -- memories ------------------------------------------------------------

    def memory(self, key: str, kind: str | None = None) -> Memory | None:
        """The memory of ``key``, created on first use (kind: ``LLMMagics.memory``); None for ``none``.

        When the configured kind changes, the turns carry over to a memory of the new kind.
        """
        with self._lock:
            memory = self._memories.get(key)
            wanted = make(kind)
            if wanted is None:
                return None
            if memory is None or type(memory) is not type(wanted):
                if memory is not None:
                    wanted.turns = list(memory.turns)
                self._memories[key] = memory = wanted
            return memory

    def memories(self) -> dict[str, Memory]:
        with self._lock:
            return dict(self._memories)

    def forget(self, key: str | None = None, *, session: str | None = None, collection: str | None = None, index: Any = None) -> int:
        """Forget one conversation (by ``key``, or by session/collection/index); returns how many were cleared."""
        key = key or self.key(session, collection, index)
        with self._lock:
            memory = self._memories.pop(key, None)
        if memory is not None:
            memory.reset()
        return int(memory is not None)

    # -- the last answer -------------------------------------------------------

    @property
    def last(self) -> Answer | None:
        """The most recent Answer (``%attnviz --last`` reads it)."""
        return self._last

    def remember(self, answer: Answer) -> None:
        """Make ``answer`` the last one. Captured attention is large (layers × heads × answer
        tokens × prompt tokens): only the newest answer keeps it."""
        with self._lock:
            previous, self._last = self._last, answer
        if previous is not None and previous is not answer:
            previous.extras.pop("attention", None)

    # -- everything ------------------------------------------------------------

    def reset(self) -> int:
        """Forget every conversation and the last answer; returns how many conversations were cleared."""
        with self._lock:
            memories, self._memories, self._last = list(self._memories.values()), {}, None
        for memory in memories:
            memory.reset()
        return len(memories)


_current = Session()


def current() -> Session:
    """The process's session (one per kernel), shared by ``ask``, ``%%ask`` and ``%attnviz``."""
    return _current


def last_answer() -> Answer | None:
    """The most recent Answer of this session."""
    return _current.last
