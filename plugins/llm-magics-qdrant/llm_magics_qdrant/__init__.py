"""``qdrant``: a vector store for llm-magics backed by the Qdrant engine.

Without ``url`` the collection lives in a local folder and runs in-process on Qdrant Edge
(``qdrant-edge-py``: Qdrant's own Rust engine, segments, WAL and HNSW, embedded like SQLite;
see edge.py). With ``url`` it talks to a Qdrant server through ``qdrant-client`` (client.py).
Both are "engines" with the same few methods; this module holds what is ours: points carry
our chunk id, text and metadata in their payload, Qdrant point ids are UUIDs derived from
our ids, and collection info (which embedder, what dimension) and the ingest manifest live
as payload-only points in a small companion collection ``<name>__llm_magics``, so they
travel with the data to a server too.

Collections written by version 0.1 of this plugin, which ran ``qdrant-client``'s local mode
(a Python stand-in for Qdrant, not the engine), are not read by Qdrant Edge: opening one is
a UsageError that says how to copy it over (``legacy_local_mode``) or re-ingest it.
"""

from __future__ import annotations

import os
import uuid
from typing import Sequence

import numpy as np
from pydantic import Field

from llm_magics import hookimpl
from llm_magics.errors import UsageError
from llm_magics.extension import Options
from llm_magics.ingest.documents import Hit
from llm_magics.ingest.stores import VectorStore, Where, check_collection_name

from .filters import to_filter  # noqa: F401 - part of the plugin's API

TEXT, ID = "_text", "_id"  # payload keys of our own; the rest is the chunk's metadata
META_SUFFIX = "__llm_magics"
INFO_KEY = "info"
#: Payload fields the ingest protocol and users filter on most: keyword-indexed at creation.
INDEXED_FIELDS = ("_key", "source")
EDGE_FOLDER, LEGACY_FOLDER = "qdrant-edge", "qdrant"  # under the store_path setting


def point_id(chunk_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, chunk_id))


class QdrantOptions(Options):
    url: str | None = Field(None, description="Qdrant server URL; without it, Qdrant Edge (the engine, in-process) in a folder under store_path.")
    api_key: str | None = Field(None, description="API key for a Qdrant server.")
    hnsw_ef: int = Field(128, ge=1, description="Search-time HNSW beam width (at least k); higher is closer to exact search, slower.")
    m: int = Field(16, ge=4, description="HNSW links per node; applied when the collection is created.")
    ef_construct: int = Field(200, ge=4, description="HNSW candidates examined while building the graph; applied when the collection is created.")
    indexing_threshold: int | None = Field(
        None, ge=0, description="KB of vectors in a segment before Qdrant builds its HNSW index (below it, search is exact); Qdrant's default (10000) when unset; applied at creation."
    )
    legacy_local_mode: bool = Field(
        False, description="Open a collection written by llm-magics-qdrant 0.1 (qdrant-client's local mode, a Python stand-in) to copy it out with Index.copy_to."
    )
    ignore_legacy: bool = Field(
        False, description="Open or create the Qdrant Edge collection although one of the same name from llm-magics-qdrant 0.1 is in the folder (the copy's target)."
    )


