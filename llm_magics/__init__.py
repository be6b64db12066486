"""llm-magics: transformer internals and LLM applications in notebook cells.

``%load_ext llm_magics`` registers ``%ingest``, ``%%ask``, ``%chain``, ``%attnviz`` and
``%llm``. Every magic is a thin layer over the Python API re-exported here, which works
without IPython. Importing this package is cheap: torch, chromadb and tokenizers are
imported on first use.
"""

from __future__ import annotations

import importlib

from .errors import UsageError
from .hookspecs import hookimpl

__version__ = "0.1.0"

# name -> module it lives in; imported on first attribute access (PEP 562).
_LAZY = {
    "Index": "llm_magics.ingest.index",
    "Answer": "llm_magics.qa.answer",
    "ask": "llm_magics.qa.pipeline",
    "Chain": "llm_magics.chain",
    "AttentionWidget": "llm_magics.widgets",
    "RetrievalWidget": "llm_magics.widgets",
    "get_model": "llm_magics.backends",
    "get_embedder": "llm_magics.ingest.embedders",
    "Document": "llm_magics.ingest.documents",
    "Chunk": "llm_magics.ingest.documents",
    "Hit": "llm_magics.ingest.documents",
    "settings": "llm_magics.config",
    "size": "llm_magics.sizing",
}

__all__ = ["UsageError", "hookimpl", "load_ipython_extension", "unload_ipython_extension", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llm_magics' has no attribute {name!r}")


_instances: dict[int, tuple] = {}


def load_ipython_extension(ipython) -> None:
    """``%load_ext llm_magics``: register the magics and the ``LLMMagics`` settings."""
    from . import config
    from .magics import register_magics

    if id(ipython) in _instances:
        return
    settings = config.LLMMagics(parent=ipython)
    config.apply_pyproject(settings)
    config.apply_environment(settings)
    config.use(settings)
    ipython.configurables.append(settings)
    _instances[id(ipython)] = (settings, register_magics(ipython))


def unload_ipython_extension(ipython) -> None:
    """``%unload_ext llm_magics``: remove the magics and the settings object."""
    from .magics import unregister_magics

    settings, instances = _instances.pop(id(ipython), (None, []))
    unregister_magics(ipython, instances)
    if settings in ipython.configurables:
        ipython.configurables.remove(settings)
