"""The one loaded-model cache: a runtime model per (model, dtype), shared process-wide.

The local backend, the local embedder and the widgets load through ``load_runtime_model``,
so a model is in memory once however many of them use it, whatever name they call it by
(``smollm2``, ``smollm2-135m-instruct`` and its path share one entry). ``unload`` frees it
(``%llm unload [NAME]``); ``loads`` counts the loads this process made, per key.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Literal

from ..errors import UsageError

_loaded: dict[tuple[str, str], object] = {}  # (model file or folder, dtype) -> a loaded runtime model
_load_lock = threading.Lock()
loads: Counter = Counter()  # (model file or folder, dtype) -> how many times it was loaded


def _key(model: str, dtype: str) -> tuple[str, str]:
    from . import resolve

    return (str(resolve(model).path), dtype)


def load_runtime_model(model: str, dtype: str = "float32", kind: Literal["encoder", "decoder"] | None = None, hint: str = ""):
    """A model on our runtime, loaded once per process (imports torch on first call).

    ``kind`` is what the caller needs (None: either); a model of the other kind raises a
    UsageError ending in ``hint``.
    """
    from . import resolve

    spec = resolve(model)
    key = (str(spec.path), dtype)
    with _load_lock:
        if key not in _loaded:
            from .. import runtime

            _loaded[key] = runtime.load(spec, dtype=dtype)
            loads[key] += 1
        loaded = _loaded[key]
    if kind is not None and loaded.config.kind != kind:
        raise UsageError(f"{model!r} is {'an' if loaded.config.kind == 'encoder' else 'a'} {loaded.config.kind} ({loaded.name}); {hint}")
    return loaded


def unload(model: str | None = None) -> list[str]:
    """Free the loaded copies of ``model`` (every dtype), or of every model; returns their names."""
    path = _key(model, "")[0] if model is not None else None
    with _load_lock:
        keys = [k for k in _loaded if path is None or k[0] == path]
        names = sorted({getattr(_loaded[k], "name", k[0]) for k in keys})
        for key in keys:
            del _loaded[key]
    if keys:
        import gc

        gc.collect()
    return names


def loaded() -> list[tuple[str, str]]:
    """The (model file or folder, dtype) pairs in memory now."""
    with _load_lock:
        return list(_loaded)
