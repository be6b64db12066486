"""Errors a user can fix.

`UsageError` is raised for mistakes a user can correct (an unknown model, a missing
collection, a bad option). Its message always says how to fix it. The magics turn it
into IPython's `UsageError`, so a notebook shows one red line instead of a traceback.
"""

from __future__ import annotations


class LLMMagicsError(Exception):
    """Base class for every error llm-magics raises on purpose."""


class UsageError(LLMMagicsError, ValueError):
    """A user mistake; the message says what to do instead."""


class PluginError(LLMMagicsError):
    """A plugin failed to import or raised inside a hook."""


def unknown(kind: str, name: str, known, hint: str = "") -> UsageError:
    """`No loader 'foo'. Known: a, b, c. <hint>` as a UsageError."""
    names = ", ".join(sorted(known)) or "(none)"
    message = f"No {kind} {name!r}. Known: {names}."
    if hint:
        message += f" {hint}"
    return UsageError(message)
