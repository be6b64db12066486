"""The openai plugin's settings: ``%config OpenAICompat.NAME = VALUE``.

They live here, with the plugin, not in the core ``LLMMagics``: the plugin registers the
class with the ``register_settings`` hook and reads it with ``config.section(OpenAICompat)``.
The environment (``$OPENAI_BASE_URL``, ``$OPENAI_API_KEY``) is the fallback, read in one
place: ``client.Connection.from_options``.
"""

from __future__ import annotations

from traitlets import Float, Int, Unicode
from traitlets.config import Configurable


class OpenAICompat(Configurable):
    """Settings of the OpenAI-compatible backend and embedder (OpenAI, llama.cpp's server, vLLM, Ollama)."""

    base_url = Unicode("", help="Base URL of an OpenAI-compatible server, ending in /v1; defaults to $OPENAI_BASE_URL.").tag(config=True)
    api_key = Unicode("", help="API key; defaults to $OPENAI_API_KEY. Never printed.").tag(config=True)
    timeout = Float(60.0, help="Seconds before a request times out.").tag(config=True)
    context_window = Int(0, help="Context window of the server's model; 0 asks the server (else 4096).").tag(config=True)
    embedding_model = Unicode("text-embedding-3-small", help="Model id the openai embedder asks the server for.").tag(config=True)

    def __repr__(self) -> str:  # keep the key out of reprs
        return f"<OpenAICompat base_url={self.base_url!r} api_key={'***' if self.api_key else ''!r}>"


def current() -> OpenAICompat:
    """The settings in force (the notebook's, when the extension is loaded)."""
    from .. import config

    return config.section(OpenAICompat)
