"""``memory``: exact cosine search with numpy, kept in this process only.

For small and throwaway work, and as the exact reference the approximate stores are
checked against. Collections are shared by name within the process, so ``%ingest
--store memory`` and a later ``%%ask --store memory`` see the same data.
"""

from __future__ import annotations

import copy
import threading
from typing import Sequence

import numpy as np

from ..documents import Hit
from ...hookspecs import hookimpl
from .base import VectorStore, Where, check_collection_name, matches


class _Collection:
    def __init__(self):
        self.ids: list[str] = []
        self.row: dict[str, int] = {}
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.texts: list[str] = []
        self.metadatas: list[dict] = []
        self.info: dict = {}
        self.manifest: dict[str, dict] = {}


_collections: dict[str, _Collection] = {}
_lock = threading.RLock()


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


class MemoryStore(VectorStore):
    """Exact cosine search in numpy, in this process only (nothing is written to disk)."""

    name = "memory"
    persistent = False

    def __init__(self, collection: str, path: str | None = None, embedder: str | None = None, **options):
        super().__init__(check_collection_name(collection), path, embedder, **options)
        with _lock:
            self._c = _collections.setdefault(collection, _Collection())

    def upsert(self, ids, vectors, texts, metadatas) -> None:
        vectors = _unit(vectors)
        c = self._c
        with _lock:
            if c.vectors.shape[0] == 0:
                c.vectors = np.zeros((0, vectors.shape[1]), dtype=np.float32)
            new_rows = []
            for i, id_ in enumerate(ids):
                if id_ in c.row:
                    r = c.row[id_]
                    c.vectors[r] = vectors[i]
                    c.texts[r] = texts[i]
                    c.metadatas[r] = dict(metadatas[i])
                else:
                    c.row[id_] = len(c.ids) + len(new_rows)
                    new_rows.append(i)
            if new_rows:
                c.ids.extend(ids[i] for i in new_rows)
                c.texts.extend(texts[i] for i in new_rows)
                c.metadatas.extend(dict(metadatas[i]) for i in new_rows)
                c.vectors = np.concatenate([c.vectors, vectors[new_rows]])

    def delete(self, ids: Sequence[str]) -> None:
        c = self._c
        with _lock:
            gone = {c.row[i] for i in ids if i in c.row}
            if not gone:
                return
            keep = [r for r in range(len(c.ids)) if r not in gone]
            c.ids = [c.ids[r] for r in keep]
            c.texts = [c.texts[r] for r in keep]
            c.metadatas = [c.metadatas[r] for r in keep]
            c.vectors = c.vectors[keep]
            c.row = {id_: r for r, id_ in enumerate(c.ids)}

    def query(self, vector, k: int, where: Where | None = None) -> list[Hit]:
        c = self._c
        with _lock:
            if not c.ids:
                return []
            rows = np.arange(len(c.ids)) if not where else np.array([r for r, m in enumerate(c.metadatas) if matches(m, where)], dtype=int)
            if rows.size == 0:
                return []
            scores = c.vectors[rows] @ _unit(vector)  # (n,) cosine similarities
            top = np.argsort(-scores, kind="stable")[:k]
            return [Hit(c.texts[rows[i]], float(scores[i]), dict(c.metadatas[rows[i]]), c.ids[rows[i]]) for i in top]

    def get(self, where: Where | None = None, ids: Sequence[str] | None = None, vectors: bool = False) -> list[dict]:
        c = self._c
        with _lock:
            rows = [c.row[i] for i in ids if i in c.row] if ids is not None else range(len(c.ids))
            out = []
            for r in rows:
                if where and not matches(c.metadatas[r], where):
                    continue
                rec = {"id": c.ids[r], "text": c.texts[r], "metadata": dict(c.metadatas[r])}
                if vectors:
                    rec["vector"] = c.vectors[r].copy()
                out.append(rec)
            return out

    def count(self) -> int:
        return len(self._c.ids)

    def info(self) -> dict:
        return dict(self._c.info)

    def set_info(self, info: dict) -> None:
        self._c.info = dict(info)

    def manifest(self) -> dict[str, dict]:
        with _lock:
            return copy.deepcopy(self._c.manifest)

    def set_manifest(self, key: str, entry: dict | None) -> None:
        with _lock:
            if entry is None:
                self._c.manifest.pop(key, None)
            else:
                self._c.manifest[key] = copy.deepcopy(entry)

    def drop(self) -> None:
        with _lock:
            _collections.pop(self.collection, None)
            self._c = _collections.setdefault(self.collection, _Collection())


@hookimpl
def register_vector_stores(register):
    register(MemoryStore)
