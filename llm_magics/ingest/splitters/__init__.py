"""Text splitters: documents in, chunks that carry ``start_index`` out."""

from __future__ import annotations

from .base import Splitter, SplitterOptions, recursive_spans, strip_span

__all__ = ["Splitter", "SplitterOptions", "get_splitter", "recursive_spans", "strip_span"]


def get_splitter(name: str | None = None, embedder=None, **options) -> Splitter:
    """A splitter by registered name (default: the ``splitter`` setting)."""
    from ... import config, registry

    name = name or config.settings().splitter
    return registry.get("splitter", name)(embedder=embedder, **options)
