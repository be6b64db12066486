"""The OpenAI-compatible plugin: a backend and an embedder for any server speaking OpenAI's HTTP API.

``--model openai:MODEL`` (``openai`` alone uses the server's first model) and
``--embedder openai`` talk to OpenAI, llama.cpp's server, vLLM, Ollama and the like. The
base URL and API key come from ``%config OpenAICompat.base_url`` and
``OpenAICompat.api_key``, falling back to ``$OPENAI_BASE_URL`` and ``$OPENAI_API_KEY``, which are
read in one place (``client.Connection.from_options``, when a connection is made); the key
is never printed or stored.

- ``backend.py``: ``OpenAIBackend`` (chat completions, streaming, token counts)
- ``embedder.py``: ``OpenAIEmbedder`` (``/embeddings``)
- ``client.py``: ``Connection`` (URL and key, retries, errors, SSE) shared by both
- ``settings.py``: ``OpenAICompat``, the plugin's own settings (``%config OpenAICompat``)
"""

from __future__ import annotations

from ..hookspecs import hookimpl

__all__ = ["OpenAIBackend", "OpenAIEmbedder", "OpenAIError"]


def __getattr__(name: str):  # the classes import pydantic models; load them on first use
    if name == "OpenAIBackend":
        from .backend import OpenAIBackend

        return OpenAIBackend
    if name == "OpenAIEmbedder":
        from .embedder import OpenAIEmbedder

        return OpenAIEmbedder
    if name == "OpenAIError":
        from .client import OpenAIError

        return OpenAIError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_settings(register):
    from .settings import OpenAICompat

    register(OpenAICompat)


@hookimpl
def register_backends(register):
    from .backend import OpenAIBackend

    register(OpenAIBackend)


@hookimpl
def register_embedders(register):
    from .embedder import OpenAIEmbedder

    register(OpenAIEmbedder)
