"""The callback extension point: a handler with one method per event, and a dispatcher.

Event names follow LangChain (``on_llm_new_token``, ``on_retriever_end`` ...). Every
method takes keyword arguments only and must accept extra ones (``**kwargs``), so events
can grow new fields without breaking handlers. ``run_id`` identifies one ``ask`` or
``Chain.run`` call; ``step`` names the model call inside it (``stuff``, ``map 2/4``,
``refine 3/4``, ``reduce``, ``retry``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, ClassVar, Iterable

from ...extension import Extension

log = logging.getLogger(__name__)

EVENTS = (
    "on_llm_start",
    "on_llm_new_token",
    "on_llm_end",
    "on_llm_error",
    "on_chain_start",
    "on_chain_end",
    "on_retriever_start",
    "on_retriever_end",
)


class CallbackHandler(Extension):
    """Hears events; override the ones you care about. Every method is a no-op here.

    ``always_on`` handlers receive every run's events; the others are switched on by
    name (``LLMMagics.callbacks = ["logging"]`` or ``ask(..., callbacks=["logging"])``).
    """

    kind: ClassVar[str] = "callback"
    always_on: ClassVar[bool] = False

    def on_llm_start(self, *, model: str, messages: list[dict], params: Any, step: str, run_id: str, **kwargs) -> None:
        """A model call starts with these chat messages."""

    def on_llm_new_token(self, *, token: str, step: str, run_id: str, **kwargs) -> None:
        """The model produced a piece of text."""

    def on_llm_end(self, *, text: str, usage: Any, step: str, run_id: str, **kwargs) -> None:
        """A model call finished (also when interrupted: ``usage.finish_reason``)."""

    def on_llm_error(self, *, error: BaseException, step: str, run_id: str, **kwargs) -> None:
        """A model call raised."""

    def on_chain_start(self, *, name: str, inputs: dict, run_id: str, **kwargs) -> None:
        """A chain (a chain type, or a ``%chain`` step) starts."""

    def on_chain_end(self, *, name: str, outputs: dict, run_id: str, **kwargs) -> None:
        """A chain finished."""

    def on_retriever_start(self, *, query: str, run_id: str, **kwargs) -> None:
        """Retrieval starts for ``query``."""

    def on_retriever_end(self, *, query: str, hits: list, run_id: str, **kwargs) -> None:
        """Retrieval returned ``hits`` (a list of ``Hit``)."""


class CallbackManager:
    """Sends each event to every handler. A handler that raises is logged and skipped.

    A failing handler never breaks the run: its error is recorded in ``errors`` as
    ``(handler name, event, message)``.
    """

    def __init__(self, handlers: Iterable[CallbackHandler] = (), run_id: str | None = None):
        self.handlers: list[CallbackHandler] = list(handlers)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.errors: list[tuple[str, str, str]] = []

    @classmethod
    def for_run(cls, names_or_handlers: Iterable[str | CallbackHandler] | None = None) -> "CallbackManager":
        """Handlers for one run: every ``always_on`` plugin, the configured names, and ``extra``.

        Names come from ``LLMMagics.callbacks`` and ``names_or_handlers``; instances are used as given.
        """
        from ... import config, registry

        handlers: list[CallbackHandler] = []
        wanted: list[str] = list(getattr(config.settings(), "callbacks", []) or [])
        for item in names_or_handlers or ():
            if isinstance(item, str):
                wanted.append(item)
            else:
                handlers.append(item)
        chosen = {e.name: e.obj for e in registry.unique("callback") if getattr(e.obj, "always_on", False)}
        for name in wanted:
            cls_ = registry.get("callback", name)
            chosen[cls_.name] = cls_
        handlers = [c() for c in chosen.values()] + handlers
        return cls(handlers)

    def get(self, name: str) -> CallbackHandler | None:
        """The first handler named ``name`` (e.g. ``timing``), or None."""
        return next((h for h in self.handlers if getattr(h, "name", None) == name), None)

    def add(self, handler: CallbackHandler) -> None:
        self.handlers.append(handler)

    def _dispatch(self, event: str, kwargs: dict) -> None:
        kwargs.setdefault("run_id", self.run_id)
        for handler in self.handlers:
            try:
                getattr(handler, event)(**kwargs)
            except Exception as e:  # noqa: BLE001 - a callback must never break the run
                name = getattr(handler, "name", type(handler).__name__)
                self.errors.append((name, event, f"{type(e).__name__}: {e}"))
                log.warning("callback %s failed in %s: %s: %s", name, event, type(e).__name__, e)

    def __getattr__(self, event: str):
        if event in EVENTS:
            return lambda **kwargs: self._dispatch(event, kwargs)
        raise AttributeError(event)
