"""The ``openai`` embedder: vectors from any OpenAI-compatible ``/embeddings`` endpoint.

Pick it with ``--embedder openai`` (or ``openai:MODEL``). Connection settings are
described in ``openai_compat/__init__.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Sequence

from pydantic import Field

from ..ingest.embedders.base import Embedder
from .backend import _settings
from .client import Connection, ConnectionOptions, OpenAIError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["OpenAIEmbedder"]

DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"


class OpenAIEmbedder(Embedder):
    """Vectors from an OpenAI-compatible ``/embeddings`` endpoint, L2-normalised."""

    name: ClassVar[str] = "openai"
    description: ClassVar[str] = "Any OpenAI-compatible /v1/embeddings endpoint"

    class Options(ConnectionOptions):
        model: str | None = Field(None, description="Embedding model id on the server; default: OpenAICompat.embedding_model, else text-embedding-3-small.")
        batch_size: int = Field(64, gt=0, description="Texts sent per request.")

    def __init__(self, **options):
        super().__init__(**options)
        self.connection = Connection.from_options(self.options)
        self.model = self.options.model or _settings().embedding_model or DEFAULT_EMBEDDING_MODEL
        self._dimension: int | None = None

    def __repr__(self) -> str:
        return f"<OpenAIEmbedder model={self.model!r} base_url={self.connection.display_url!r}>"

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed(["dimension"])
        return self._dimension

    @property
    def identity(self) -> str:
        return f"openai:{self.model}"

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        import numpy as np

        rows: list = []
        for start in range(0, len(texts), self.options.batch_size):
            batch = list(texts[start : start + self.options.batch_size])
            data = self.connection.post_json("/embeddings", {"model": self.model, "input": batch})
            items = sorted(data.get("data", []), key=lambda d: d.get("index", 0))
            if len(items) != len(batch):
                raise OpenAIError(f"{self.connection.display_url}/embeddings returned {len(items)} vectors for {len(batch)} texts.")
            for item in items:
                vector = np.asarray(item["embedding"], dtype=np.float32)
                if vector.ndim == 2:  # per-token vectors (llama-cpp-python with a decoder model): mean-pool
                    vector = vector.mean(axis=0)
                rows.append(vector)
        if not rows:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        out = np.stack(rows)  # (N, dimension)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        self._dimension = out.shape[1]
        return out

    def close(self) -> None:
        self.connection.close()
