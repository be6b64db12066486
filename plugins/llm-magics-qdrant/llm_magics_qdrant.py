"""``qdrant``: a vector store for llm-magics backed by Qdrant.

Without ``url`` it runs Qdrant's embedded local mode in a folder (no server); with ``url``
it talks to a Qdrant server. Points carry our chunk id, text and metadata in their payload;
Qdrant point ids are UUIDs derived from our ids. Collection info (which embedder, what
dimension) and the ingest manifest live as payload-only points in a small companion
collection ``<name>__llm_magics``, so they travel with the data to a server too.
"""

from __future__ import annotations

import atexit
import os
import threading
import uuid
from typing import Sequence

import numpy as np
from pydantic import Field

from llm_magics import hookimpl
from llm_magics.ingest.documents import Hit
from llm_magics.errors import UsageError
from llm_magics.extension import Options
from llm_magics.ingest.stores import VectorStore, Where, check_collection_name

TEXT, ID = "_text", "_id"  # payload keys of our own; the rest is the chunk's metadata
META_SUFFIX = "__llm_magics"
INFO_KEY = "info"

_clients: dict[str, object] = {}
_lock = threading.RLock()


def point_id(chunk_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, chunk_id))


def client_for(url: str | None, path: str | None, api_key: str | None):
    """One client per server or folder (local mode locks its folder to one client per process)."""
    from qdrant_client import QdrantClient

    key = url or os.path.abspath(path or ".")
    with _lock:
        if key not in _clients:
            if url:
                _clients[key] = QdrantClient(url=url, api_key=api_key)
            else:
                os.makedirs(key, exist_ok=True)
                _clients[key] = QdrantClient(path=key)
        return _clients[key]


@atexit.register
def close_clients() -> None:
    """Close clients while the interpreter still works (local mode flushes and unlocks its folder)."""
    with _lock:
        for client in _clients.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        _clients.clear()


def to_filter(where: Where | None):
    """Chroma-style ``where`` (``{"source": "a.pdf"}``, ``{"page": {"$gte": 2}}``, ``$and``/``$or``) as a Qdrant Filter."""
    from qdrant_client import models as qm

    if not where:
        return None
    must, should, must_not = [], [], []
    for key, cond in where.items():
        if key in ("$and", "$or"):
            parts = [to_filter(w) for w in cond]
            (must if key == "$and" else should).extend(parts)
            continue
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        for op, arg in ops.items():
            if op == "$eq":
                must.append(qm.FieldCondition(key=key, match=qm.MatchValue(value=arg)))
            elif op == "$ne":
                must_not.append(qm.FieldCondition(key=key, match=qm.MatchValue(value=arg)))
            elif op == "$in":
                must.append(qm.FieldCondition(key=key, match=qm.MatchAny(any=list(arg))))
            elif op == "$nin":
                must_not.append(qm.FieldCondition(key=key, match=qm.MatchAny(any=list(arg))))
            elif op in ("$gt", "$gte", "$lt", "$lte"):
                must.append(qm.FieldCondition(key=key, range=qm.Range(**{op[1:]: arg})))
            else:
                raise UsageError(f"Unknown filter operator {op!r}. Use $eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $and, $or.")
    return qm.Filter(must=must or None, should=should or None, must_not=must_not or None)


