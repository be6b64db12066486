"""Small helpers the magics share."""

from __future__ import annotations

import functools
import shlex

from IPython.core.error import UsageError as IPythonUsageError

from .. import errors


def user_errors(method):
    """Turn llm-magics' UsageError into IPython's, so a notebook shows one line, not a traceback."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except errors.UsageError as e:
            raise IPythonUsageError(str(e)) from None

    return wrapper


def bind(shell, name: str | None, value) -> None:
    """Store ``value`` in the user namespace as ``name`` (``-o NAME``)."""
    if name:
        if not name.isidentifier():
            raise errors.UsageError(f"-o needs a Python name, got {name!r}.")
        shell.user_ns[name] = value


def split_words(line: str) -> list[str]:
    """Shell-like split of a magic line that reports bad quoting as a UsageError."""
    try:
        return shlex.split(line)
    except ValueError as e:
        raise errors.UsageError(f"Could not parse {line!r}: {e}. Check the quotes.") from None