class QdrantStore(VectorStore):
    """Qdrant: Qdrant Edge in a local folder, or a Qdrant server with ``url``."""

    name = "qdrant"
    persistent = True
    Options = QdrantOptions

    def __init__(self, collection: str, path: str | None = None, embedder: str | None = None, **options):
        super().__init__(check_collection_name(collection), path, embedder, **options)
        o = self.options
        self.meta_collection = collection + META_SUFFIX
        self._dimension: int | None = None
        if o.url:
            from .client import ClientEngine

            self.engine = ClientEngine(url=o.url, api_key=o.api_key)
            return
        if path is None:
            from llm_magics import config

            path = config.settings().store_path
        legacy = os.path.join(path, LEGACY_FOLDER)
        if o.legacy_local_mode:
            from .client import ClientEngine

            self.path = legacy
            self.engine = ClientEngine(path=legacy)
            return
        from .edge import EdgeEngine

        self.path = os.path.join(path, EDGE_FOLDER)
        self.engine = EdgeEngine(self.path)
        old = os.path.join(legacy, "collection", collection)
        if os.path.isdir(old) and not o.ignore_legacy and not self.engine.exists(collection):
            raise UsageError(
                f"Qdrant collection {collection!r} in {legacy} was written by llm-magics-qdrant 0.1 with qdrant-client's local mode "
                f"(a Python stand-in); the store now runs the Qdrant engine itself (Qdrant Edge) in {self.path}. Copy it over, nothing "
                f"re-embedded: Index({collection!r}, store='qdrant', store_options={{'legacy_local_mode': True}}).copy_to('qdrant', {{'ignore_legacy': True}}); "
                f"or re-ingest: %ingest SOURCES --store qdrant --collection {collection} --store-option ignore_legacy=true. Then {old} can be deleted."
            )

    # -- collections ---------------------------------------------------------

    def _ensure(self, dimension: int) -> None:
        if self._dimension == dimension:
            return
        if not self.engine.exists(self.collection):
            o = self.options
            self.engine.create(self.collection, dimension, hnsw={"m": o.m, "ef_construct": o.ef_construct}, indexing_threshold=o.indexing_threshold)
            for field in INDEXED_FIELDS:
                self.engine.index_keyword(self.collection, field)
        self._dimension = dimension

    # -- vectors -------------------------------------------------------------

    def upsert(self, ids, vectors, texts, metadatas) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(ids) == 0:
            return
        self._ensure(vectors.shape[1])
        points = [(point_id(i), v.tolist(), {**m, TEXT: t, ID: i}) for i, v, t, m in zip(ids, vectors, texts, metadatas)]
        self.engine.upsert(self.collection, points)

    def delete(self, ids: Sequence[str]) -> None:
        if ids and self.engine.exists(self.collection):
            self.engine.delete(self.collection, [point_id(i) for i in ids])

    def query(self, vector, k: int, where: Where | None = None) -> list[Hit]:
        if not self.engine.exists(self.collection):
            return []
        vector = np.asarray(vector, dtype=np.float32).tolist()
        points = self.engine.search(self.collection, vector, k, where, hnsw_ef=max(self.options.hnsw_ef, k))
        return [self._hit(p) for p in points]

    @staticmethod
    def _hit(point) -> Hit:
        payload = dict(point.payload or {})
        text, id_ = payload.pop(TEXT, ""), payload.pop(ID, None)
        return Hit(text, float(point.score), payload, id_)

    def get(self, where: Where | None = None, ids: Sequence[str] | None = None, vectors: bool = False) -> list[dict]:
        if not self.engine.exists(self.collection):
            return []
        if ids is not None:
            points = self.engine.retrieve(self.collection, [point_id(i) for i in ids], vectors)
            if where:
                keep = {str(p.id) for p in self.engine.scroll(self.collection, where, False)}
                points = [p for p in points if str(p.id) in keep]
        else:
            points = self.engine.scroll(self.collection, where, vectors)
        out = []
        for p in points:
            payload = dict(p.payload or {})
            record = {"id": payload.pop(ID, None), "text": payload.pop(TEXT, ""), "metadata": payload}
            if vectors:
                record["vector"] = np.asarray(p.vector, dtype=np.float32)
            out.append(record)
        return out

    def count(self) -> int:
        return self.engine.count(self.collection) if self.engine.exists(self.collection) else 0

    # -- info and manifest: payload-only points in the companion collection ----

    def _meta_get(self, key: str) -> dict | None:
        if not self.engine.exists(self.meta_collection):
            return None
        found = self.engine.retrieve(self.meta_collection, [point_id(key)], False)
        return dict(found[0].payload["value"]) if found else None

    def _meta_set(self, key: str, value: dict | None, kind: str) -> None:
        if not self.engine.exists(self.meta_collection):
            self.engine.create(self.meta_collection, 1, distance="dot")
        if value is None:
            self.engine.delete(self.meta_collection, [point_id(key)])
        else:
            self.engine.upsert(self.meta_collection, [(point_id(key), [1.0], {"key": key, "kind": kind, "value": value})])

    def info(self) -> dict:
        return self._meta_get(INFO_KEY) or {}

    def set_info(self, info: dict) -> None:
        self._meta_set(INFO_KEY, dict(info), "info")

    def manifest(self) -> dict[str, dict]:
        if not self.engine.exists(self.meta_collection):
            return {}
        points = self.engine.scroll(self.meta_collection, {"kind": "manifest"}, False)
        return {p.payload["key"][len("manifest:") :]: dict(p.payload["value"]) for p in points}

    def set_manifest(self, key: str, entry: dict | None) -> None:
        self._meta_set("manifest:" + key, entry, "manifest")

    def drop(self) -> None:
        for name in (self.collection, self.meta_collection):
            if self.engine.exists(name):
                self.engine.drop(name)
        self._dimension = None


@hookimpl
def register_vector_stores(register):
    register(QdrantStore)
