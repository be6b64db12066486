"""The one loaded-model cache: a runtime model per (model, dtype), shared process-wide.

The local backend, the local embedder and the widgets load through ``load_runtime_model``,
so a model is in memory once however many of them use it. ``unload`` frees it.
"""

from __future__ import annotations

import threading
from typing import Literal

from ..errors import UsageError

_loaded: dict[tuple[str, str], object] = {}  # (model, dtype) -> a loaded runtime model, shared process-wide
_load_lock = threading.Lock()


def load_runtime_model(model: str, dtype: str, kind: Literal["encoder", "decoder"], hint: str):
    """A model on our runtime, loaded once per process (imports torch on first call).

    ``kind`` is what the caller needs; a model of the other kind raises a UsageError ending in ``hint``.
    """
    with _load_lock:
        key = (model, dtype)
        if key not in _loaded:
            from .. import runtime

            loaded = runtime.load(model, dtype=dtype)
            _loaded[key] = loaded
        loaded = _loaded[key]
    if loaded.config.kind != kind:
        raise UsageError(f"{model!r} is {'an' if loaded.config.kind == 'encoder' else 'a'} {loaded.config.kind} ({loaded.name}); {hint}")
    return loaded


def unload(model: str | None = None) -> list[str]:
    """Free the loaded copies of ``model`` (every dtype), or of every model; returns their names."""
    with _load_lock:
        keys = [k for k in _loaded if model is None or k[0] == model]
        for key in keys:
            del _loaded[key]
    if keys:
        import gc

        gc.collect()
    return sorted({k[0] for k in keys})


def loaded() -> list[tuple[str, str]]:
    """The (model, dtype) pairs in memory now."""
    with _load_lock:
        return list(_loaded)
