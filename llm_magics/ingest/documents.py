"""The data that flows through ingestion and retrieval."""

from __future__ import annotations

import hashlib
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


#: Longest heading embedded with a chunk (characters): it must leave the chunk its room in
#: the embedder's window.
HEADING_CHARS = 200


def heading(metadata: dict[str, Any]) -> str:
    """The header a chunk sits under (the deepest of its section path, ``"Installing R"``),
    else its document's title (``"R-FAQ"``); ``""`` when the loader gave neither. The deepest
    header alone, not the whole path: as good on the tuning corpora, and a quarter of the extra
    tokens on a manual with deep sections (bench/results_answers_headings.md)."""
    section = str(metadata.get("section") or "").strip()
    head = section.rsplit(" > ", 1)[-1].strip() if section else str(metadata.get("title") or "").strip()
    return head[:HEADING_CHARS]


def embedding_text(text: str, metadata: dict[str, Any]) -> str:
    """What is embedded for a chunk when headings are on (``LLMMagics.embed_headings``): its
    heading, a blank line, then its text. The stored and cited text stays the chunk's own.

    >>> embedding_text("Use install.packages().", {"title": "R-FAQ", "section": "Packages > Add-ons"})
    'Add-ons\\n\\nUse install.packages().'
    >>> embedding_text("Use install.packages().", {"title": "R-FAQ"})
    'R-FAQ\\n\\nUse install.packages().'
    """
    head = heading(metadata)
    return f"{head}\n\n{text}" if head else text


#: Chunk metadata naming what a stored vector embedded: ``HEADINGS`` (the heading and the
#: text, ``documents.embedding_text``), or absent (the text alone). Hidden from hits like the
#: manifest's tags.
EMBEDDED = "_embedded"
HEADINGS = "headings"


def text_to_embed(text: str, metadata: dict, embedded: str) -> str:
    """What a chunk embeds: its text alone (``embedded`` empty), or under its heading (``HEADINGS``).
    The ingest writer and Ray's embedding actors both ask here, so they cannot disagree."""
    return embedding_text(text, metadata) if embedded else text


def vector_key(text: str, metadata: dict, embedded: str) -> str:
    """Which vector a chunk needs: the same text under another heading, or embedded another
    way, is another vector; vectors are reused (across sources, versions and runs) by this key."""
    if not embedded:
        return text_hash(text)
    return text_hash(f"{embedded}\0{text_to_embed(text, metadata, embedded)}")


def text_hash(text: str) -> str:
    """SHA-256 of a text (hex): equal texts share vectors and chunk ids."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