class QdrantStore(VectorStore):
    """Qdrant: embedded in a local folder, or a Qdrant server with ``url``."""

    name = "qdrant"
    persistent = True

    class Options(Options):
        url: str | None = Field(None, description="Qdrant server URL; without it, embedded local mode in a folder.")
        api_key: str | None = Field(None, description="API key for a Qdrant server.")
        hnsw_ef: int = Field(128, ge=1, description="Search-time HNSW beam width; higher is closer to exact search.")

    def __init__(self, collection: str, path: str | None = None, embedder: str | None = None, **options):
        super().__init__(check_collection_name(collection), path, embedder, **options)
        if path is None and not self.options.url:
            from llm_magics import config

            path = config.settings().store_path
        self.path = os.path.join(path, "qdrant") if path and not self.options.url else path
        self.client = client_for(self.options.url, self.path, self.options.api_key)
        self.meta_collection = collection + META_SUFFIX
        self._dimension: int | None = None

    # -- collections ---------------------------------------------------------

    def _exists(self, name: str) -> bool:
        return self.client.collection_exists(name)

    def _ensure(self, dimension: int) -> None:
        from qdrant_client import models as qm

        if self._dimension == dimension:
            return
        if not self._exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config=qm.VectorParams(size=dimension, distance=qm.Distance.COSINE),
                hnsw_config=qm.HnswConfigDiff(ef_construct=200, m=16),
            )
        self._dimension = dimension

    def _ensure_meta(self) -> None:
        from qdrant_client import models as qm

        if not self._exists(self.meta_collection):
            self.client.create_collection(self.meta_collection, vectors_config=qm.VectorParams(size=1, distance=qm.Distance.DOT))

    # -- vectors -------------------------------------------------------------

    def upsert(self, ids, vectors, texts, metadatas) -> None:
        from qdrant_client import models as qm

        vectors = np.asarray(vectors, dtype=np.float32)
        if len(ids) == 0:
            return
        self._ensure(vectors.shape[1])
        points = [
            qm.PointStruct(id=point_id(i), vector=v.tolist(), payload={**m, TEXT: t, ID: i})
            for i, v, t, m in zip(ids, vectors, texts, metadatas)
        ]
        self.client.upsert(self.collection, points=points, wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        from qdrant_client import models as qm

        if ids and self._exists(self.collection):
            self.client.delete(self.collection, points_selector=qm.PointIdsList(points=[point_id(i) for i in ids]), wait=True)

    def query(self, vector, k: int, where: Where | None = None) -> list[Hit]:
        from qdrant_client import models as qm

        if not self._exists(self.collection):
            return []
        result = self.client.query_points(
            self.collection,
            query=np.asarray(vector, dtype=np.float32).tolist(),
            limit=k,
            query_filter=to_filter(where),
            # Local mode searches exactly and warns about search params; a server uses them.
            search_params=qm.SearchParams(hnsw_ef=max(self.options.hnsw_ef, k)) if self.options.url else None,
            with_payload=True,
        )
        return [self._hit(p) for p in result.points]

    @staticmethod
    def _hit(point) -> Hit:
        payload = dict(point.payload or {})
        text, id_ = payload.pop(TEXT, ""), payload.pop(ID, None)
        return Hit(text, float(point.score), payload, id_)

    def get(self, where: Where | None = None, ids: Sequence[str] | None = None, vectors: bool = False) -> list[dict]:
        if not self._exists(self.collection):
            return []
        if ids is not None:
            points = self.client.retrieve(self.collection, ids=[point_id(i) for i in ids], with_payload=True, with_vectors=vectors)
            flt = to_filter(where)
            if where:
                keep = {p.id for p in self._scroll(flt, vectors)}
                points = [p for p in points if p.id in keep]
        else:
            points = self._scroll(to_filter(where), vectors)
        out = []
        for p in points:
            payload = dict(p.payload or {})
            record = {"id": payload.pop(ID, None), "text": payload.pop(TEXT, ""), "metadata": payload}
            if vectors:
                record["vector"] = np.asarray(p.vector, dtype=np.float32)
            out.append(record)
        return out

    def _scroll(self, flt, vectors: bool):
        offset = None
        while True:
            points, offset = self.client.scroll(self.collection, scroll_filter=flt, limit=1000, offset=offset, with_payload=True, with_vectors=vectors)
            yield from points
            if offset is None:
                return

    def count(self) -> int:
        if not self._exists(self.collection):
            return 0
        return self.client.count(self.collection, exact=True).count

    # -- info and manifest: payload-only points in the companion collection ----

    def _meta_get(self, key: str) -> dict | None:
        if not self._exists(self.meta_collection):
            return None
        found = self.client.retrieve(self.meta_collection, ids=[point_id(key)], with_payload=True)
        return dict(found[0].payload["value"]) if found else None

    def _meta_set(self, key: str, value: dict | None, kind: str) -> None:
        from qdrant_client import models as qm

        self._ensure_meta()
        if value is None:
            self.client.delete(self.meta_collection, points_selector=qm.PointIdsList(points=[point_id(key)]), wait=True)
        else:
            point = qm.PointStruct(id=point_id(key), vector=[1.0], payload={"key": key, "kind": kind, "value": value})
            self.client.upsert(self.meta_collection, points=[point], wait=True)

    def info(self) -> dict:
        return self._meta_get(INFO_KEY) or {}

    def set_info(self, info: dict) -> None:
        self._meta_set(INFO_KEY, dict(info), "info")

    def manifest(self) -> dict[str, dict]:
        from qdrant_client import models as qm

        if not self._exists(self.meta_collection):
            return {}
        flt = qm.Filter(must=[qm.FieldCondition(key="kind", match=qm.MatchValue(value="manifest"))])
        out, offset = {}, None
        while True:
            points, offset = self.client.scroll(self.meta_collection, scroll_filter=flt, limit=1000, offset=offset, with_payload=True)
            for p in points:
                out[p.payload["key"][len("manifest:"):]] = dict(p.payload["value"])
            if offset is None:
                return out

    def set_manifest(self, key: str, entry: dict | None) -> None:
        self._meta_set("manifest:" + key, entry, "manifest")

    def drop(self) -> None:
        for name in (self.collection, self.meta_collection):
            if self._exists(name):
                self.client.delete_collection(name)
        self._dimension = None


@hookimpl
def register_vector_stores(register):
    register(QdrantStore)
