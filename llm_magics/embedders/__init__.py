"""Embedders: the default one runs all-MiniLM-L6-v2 on our own runtime."""

from .base import Embedder

__all__ = ["Embedder", "get_embedder"]


def get_embedder(name: str | None = None, **options) -> Embedder:
    """An embedder instance by registered name (default: the configured embedder)."""
    from .. import config, registry

    name = name or config.settings().embedder
    if name not in registry.entries("embedder") and _is_local_model(name):
        # A model name or path the runtime can load: the built-in local embedder serves it.
        return registry.get("embedder", "local")(model=name, **options)
    return registry.get("embedder", name)(**options)


def _is_local_model(name: str) -> bool:
    from .. import models
    from ..errors import UsageError

    try:
        models.resolve(name)
    except UsageError:
        return False
    return True
