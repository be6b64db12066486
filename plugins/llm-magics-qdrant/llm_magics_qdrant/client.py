"""The ``qdrant-client`` engine: a Qdrant server (``url``), or, to copy old collections out,
the client's local mode in a folder (what version 0.1 of this plugin ran: a Python stand-in
that searches exactly and ignores HNSW settings, not the Qdrant engine)."""

from __future__ import annotations

import atexit
import os
import threading

from llm_magics.errors import UsageError

from .filters import to_filter

_clients: dict[str, object] = {}
_lock = threading.RLock()


def client_for(url: str | None, path: str | None, api_key: str | None):
    """One client per server or folder (local mode locks its folder to one client per process);
    a server that does not answer is a UsageError."""
    from qdrant_client import QdrantClient

    key = url or os.path.abspath(path or ".")
    with _lock:
        if key not in _clients:
            if url:
                # check_compatibility=False: its version check runs in a thread that warns when nothing answers;
                # get_collections below asks the server once, here, and an error says what to do.
                client = QdrantClient(url=url, api_key=api_key, check_compatibility=False)
                try:
                    client.get_collections()
                except Exception as e:  # noqa: BLE001 - httpx/grpc/qdrant errors all mean "not there"
                    raise UsageError(
                        f"Cannot reach a Qdrant server at {url} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
                        "Start one (docker run -p 6333:6333 qdrant/qdrant), fix --store-option url=http://HOST:6333 (and api_key), "
                        "or leave url out to run Qdrant Edge in-process."
                    ) from None
                _clients[key] = client
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


class ClientEngine:
    """Collections through ``qdrant_client.QdrantClient``; points as (id, vector, payload)."""

    def __init__(self, url: str | None = None, path: str | None = None, api_key: str | None = None):
        self.url = url
        self.client = client_for(url, path, api_key)

    def exists(self, name: str) -> bool:
        return self.client.collection_exists(name)

    def create(self, name: str, dimension: int, distance: str = "cosine", hnsw: dict | None = None, indexing_threshold: int | None = None) -> None:
        from qdrant_client import models as qm

        self.client.create_collection(
            name,
            vectors_config=qm.VectorParams(size=dimension, distance=qm.Distance.COSINE if distance == "cosine" else qm.Distance.DOT),
            hnsw_config=qm.HnswConfigDiff(**hnsw) if hnsw else None,
            optimizers_config=qm.OptimizersConfigDiff(indexing_threshold=indexing_threshold) if indexing_threshold is not None else None,
        )

    def index_keyword(self, name: str, field: str) -> None:
        if self.url:  # local mode has no payload indexes (and warns)
            self.client.create_payload_index(name, field, field_schema="keyword", wait=True)

    def drop(self, name: str) -> None:
        self.client.delete_collection(name)

    def upsert(self, name: str, points: list[tuple]) -> None:
        from qdrant_client import models as qm

        self.client.upsert(name, points=[qm.PointStruct(id=i, vector=v, payload=p) for i, v, p in points], wait=True)

    def delete(self, name: str, ids: list[str]) -> None:
        from qdrant_client import models as qm

        self.client.delete(name, points_selector=qm.PointIdsList(points=ids), wait=True)

    def search(self, name: str, vector: list[float], k: int, where, hnsw_ef: int):
        from qdrant_client import models as qm

        return self.client.query_points(
            name,
            query=vector,
            limit=k,
            query_filter=to_filter(where, qm),
            # Local mode searches exactly and warns about search params; a server uses them.
            search_params=qm.SearchParams(hnsw_ef=hnsw_ef) if self.url else None,
            with_payload=True,
        ).points

    def retrieve(self, name: str, ids: list[str], vectors: bool):
        return self.client.retrieve(name, ids=ids, with_payload=True, with_vectors=vectors)

    def scroll(self, name: str, where, vectors: bool):
        from qdrant_client import models as qm

        flt, offset = to_filter(where, qm), None
        while True:
            points, offset = self.client.scroll(name, scroll_filter=flt, limit=1000, offset=offset, with_payload=True, with_vectors=vectors)
            yield from points
            if offset is None:
                return

    def count(self, name: str) -> int:
        return self.client.count(name, exact=True).count
