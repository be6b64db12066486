"""What a worker process needs to rebuild the splitter (and find the loaders) by name.

``worker_spec`` describes the run's splitter (and the embedder, for a splitter that counts
its tokens) by registered name and options, checked here to rebuild the same splitter;
``_origin`` says which plugin a worker must load to find a class; ``load_plugins`` and
``rebuild_splitter`` run in the worker (a process pool's, workers.py, or Ray's). Only the
plugins a run uses load there: some installed plugins import a whole framework.
"""

from __future__ import annotations

import os
import types
from dataclasses import dataclass, field


@dataclass
class WorkerSpec:
    splitter: str
    splitter_options: dict
    config_key: str  # checked in the parent: the rebuilt splitter cuts the same chunks
    embedder: tuple[str, dict] | None  # for splitters that count the embedder's tokens
    # Plugins a worker loads besides the built-ins: only those that provide what it uses,
    # so it does not import every installed plugin (some import a whole framework).
    entry_points: set[str] = field(default_factory=set)
    modules: dict[str, str] = field(default_factory=dict)  # plugin name -> module, registered at runtime here

    def add(self, origin: tuple[str, str, str]) -> None:
        how, name, module = origin
        if how == "entry point":
            self.entry_points.add(name)
        elif how == "module":
            self.modules[name] = module

    def has(self, origin: tuple[str, str, str] | None) -> bool:
        return origin is not None and (origin[0] == "builtin" or origin[1] in self.entry_points or origin[1] in self.modules)


def _origin(kind: str, cls) -> tuple[str, str, str] | None:
    """Where a worker finds ``cls`` by name: ("builtin" | "entry point" | "module", plugin, module),
    or None when it cannot (a plugin object that only this process has, say from a notebook)."""
    from .. import plugins, registry

    family = cls.name.partition(":")[0] if getattr(cls, "target", None) else cls.name
    entry = registry.entries(kind).get(family)
    if entry is None or not (entry.obj is cls or (getattr(cls, "target", None) and issubclass(cls, entry.obj))):
        return None
    info = plugins.info.get(entry.plugin)
    if info is not None and info.source == "builtin":
        return ("builtin", entry.plugin, "")
    if info is not None and info.source.startswith("entry point"):
        return ("entry point", entry.plugin, "")
    plugin = plugins.pm.get_plugin(entry.plugin)
    if isinstance(plugin, types.ModuleType) and plugin.__name__ != "__main__":
        return ("module", entry.plugin, plugin.__name__)
    return None


def worker_spec(split, embedder, redactor) -> tuple[WorkerSpec | None, str]:
    """The spec workers rebuild the splitter from, or None and why the run stays in process."""
    from .. import registry

    if redactor is not None:
        return None, "redaction runs in the main process"
    origins = [_origin("splitter", type(split))]
    if origins[0] is None:
        return None, f"splitter {split.name!r} is not registered by a plugin a worker can import"
    emb = None
    if getattr(split, "uses_embedder", False):
        origins.append(_origin("embedder", type(embedder)))
        if origins[-1] is None:
            return None, f"splitter {split.name!r} needs embedder {embedder.name!r}, which a worker cannot import"
        emb = (embedder.name, embedder.options.model_dump())
    options = {**split.options.model_dump(), "chunk_size": split.chunk_size, "chunk_overlap": split.chunk_overlap}
    rebuilt = registry.get("splitter", split.name)(embedder=embedder, **options)
    if rebuilt.config_key != split.config_key:
        return None, f"splitter {split.name!r} cannot be rebuilt from its options"
    spec = WorkerSpec(split.name, options, split.config_key, emb)
    for origin in origins:
        spec.add(origin)
    return spec, ""


def rebuild_splitter(spec: WorkerSpec):
    """In a worker: load the plugins ``spec`` names, then build the splitter it describes."""
    from .. import registry

    load_plugins(spec)
    embedder = None
    if spec.embedder is not None:
        embedder = registry.get("embedder", spec.embedder[0])(**spec.embedder[1])
    return registry.get("splitter", spec.splitter)(embedder=embedder, **spec.splitter_options)


def load_plugins(spec: WorkerSpec) -> None:
    """In a worker (a pool's or Ray's): the built-ins and the plugins ``spec`` names, no others."""
    import importlib

    from .. import plugins

    wanted = spec.entry_points
    if os.environ.get(plugins.ENV_LOAD_PLUGINS) is not None:  # the user's own limit still holds
        wanted = wanted & {n.strip() for n in os.environ[plugins.ENV_LOAD_PLUGINS].split(",")}
    os.environ[plugins.ENV_LOAD_PLUGINS] = ",".join(sorted(wanted))
    for name, module in spec.modules.items():
        if plugins.pm.get_plugin(name) is None:
            plugins.register(importlib.import_module(module), name)
