"""Callbacks: handlers that hear what a run does (retrieval, chain steps, model calls).

Handlers register through the ``register_callbacks`` hook; ``logging``, ``timing`` and
``trace`` are built-in plugins (``llm_magics.qa.callbacks.builtin``).
"""

from .base import CallbackHandler, CallbackManager

__all__ = ["CallbackHandler", "CallbackManager"]
