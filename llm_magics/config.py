"""Settings: traitlets, so ``%config LLMMagics.model = "..."`` works in a notebook.

Precedence, lowest first: the defaults below, ``[tool.llm_magics]`` in a ``pyproject.toml``
in the working directory (next to the notebook), then ``%config`` or attribute assignment.
The same object serves scripts: ``llm_magics.config.settings()``.

A plugin owns its settings: it registers a ``Configurable`` subclass with the
``register_settings`` hook and reads its values with ``config.section(ThatClass)``. The
instance is parented to the notebook's shell, so ``%config ThatClass.NAME = VALUE`` works
(also before the plugin first loads: the value waits in the shell's config), and
``[tool.llm_magics.ThatClass]`` in ``pyproject.toml`` sets its defaults. The core knows no
plugin's settings; ``MOVED`` forwards the names that used to live on ``LLMMagics``.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

from traitlets import Bool, Dict, Float, Int, List, Unicode
from traitlets.config import Config, Configurable

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
    embed_headings = Bool(True, help="Embed each chunk with the header it sits under (else its document's title) in front (the stored text stays the chunk's own); switching it re-embeds a collection on its next %ingest.").tag(config=True)
    embed_batch_size = Int(256, help="Chunks embedded per batch while ingesting.").tag(config=True)
    k = Int(4, help="How many chunks %%ask retrieves when it is given --k (else LLMMagics.context_budget decides).").tag(config=True)
    context_budget = Int(1000, help="Tokens of retrieved context %%ask hands the model: chunks best first until it is full, the last cut to fit (0: a fixed k).").tag(config=True)
    retrieval = Unicode("hybrid", help="How chunks are found: hybrid (BM25 and embeddings, fused) or dense (embeddings only).").tag(config=True)
    fusion = Unicode("convex", help="How hybrid retrieval fuses BM25 and embeddings: convex (cosine and BM25 scores, each scaled to 0..1 over its candidates, added with equal weights) or rrf (reciprocal rank fusion).").tag(config=True)
    expand = Int(1, help="Neighbouring chunks handed on with each match, each side (small-to-big); 0 for the matched chunk alone.").tag(config=True)
    chain_type = Unicode("stuff", help="Default chain type: stuff, refine, map_reduce or map_rerank.").tag(config=True)
    format = Unicode("auto", help="Default --format of %%ask: text, quote (the passage sentence that says what the model answered), auto (quote for questions on the stuff chain; text for requests to summarize, explain, describe, compare, list or write, and other chains), or any output parser.").tag(config=True)
    temperature = Float(0.0, help="Sampling temperature; 0 is greedy.").tag(config=True)
    max_tokens = Int(256, help="Most tokens an answer may have.").tag(config=True)
    score_threshold = Float(0.25, help="Chunks less similar than this (cosine) count as not relevant.").tag(config=True)
    memory = Unicode("buffer", help="Conversation memory for %%ask: buffer, window, summary or none.").tag(config=True)
    memory_tokens = Int(600, help="Token budget of the conversation memory.").tag(config=True)
    memory_window = Int(3, help="Turns the window memory keeps (with LLMMagics.memory = 'window').").tag(config=True)
    callbacks = List(Unicode(), default_value=[], help="Callback handlers to switch on by name (e.g. logging, trace).").tag(config=True)
    trace_path = Unicode("", help="When set, the trace callback appends JSONL events to this file.").tag(config=True)
    progress = Bool(True, help="Show progress bars for long work.").tag(config=True)

    def __repr__(self) -> str:
        return f"<LLMMagics model={self.model!r} embedder={self.embedder!r} store={self.store!r}>"

    def _load_config(self, cfg, section_names=None, traits=None):
        """Forward settings that moved to a plugin's section (``MOVED``), with a warning."""
        mine = cfg.get(type(self).__name__) if isinstance(cfg, dict) else None
        if mine:
            moved = {k: mine[k] for k in list(mine) if k in MOVED}
            if moved:
                cfg = Config(cfg)  # a copy: the shell keeps the old names, we forward them
                cfg[type(self).__name__] = Config({k: v for k, v in mine.items() if k not in moved})
                for key, value in moved.items():
                    _forward(key, value, f"%config LLMMagics.{key}")
        super()._load_config(cfg, section_names, traits)


#: Settings that left ``LLMMagics`` for a plugin's own section: old name -> (section, name).
#: The old names still work for now, with a DeprecationWarning that gives the new one.
MOVED: dict[str, tuple[str, str]] = {
    "openai_base_url": ("OpenAICompat", "base_url"),
    "openai_api_key": ("OpenAICompat", "api_key"),
    "openai_timeout": ("OpenAICompat", "timeout"),
    "openai_context_window": ("OpenAICompat", "context_window"),
    "openai_embedding_model": ("OpenAICompat", "embedding_model"),
}


