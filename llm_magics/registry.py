"""What the plugins provide, by kind and name, and which plugin provided it.

Each collection hook is called once per plugin, with a ``register`` callback that records
the plugin's name beside each entry. A plugin that raises inside a hook is reported in
``plugins.errors`` and skipped; the entries of the other plugins stay usable.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from . import plugins
from .errors import unknown

log = logging.getLogger(__name__)

#: kind -> (hook name, how to find help for the user when a name is unknown)
KINDS: dict[str, tuple[str, str]] = {
    "model": ("register_models", "Pass a local path (a .gguf file or an HF folder), or install a plugin that registers models (hook register_models)."),
    "loader": ("register_loaders", "Pass --loader NAME, or install a loader plugin."),
    "splitter": ("register_splitters", "Pass --splitter NAME, or install a splitter plugin."),
    "embedder": ("register_embedders", "Pass --embedder NAME, or install an embedder plugin."),
    "vector_store": ("register_vector_stores", "Pass --store NAME, or install a vector-store plugin."),
    "backend": ("register_backends", "Name a model BACKEND:MODEL, or install a backend plugin."),
    "chain_type": ("register_chain_types", "Pass --chain-type NAME."),
    "output_parser": ("register_output_parsers", "Pass --format NAME."),
    "callback": ("register_callbacks", "Install a callback plugin."),
    "settings": ("register_settings", "Install the plugin whose settings these are."),
}


@dataclass
class Entry:
    """One registered thing: a class (or object) and the plugin it came from."""

    kind: str
    name: str
    obj: Any
    plugin: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    extra: dict = field(default_factory=dict)


_cache: dict[str, dict[str, Entry]] = {}
_generation = -1  # the plugins.generation the cache was collected at
_lock = threading.RLock()


def refresh() -> None:
    """Forget collected entries; the next lookup calls the hooks again.

    Registering or unregistering a plugin does this by itself (``plugins.generation``
    changes); call it when a plugin's hook would now register something else.
    """
    with _lock:
        _cache.clear()


def collect(hook_name: str, make_entry) -> dict[str, Entry]:
    """Call ``hook_name`` plugin by plugin; ``make_entry(plugin, *args, **kw)`` builds an Entry.

    Returns ``{name_or_alias: Entry}``. Later plugins override earlier ones of the same
    name (built-ins load first, so a third-party plugin can replace a built-in).
    """
    pm = plugins.load_plugins()
    hook = getattr(pm.hook, hook_name)
    found: dict[str, Entry] = {}
    # pluggy returns implementations last-registered-first; walk them in load order.
    for impl in reversed(hook.get_hookimpls()):
        plugin_name = impl.plugin_name
        collected: list[Entry] = []

        def register(*args, _plugin=plugin_name, _out=collected, **kwargs):
            _out.append(make_entry(_plugin, *args, **kwargs))

        try:
            impl.function(register=register)
        except Exception as e:  # noqa: BLE001 - a broken plugin must not break the rest
            reason = f"{hook_name} raised {type(e).__name__}: {e}"
            log.warning("llm-magics plugin %s: %s", plugin_name, reason)
            plugins.errors[plugin_name] = reason
            if plugin_name in plugins.info:
                plugins.info[plugin_name].error = reason
            continue
        for entry in collected:
            for key in (entry.name, *entry.aliases):
                found[key] = entry
    return found


def _model_entry(plugin: str, name: str, locate, role=None, aliases=(), description: str = "") -> Entry:
    """``register(name, locate, role, aliases=(), description="")`` of ``register_models``."""
    return Entry("model", name, locate, plugin, tuple(aliases), description, {"role": role})


def _settings_entry(plugin: str, cls, aliases=(), description: str | None = None) -> Entry:
    """``register(SettingsClass)`` of ``register_settings``: named by its class, as ``%config`` names it."""
    from traitlets.config import Configurable

    if not (isinstance(cls, type) and issubclass(cls, Configurable)):
        raise TypeError(f"{cls!r} is not a traitlets Configurable subclass")
    doc = description or (cls.__doc__ or "").strip().split("\n")[0]
    return Entry("settings", cls.__name__, cls, plugin, tuple(aliases), doc)


def _class_entry(kind: str):
    if kind == "model":
        return _model_entry
    if kind == "settings":
        return _settings_entry

    def make(plugin: str, obj, aliases=(), description: str | None = None) -> Entry:
        name = getattr(obj, "name", None)
        if not name:
            raise TypeError(f"{obj!r} has no 'name' class attribute")
        doc = description or getattr(obj, "description", "") or (obj.__doc__ or "").strip().split("\n")[0]
        return Entry(kind, name, obj, plugin, tuple(aliases), doc)

    return make


def entries(kind: str) -> dict[str, Entry]:
    """All entries of ``kind``, keyed by name and by alias."""
    if kind not in KINDS:
        raise KeyError(f"unknown registry kind {kind!r}; kinds: {', '.join(KINDS)}")
    global _generation
    with _lock:
        plugins.load_plugins()  # (a no-op once loaded) before reading the generation it sets
        if _generation != plugins.generation:  # a plugin came or went since: collect again
            _cache.clear()
            _generation = plugins.generation
        if kind not in _cache:
            _cache[kind] = collect(KINDS[kind][0], _class_entry(kind))
        return _cache[kind]


def unique(kind: str) -> list[Entry]:
    """Entries of ``kind`` without alias duplicates, sorted by name."""
    seen: dict[int, Entry] = {}
    for entry in entries(kind).values():
        seen[id(entry)] = entry
    return sorted(seen.values(), key=lambda e: e.name)


def names(kind: str) -> list[str]:
    return [e.name for e in unique(kind)]


def get(kind: str, name: str):
    """The class registered as ``name`` (or an alias); a UsageError listing the known names."""
    found = entries(kind)
    if name in found:
        return found[name].obj
    raise unknown(kind.replace("_", " "), name, names(kind), KINDS[kind][1])
