"""The Qdrant Edge engine: each collection is an Edge shard, a folder ``<root>/<name>``.

Qdrant Edge (``qdrant-edge-py``, Apache-2.0) is Qdrant's own Rust engine (its segment, shard,
WAL and HNSW crates) compiled into a Python extension that runs in-process, with no server
and no network. A shard has no background optimizer: after every write we run
``optimize()``, which returns at once unless a segment has grown past the indexing
threshold (Qdrant's default 10000 KB, about 6,700 384-dimensional vectors), in which case
it builds that segment's HNSW graph before returning. Below the threshold search is exact,
as on a Qdrant server. A shard's WAL locks its folder: one process at a time, and one open
``EdgeShard`` per folder in this process (the ``_shards`` cache).
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading

from llm_magics.errors import UsageError

from .filters import to_filter

CONFIG_FILE = "edge_config.json"  # written by EdgeShard.create: the folder holds a shard
SCROLL_PAGE = 1000

_shards: dict[str, object] = {}
_lock = threading.RLock()  # opening, closing and writing (update + optimize) one at a time


def open_shard(path: str):
    """The open shard in ``path`` (loaded once per process); a shard locked by another process is a UsageError."""
    from qdrant_edge import EdgeShard

    with _lock:
        if path not in _shards:
            try:
                _shards[path] = EdgeShard.load(path)
            except Exception as e:  # noqa: BLE001 - qdrant_edge raises plain Exception
                if "WouldBlock" in str(e):
                    raise UsageError(
                        f"The Qdrant Edge shard {path} is open in another process (its WAL allows one at a time). "
                        "Close that kernel, or share the collection through a Qdrant server (--store-option url=http://HOST:6333)."
                    ) from None
                raise
        return _shards[path]


def close_shard(path: str) -> None:
    with _lock:
        shard = _shards.pop(path, None)
        if shard is not None:
            shard.flush()
            shard.close()


@atexit.register
def close_shards() -> None:
    """Flush and close every shard while the interpreter still works (releases the WAL locks)."""
    with _lock:
        for path in list(_shards):
            try:
                close_shard(path)
            except Exception:  # noqa: BLE001 - best effort at exit
                pass


class EdgeEngine:
    """Collections as Qdrant Edge shards under ``root``; points as (id, vector, payload)."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def _shard(self, name: str):
        return open_shard(self._path(name))

    def exists(self, name: str) -> bool:
        path = self._path(name)
        return path in _shards or os.path.isfile(os.path.join(path, CONFIG_FILE))

    def create(self, name: str, dimension: int, distance: str = "cosine", hnsw: dict | None = None, indexing_threshold: int | None = None) -> None:
        import qdrant_edge as qe

        path = self._path(name)
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine if distance == "cosine" else qe.Distance.Dot),
            # full_scan_threshold: Qdrant's default (KB); filters matching less than this are searched exactly.
            hnsw_config=qe.HnswIndexConfig(**hnsw, full_scan_threshold=10000) if hnsw else None,
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=indexing_threshold) if indexing_threshold is not None else None,
        )
        with _lock:
            os.makedirs(self.root, exist_ok=True)
            _shards[path] = qe.EdgeShard.create(path, config)

    def index_keyword(self, name: str, field: str) -> None:
        import qdrant_edge as qe

        self._update(name, qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))

    def drop(self, name: str) -> None:
        path = self._path(name)
        with _lock:
            close_shard(path)
            shutil.rmtree(path, ignore_errors=True)

    def _update(self, name: str, operation) -> None:
        """Apply one update (written to the WAL before it returns), then let the optimizer run."""
        shard = self._shard(name)
        with _lock:
            shard.update(operation)
            shard.optimize()

    def upsert(self, name: str, points: list[tuple]) -> None:
        import qdrant_edge as qe

        self._update(name, qe.UpdateOperation.upsert_points([qe.Point(i, v, p) for i, v, p in points]))

    def delete(self, name: str, ids: list[str]) -> None:
        import qdrant_edge as qe

        self._update(name, qe.UpdateOperation.delete_points(ids))

    def search(self, name: str, vector: list[float], k: int, where, hnsw_ef: int):
        import qdrant_edge as qe

        request = qe.QueryRequest(
            limit=k,
            query=qe.Query.Nearest(vector),
            filter=to_filter(where, qe),
            with_payload=True,
            params=qe.SearchParams(hnsw_ef=hnsw_ef),
        )
        return self._shard(name).query(request)

    def retrieve(self, name: str, ids: list[str], vectors: bool):
        return self._shard(name).retrieve(ids, with_payload=True, with_vector=vectors)

    def scroll(self, name: str, where, vectors: bool):
        import qdrant_edge as qe

        shard, flt, offset = self._shard(name), to_filter(where, qe), None
        while True:
            records, offset = shard.scroll(qe.ScrollRequest(offset=offset, limit=SCROLL_PAGE, filter=flt, with_payload=True, with_vector=vectors))
            yield from records
            if offset is None:
                return

    def count(self, name: str) -> int:
        import qdrant_edge as qe

        return self._shard(name).count(qe.CountRequest(exact=True))

    def info(self, name: str):
        """Qdrant's own account of the shard: ``segments_count``, ``points_count``, ``indexed_vectors_count``."""
        return self._shard(name).info()