_settings: LLMMagics | None = None
_lock = threading.RLock()
_sections: dict[type, Configurable] = {}  # a plugin's settings class -> its instance in force
_forwarded: dict[str, dict] = {}  # values given under a MOVED name, by section, until it exists


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
    """Make ``instance`` the settings in force (the extension passes its shell-parented one).

    Plugin sections made for the previous settings are dropped (and taken off their shell's
    ``%config`` list); the next ``section()`` call makes them again under the new parent.
    """
    global _settings
    with _lock:
        for old in _sections.values():
            shell = old.parent
            if shell is not None and old in getattr(shell, "configurables", []):
                shell.configurables.remove(old)
        _sections.clear()
        _settings = instance


def section(cls: type[Configurable]) -> Configurable:
    """The instance in force of a plugin's settings class (made on first use).

    Its values, lowest first: the class defaults, ``[tool.llm_magics.CLASSNAME]`` in
    ``pyproject.toml``, then ``%config CLASSNAME.NAME = VALUE`` (or attribute assignment).
    """
    with _lock:
        instance = _sections.get(cls)
        if instance is None:
            instance = _sections[cls] = _make_section(cls)
        return instance


def _make_section(cls: type[Configurable]) -> Configurable:
    name = cls.__name__
    shell = settings().parent
    instance = cls(parent=shell) if shell is not None else cls()
    given = shell.config.get(name, {}) if shell is not None else {}  # %config values win
    table = _pyproject_table().get(name, {})
    if not isinstance(table, dict):
        raise UsageError(f"[tool.llm_magics.{name}] in pyproject.toml must be a table, e.g. [tool.llm_magics.{name}] then NAME = VALUE lines.")
    for key, value in [*table.items(), *_forwarded.pop(name, {}).items()]:
        key = key.replace("-", "_")
        if key not in given:
            _set(instance, key, value, f"[tool.llm_magics.{name}]")
    if shell is not None and hasattr(shell, "configurables") and instance not in shell.configurables:
        shell.configurables.append(instance)
    return instance


def _forward(old: str, value, where: str) -> None:
    """Set a ``MOVED`` setting under its new name (now, or when its section is made)."""
    name, key = MOVED[old]
    warnings.warn(f"{where} moved: use %config {name}.{key} (or [tool.llm_magics.{name}] {key} = ... in pyproject.toml).",
                  DeprecationWarning, stacklevel=3)
    with _lock:
        for cls, instance in _sections.items():
            if cls.__name__ == name:
                setattr(instance, key, value)
                return
        _forwarded.setdefault(name, {})[key] = value


def apply_environment(s: LLMMagics) -> None:
    """Kept for callers; the only environment variables are the openai plugin's, read by it
    when it connects (``openai_compat.client.Connection.from_options``), not copied here."""


def _pyproject_table(directory: str | Path | None = None) -> dict:
    import tomllib

    path = Path(directory or os.getcwd()) / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"Could not read {path}: {e}. Fix the file or remove [tool.llm_magics].") from None
    return data.get("tool", {}).get("llm_magics", {})


def apply_pyproject(s: LLMMagics, directory: str | Path | None = None) -> dict:
    """Read ``[tool.llm_magics]`` from ``pyproject.toml`` in ``directory`` (default: cwd).

    Sub-tables (``[tool.llm_magics.OpenAICompat]``) belong to plugin sections and are read
    when the section is made (``section()``).
    """
    table = _pyproject_table(directory)
    path = Path(directory or os.getcwd()) / "pyproject.toml"
    for key, value in table.items():
        if isinstance(value, dict):
            continue  # a plugin's section
        key = key.replace("-", "_")
        if key in MOVED:
            _forward(key, value, f"{key} in [tool.llm_magics] of {path}")
            continue
        _set(s, key, value, f"[tool.llm_magics] of {path}")
    return table


def _set(obj: Configurable, key: str, value, where: str) -> None:
    if not obj.has_trait(key) or key in ("config", "parent", "log"):
        known = ", ".join(sorted(type(obj).class_own_traits(config=True)))
        raise UsageError(f"Unknown setting {key!r} in {where}. Known: {known}.")
    try:
        setattr(obj, key, value)
    except Exception as e:  # traitlets.TraitError
        raise UsageError(f"Bad value for {key} in {where}: {e}") from None
