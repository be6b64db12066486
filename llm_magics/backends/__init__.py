"""Model backends: ``local`` (our runtime) and ``openai`` (any OpenAI-compatible server)."""

from .base import Backend, Completion, GenerationParams, Message, Usage

__all__ = ["Backend", "Completion", "GenerationParams", "Message", "Usage", "get_model"]


def get_model(name: str | None = None, **options) -> Backend:
    """A backend instance for a model name.

    ``BACKEND:MODEL`` picks a backend explicitly (``openai:gpt-4o-mini``); a bare name or a
    local path goes to the ``local`` backend. The default is the configured model.
    """
    from .. import config, registry

    name = name or config.settings().model
    backend, sep, model = name.partition(":")
    if sep and backend in registry.entries("backend") and not _looks_like_path(name):
        return registry.get("backend", backend)(model=model or None, **options)
    if name in registry.entries("backend"):
        return registry.get("backend", name)(**options)
    return registry.get("backend", "local")(model=name, **options)


def _looks_like_path(name: str) -> bool:
    # "C:\\models\\x.gguf" or "./x:y" are paths, not BACKEND:MODEL.
    return len(name) > 2 and name[1] == ":" and name[2] in "\\/"
