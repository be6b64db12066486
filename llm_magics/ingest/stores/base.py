"""The vector-store extension point: vectors with text and metadata in, nearest neighbours out.

A store holds one named collection. Besides the vectors it keeps two small things the
``Index`` needs to stay consistent: collection ``info`` (which embedder built it, the
dimension) and a ``manifest`` (one entry per ingested source, written only after the
source's chunks are all stored). Scores are cosine similarities: higher is closer.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from ..documents import Hit
from ...errors import UsageError
from ...extension import Extension

if TYPE_CHECKING:
    import numpy as np

Where = dict[str, Any]


class VectorStore(Extension):
    """One collection of vectors with their chunk text and metadata.

    Subclasses set ``name`` and implement the abstract methods. Metadata values are
    scalars (str, int, float, bool); ``where`` filters use Chroma's syntax
    (``{"source": "a.pdf"}``, ``{"page": {"$gte": 3}}``, ``{"$and": [...]}``).
    """

    kind: ClassVar[str] = "vector_store"
    #: Whether data outlives the process.
    persistent: ClassVar[bool] = False

    def __init__(self, collection: str, path: str | None = None, embedder: str | None = None, **options):
        """``path``: folder of a persistent store; ``embedder``: the name of the embedder that
        fills the collection (for stores that can embed query text themselves)."""
        super().__init__(**options)
        self.collection = collection
        self.path = path
        self.embedder_name = embedder

    # -- vectors --------------------------------------------------------------

    @abstractmethod
    def upsert(self, ids: Sequence[str], vectors: "np.ndarray", texts: Sequence[str], metadatas: Sequence[dict]) -> None:
        """Insert or replace records (a batch; the caller keeps batches modest)."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None:
        """Remove records by id; unknown ids are ignored."""

    @abstractmethod
    def query(self, vector: "np.ndarray", k: int, where: Where | None = None) -> list[Hit]:
        """The ``k`` records closest to ``vector`` (cosine), best first, matching ``where``."""

    @abstractmethod
    def get(self, where: Where | None = None, ids: Sequence[str] | None = None, vectors: bool = False) -> list[dict]:
        """Records as dicts with ``id``, ``text``, ``metadata`` (and ``vector`` if asked)."""

    @abstractmethod
    def count(self) -> int:
        """How many records the collection holds."""

    # -- collection info and manifest ------------------------------------------

    @abstractmethod
    def info(self) -> dict:
        """Collection-level facts (``embedder``, ``dimension``, ...); {} for a new collection."""

    @abstractmethod
    def set_info(self, info: dict) -> None:
        """Replace the collection-level facts."""

    @abstractmethod
    def manifest(self) -> dict[str, dict]:
        """Every source entry: key -> dict (JSON-serialisable)."""

    @abstractmethod
    def set_manifest(self, key: str, entry: dict | None) -> None:
        """Write (or with None, remove) one source entry, atomically."""

    @abstractmethod
    def drop(self) -> None:
        """Delete the whole collection, its info and manifest."""


_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,510}[A-Za-z0-9])?$")


def check_collection_name(name: str) -> str:
    """Collection names work in every store: 1-512 of [A-Za-z0-9._-], alphanumeric at both ends.

    A store with stricter rules maps the name to one it accepts (Chroma: ``chroma_name``)."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise UsageError(
            f"Bad collection name {name!r}: use 1-512 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit (e.g. --collection my-docs)."
        )
    return name


def matches(meta: dict, where: Where | None) -> bool:
    """Whether ``meta`` satisfies a Chroma-style ``where`` filter."""
    if not where:
        return True
    for key, cond in where.items():
        if key == "$and":
            if not all(matches(meta, w) for w in cond):
                return False
        elif key == "$or":
            if not any(matches(meta, w) for w in cond):
                return False
        elif isinstance(cond, dict):
            value = meta.get(key)
            for op, arg in cond.items():
                if not _compare(op, value, arg, key in meta):
                    return False
        elif meta.get(key) != cond or key not in meta:
            return False
    return True


def _compare(op: str, value, arg, present: bool) -> bool:
    if op == "$eq":
        return present and value == arg
    if op == "$ne":
        return value != arg
    if op == "$in":
        return present and value in arg
    if op == "$nin":
        return value not in arg
    if not present or value is None:
        return False
    try:
        if op == "$gt":
            return value > arg
        if op == "$gte":
            return value >= arg
        if op == "$lt":
            return value < arg
        if op == "$lte":
            return value <= arg
    except TypeError:
        return False
    raise UsageError(f"Unknown filter operator {op!r}. Use $eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $and, $or.")
