"""Embedders: the default one runs all-MiniLM-L6-v2 on our own runtime."""

from .base import Embedder

__all__ = ["Embedder", "get_embedder"]


def get_embedder(name: str | None = None, **options) -> Embedder:
    """An embedder instance by registered name (default: the configured embedder)."""
    from ... import config, registry

    name = name or config.settings().embedder
    backend, sep, model = name.partition(":")
    if sep and backend in registry.entries("embedder") and not (len(name) > 2 and name[2] in "\\/"):
        # EMBEDDER:MODEL, as for backends: openai:text-embedding-3-small
        return registry.get("embedder", backend)(model=model, **options)
    if name not in registry.entries("embedder") and _is_local_model(name):
        # A model name or path the runtime can load: the built-in local embedder serves it.
        return registry.get("embedder", "local")(model=name, **options)
    return registry.get("embedder", name)(**options)


def _is_local_model(name: str) -> bool:
    from ... import models
    from ...errors import UsageError

    try:
        models.resolve(name)
    except UsageError:
        return False
    return True
