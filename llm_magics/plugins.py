"""The plugin manager: built-ins, then entry points, loaded lazily on first use.

Built-in loaders, splitters, stores, embedders and backends are plugins too: the modules
in ``DEFAULT_PLUGINS`` go through the same hooks a third-party package uses. Third-party
plugins are found through the ``llm_magics`` entry-point group. ``LLM_MAGICS_LOAD_PLUGINS``
(a comma-separated list of entry-point names, possibly empty) limits which of those load.

A plugin that fails to import, or that raises inside a hook, is recorded in ``errors``
by name with the reason; the others keep working.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from . import hookspecs

log = logging.getLogger(__name__)

DEFAULT_PLUGINS = (
    "llm_magics.models.builtin",
    "llm_magics.ingest.loaders.builtin",
    "llm_magics.ingest.splitters.builtin",
    "llm_magics.ingest.embedders.local",
    "llm_magics.ingest.stores.chroma",
    "llm_magics.ingest.stores.memory",
    "llm_magics.backends.local",
    "llm_magics.openai_compat",
    "llm_magics.qa.chain_types.builtin",
    "llm_magics.qa.parsers.builtin",
    "llm_magics.qa.callbacks.builtin",
    "llm_magics.agents.builtin",
    "llm_magics.finetune.trackers",
    "llm_magics.finetune.registry",
)

ENTRY_POINT_GROUP = "llm_magics"
ENV_LOAD_PLUGINS = "LLM_MAGICS_LOAD_PLUGINS"


@dataclass
class PluginInfo:
    """Where a plugin came from, for ``%llm plugins``."""

    name: str
    source: str  # "builtin", "entry point <dist> <version>", or "registered at runtime"
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


pm = pluggy.PluginManager(hookspecs.PROJECT)
pm.add_hookspecs(hookspecs)

info: dict[str, PluginInfo] = {}
errors: dict[str, str] = {}  # plugin name -> why it failed

#: Bumped whenever the set of plugins changes; ``registry`` compares it to know when to
#: collect again (the plugin manager never calls up into the registry).
generation = 0

_loaded = False
_lock = threading.RLock()


def load_plugins() -> pluggy.PluginManager:
    """Load built-in and entry-point plugins once; return the plugin manager."""
    global _loaded
    with _lock:
        if _loaded:
            return pm
        _loaded = True
        _changed()
        for module_name in DEFAULT_PLUGINS:
            _register_module(module_name, module_name, "builtin")
        for ep in _entry_points():
            dist = getattr(ep, "dist", None)
            source = f"entry point {dist.name} {dist.version}" if dist else "entry point"
            try:
                plugin = ep.load()
            except Exception as e:  # noqa: BLE001 - a broken plugin must not break the rest
                _fail(ep.name, source, f"failed to import {ep.value}: {type(e).__name__}: {e}")
                continue
            _register(plugin, ep.name, source)
        return pm


def _entry_points():
    eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    wanted = os.environ.get(ENV_LOAD_PLUGINS)
    if wanted is None:
        return eps
    names = {n.strip() for n in wanted.split(",") if n.strip()}
    return [ep for ep in eps if ep.name in names]


def _register_module(module_name: str, name: str, source: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001
        _fail(name, source, f"failed to import {module_name}: {type(e).__name__}: {e}")
        return
    _register(module, name, source)


def _register(plugin, name: str, source: str) -> None:
    if pm.is_registered(plugin) or pm.has_plugin(name):
        return
    try:
        pm.register(plugin, name=name)
    except Exception as e:  # noqa: BLE001 - e.g. a hook name that is not in hookspecs
        _fail(name, source, f"{type(e).__name__}: {e}")
        return
    callers = pm.get_hookcallers(plugin) or []
    unknown = sorted(h.name for h in callers if not h.has_spec())
    if unknown:  # a typo such as register_loaderz would otherwise be silently ignored
        pm.unregister(plugin, name=name)
        known = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("register_")))
        _fail(name, source, f"unknown hook {', '.join(unknown)}; hooks are: {known}")
        return
    info[name] = PluginInfo(name, source, sorted(h.name for h in callers))


def _fail(name: str, source: str, reason: str) -> None:
    log.warning("llm-magics plugin %s: %s", name, reason)
    errors[name] = reason
    info[name] = PluginInfo(name, source, error=reason)


def _changed() -> None:
    global generation
    generation += 1


def register(plugin, name: str | None = None) -> str:
    """Register a plugin object at runtime (tests, notebooks); returns its name."""
    load_plugins()
    name = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin)}"
    _register(plugin, name, "registered at runtime")
    _changed()
    return name


def unregister(name: str) -> None:
    """Remove a plugin registered with ``register``."""
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin, name=name)
    info.pop(name, None)
    errors.pop(name, None)
    _changed()


def reset() -> None:
    """Forget every plugin, so the next use loads them again (for tests)."""
    global _loaded
    with _lock:
        for name, plugin in list(pm.list_name_plugin()):
            pm.unregister(plugin, name=name)
        info.clear()
        errors.clear()
        _loaded = False
        _changed()
