"""The data that flows through ingestion and retrieval."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Document:
    """Text from one source (a file, a PDF page, a table row) and where it came from.

    ``metadata`` always has ``source`` (the path or URL as the user gave it) and may have
    ``title``, ``page`` (1-based, PDFs), ``row``, ``cell``, ``cell_type`` and ``mtime``.
    """

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.metadata.get("source", "")


@dataclass
class Chunk:
    """A piece of a document small enough to embed; ``metadata['start_index']`` locates it."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass
class Hit:
    """A search result: the chunk's text, a similarity score (higher is closer) and metadata."""

    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    @property
    def source(self) -> str:
        return self.metadata.get("source", "")
