"""Vector stores: ``chroma`` (embedded, persistent; the default) and ``memory`` (exact, numpy)."""

from __future__ import annotations

from .base import VectorStore, Where, check_collection_name, matches

__all__ = ["VectorStore", "Where", "check_collection_name", "matches", "get_store_class"]


def get_store_class(name: str | None = None) -> type[VectorStore]:
    """The store class by registered name (default: the ``store`` setting)."""
    from ... import config, registry

    return registry.get("vector_store", name or config.settings().store)
