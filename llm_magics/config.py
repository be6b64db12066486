"""Settings: traitlets, so ``%config LLMMagics.model = "..."`` works in a notebook.

Precedence, lowest first: the defaults below, ``[tool.llm_magics]`` in a ``pyproject.toml``
in the working directory (next to the notebook), then ``%config`` or attribute assignment.
(The openai plugin falls back to ``$OPENAI_BASE_URL``/``$OPENAI_API_KEY`` itself, in one
place: ``openai_compat/client.py``.)
The same object serves scripts: ``llm_magics.config.settings()``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from traitlets import Bool, Dict, Float, Int, List, Unicode
from traitlets.config import Configurable

from .errors import UsageError


class LLMMagics(Configurable):
    """llm-magics settings. Change them with ``%config LLMMagics.NAME = VALUE``."""

    model = Unicode("smollm2-135m-instruct", help="Default generator: a registered name, a local path, or BACKEND:MODEL (e.g. openai:gpt-4o-mini).").tag(config=True)
    embedder = Unicode("all-minilm-l6-v2", help="Default embedder: a registered embedder name or a local model path.").tag(config=True)
    store = Unicode("chroma", help="Default vector store plugin (chroma, memory, or one a plugin adds).").tag(config=True)
    store_path = Unicode(".llm_magics/store", help="Folder for persistent vector stores, relative to the working directory.").tag(config=True)
    store_options = Dict(help='Options of the default store, e.g. {"url": "http://127.0.0.1:8000"} for a Chroma server (used when no store is named).').tag(config=True)
    chains_path = Unicode(".llm_magics/chains", help="Folder where %%chain saves each chain's YAML, relative to the working directory.").tag(config=True)
    collection = Unicode("default", help="Collection used when --collection is not given.").tag(config=True)
    splitter = Unicode("markdown", help="Default splitter: markdown (header-aware, also fine for plain text), recursive, character or token.").tag(config=True)
    chunk_size = Int(400, help="Default chunk size in characters (in tokens for the token splitter).").tag(config=True)
    chunk_overlap = Int(60, help="Default overlap between neighbouring chunks.").tag(config=True)
    embed_batch_size = Int(256, help="Chunks embedded per batch while ingesting.").tag(config=True)
    k = Int(4, help="How many chunks %%ask retrieves when it is given --k (else LLMMagics.context_budget decides).").tag(config=True)
    context_budget = Int(1000, help="Tokens of retrieved context %%ask hands the model: chunks best first until it is full, the last cut to fit (0: a fixed k).").tag(config=True)
    retrieval = Unicode("hybrid", help="How chunks are found: hybrid (BM25 and embeddings, fused by reciprocal rank) or dense (embeddings only).").tag(config=True)
    expand = Int(1, help="Neighbouring chunks handed on with each match, each side (small-to-big); 0 for the matched chunk alone.").tag(config=True)
    chain_type = Unicode("stuff", help="Default chain type: stuff, refine, map_reduce or map_rerank.").tag(config=True)
    temperature = Float(0.0, help="Sampling temperature; 0 is greedy.").tag(config=True)
    max_tokens = Int(256, help="Most tokens an answer may have.").tag(config=True)
    score_threshold = Float(0.25, help="Chunks less similar than this (cosine) count as not relevant.").tag(config=True)
    memory = Unicode("buffer", help="Conversation memory for %%ask: buffer, window, summary or none.").tag(config=True)
    memory_tokens = Int(600, help="Token budget of the conversation memory.").tag(config=True)
    memory_window = Int(3, help="Turns the window memory keeps (with LLMMagics.memory = 'window').").tag(config=True)
    callbacks = List(Unicode(), default_value=[], help="Callback handlers to switch on by name (e.g. logging, trace).").tag(config=True)
    trace_path = Unicode("", help="When set, the trace callback appends JSONL events to this file.").tag(config=True)
    openai_base_url = Unicode("", help="Base URL of an OpenAI-compatible server; defaults to $OPENAI_BASE_URL.").tag(config=True)
    openai_api_key = Unicode("", help="API key for the openai backend; defaults to $OPENAI_API_KEY. Never printed.").tag(config=True)
    openai_timeout = Float(60.0, help="Seconds before an OpenAI-compatible request times out.").tag(config=True)
    openai_context_window = Int(0, help="Context window of the OpenAI-compatible model; 0 asks the server (else 4096).").tag(config=True)
    openai_embedding_model = Unicode("text-embedding-3-small", help="Model id the openai embedder asks the server for.").tag(config=True)
    progress = Bool(True, help="Show progress bars for long work.").tag(config=True)

    def __repr__(self) -> str:  # keep the key out of reprs
        return f"<LLMMagics model={self.model!r} embedder={self.embedder!r} store={self.store!r}>"


_settings: LLMMagics | None = None
_lock = threading.Lock()


def settings() -> LLMMagics:
    """The settings in force (one object, shared by the magics and the Python API)."""
    global _settings
    with _lock:
        if _settings is None:
            _settings = LLMMagics()
            apply_pyproject(_settings)
            apply_environment(_settings)
        return _settings


def use(instance: LLMMagics | None) -> None:
    """Make ``instance`` the settings in force (the extension passes its shell-parented one)."""
    global _settings
    with _lock:
        _settings = instance


def apply_environment(s: LLMMagics) -> None:
    """Kept for callers; the only environment variables are the openai plugin's, read by it
    when it connects (``openai_compat.client.Connection.from_options``), not copied here."""


def apply_pyproject(s: LLMMagics, directory: str | Path | None = None) -> dict:
    """Read ``[tool.llm_magics]`` from ``pyproject.toml`` in ``directory`` (default: cwd)."""
    import tomllib

    path = Path(directory or os.getcwd()) / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"Could not read {path}: {e}. Fix the file or remove [tool.llm_magics].") from None
    table = data.get("tool", {}).get("llm_magics", {})
    for key, value in table.items():
        key = key.replace("-", "_")
        if not s.has_trait(key) or key in ("config", "parent", "log"):
            known = ", ".join(sorted(s.class_own_traits(config=True)))
            raise UsageError(f"Unknown setting {key!r} in [tool.llm_magics] of {path}. Known: {known}.")
        try:
            setattr(s, key, value)
        except Exception as e:  # traitlets.TraitError
            raise UsageError(f"Bad value for {key} in {path}: {e}") from None
    return table
