"""Every hook llm-magics calls, in one file.

A plugin is a module or object with functions marked ``@hookimpl`` whose names match
these specs. Collection hooks take a ``register`` callback and call it once per thing
they provide; nothing is returned. Implementations may accept fewer arguments than the
spec, so hooks can grow new arguments without breaking plugins.

Each hook is documented, with an example, in ``docs/plugin_hooks.md``; a test fails when a
hook is added here without documentation or a test.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "llm_magics"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


@hookspec
def register_models(register: Callable[..., None]) -> None:
    """Name local model files, called once when the model registry is first used.

    Call ``register(name, locate, role, aliases=(), description="")`` for each model:
    ``locate`` is a path, or a zero-argument callable returning one (so a package that
    holds the weights is found without importing it); ``role`` is ``"generator"`` or
    ``"embedder"``. Returns nothing.
    """


# ---------------------------------------------------------------------------
# Documents: loaders and splitters
# ---------------------------------------------------------------------------


@hookspec
def register_loaders(register: Callable[..., None]) -> None:
    """Provide document loaders, called once when the loader registry is first used.

    Call ``register(LoaderClass)`` for each subclass of ``llm_magics.ingest.loaders.Loader``; its
    ``name``, ``extensions`` and ``schemes`` class attributes decide when it is chosen.
    Returns nothing.
    """


@hookspec
def register_splitters(register: Callable[..., None]) -> None:
    """Provide text splitters, called once when the splitter registry is first used.

    Call ``register(SplitterClass)`` for each subclass of ``llm_magics.ingest.splitters.Splitter``.
    Returns nothing.
    """


# ---------------------------------------------------------------------------
# Vectors: embedders and vector stores
# ---------------------------------------------------------------------------


@hookspec
def register_embedders(register: Callable[..., None]) -> None:
    """Provide embedding models, called once when the embedder registry is first used.

    Call ``register(EmbedderClass, aliases=())`` for each subclass of
    ``llm_magics.ingest.embedders.Embedder``. Returns nothing.
    """


@hookspec
def register_vector_stores(register: Callable[..., None]) -> None:
    """Provide vector stores, called once when the store registry is first used.

    Call ``register(StoreClass)`` for each subclass of ``llm_magics.ingest.stores.VectorStore``.
    Returns nothing.
    """


# ---------------------------------------------------------------------------
# Generation: model backends, chain types, output parsers, callbacks
# ---------------------------------------------------------------------------


@hookspec
def register_backends(register: Callable[..., None]) -> None:
    """Provide model backends, called once when the backend registry is first used.

    Call ``register(BackendClass, aliases=())`` for each subclass of
    ``llm_magics.backends.Backend``. A model is then named ``BACKEND:MODEL``
    (``openai:gpt-4o-mini``), or by a bare name that the ``local`` backend resolves.
    Returns nothing.
    """


@hookspec
def register_chain_types(register: Callable[..., None]) -> None:
    """Provide retrieval-QA chain types (``stuff``, ``refine``, ...), called once on first use.

    Call ``register(ChainTypeClass)`` for each subclass of ``llm_magics.qa.chain_types.ChainType``.
    Returns nothing.
    """


@hookspec
def register_output_parsers(register: Callable[..., None]) -> None:
    """Provide output parsers (``json``, ``list``, ``regex``, ...), called once on first use.

    Call ``register(ParserClass)`` for each subclass of ``llm_magics.qa.parsers.OutputParser``.
    Returns nothing.
    """


@hookspec
def register_callbacks(register: Callable[..., None]) -> None:
    """Provide callback handlers (logging, timing, tracing), called once on first use.

    Call ``register(HandlerClass)`` for each subclass of
    ``llm_magics.qa.callbacks.CallbackHandler``. A handler whose class attribute
    ``always_on`` is true receives every run's events; others are switched on by name.
    Returns nothing.
    """


# ---------------------------------------------------------------------------
# Agents: tools
# ---------------------------------------------------------------------------


@hookspec
def register_tools(register: Callable[..., None]) -> None:
    """Provide tools for agents, called each time the tool registry is looked up.

    Call ``register(tool)`` for each ``llm_magics.agents.Tool`` (or a typed function with a
    docstring, turned into one); its ``name`` is what ``%%agent --tools`` and
    ``Agent(tools=[...])`` use. Returns nothing.
    """


# ---------------------------------------------------------------------------
# Fine-tuning: experiment trackers
# ---------------------------------------------------------------------------


@hookspec
def register_trackers(register: Callable[..., None]) -> None:
    """Provide experiment trackers for fine-tuning, called once when a tracker is first looked up.

    Call ``register(TrackerClass)`` for each subclass of ``llm_magics.finetune.Tracker``; its
    ``name`` is what ``%finetune --tracker NAME`` and ``finetune.train(tracker=NAME)`` use.
    Returns nothing.
    """


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


@hookspec
def register_settings(register: Callable[..., None]) -> None:
    """Provide a plugin's own settings, called when ``%llm settings`` lists them.

    Call ``register(SettingsClass)`` with a ``traitlets.config.Configurable`` subclass whose
    traits are tagged ``config=True``. Read the values with ``config.section(SettingsClass)``:
    users set them with ``%config SettingsClass.NAME = VALUE`` or ``[tool.llm_magics.SettingsClass]``
    in ``pyproject.toml``. Returns nothing.
    """
