"""The embedder extension point: texts in, L2-normalised vectors out."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar, Sequence

from ...errors import UsageError
from ...extension import Extension

if TYPE_CHECKING:
    import numpy as np


class Embedder(Extension):
    """Turns text into vectors.

    Subclasses set ``name`` and implement ``embed``. ``dimension`` and ``max_tokens`` are
    known once the model is loaded (or declared up front). ``token_spans`` lets the token
    splitter cut text so no chunk exceeds the model's window.
    """

    kind: ClassVar[str] = "embedder"

    #: Vector size; subclasses set it or compute it on load.
    dimension: int
    #: Longest input in model tokens; longer text is truncated by the model (None: unknown).
    max_tokens: int | None = None

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        """Return a float32 array of shape (len(texts), dimension), each row of unit length."""

    def embed_query(self, text: str) -> "np.ndarray":
        """The vector for a search query, shape (dimension,). Override for asymmetric models."""
        return self.embed([text])[0]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each model token in ``text``, special tokens excluded."""
        raise UsageError(f"Embedder {self.name!r} has no tokenizer; use --splitter recursive instead of token.")

    @property
    def identity(self) -> str:
        """What is stored with a collection, so a different embedder is caught: ``name``."""
        return self.name
