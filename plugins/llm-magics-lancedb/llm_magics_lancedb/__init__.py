"""``lancedb``: a vector store for llm-magics in LanceDB (embedded, on-disk, columnar).

``Index(name, store="lancedb")`` or ``%ingest docs/ --store lancedb``. LanceDB runs in the
kernel (a Rust library, no server) and keeps each collection as a Lance table in a folder,
``<store_path>/lancedb`` unless ``path`` (``--store-option path=DIR``) or the ``uri`` option
(object storage: ``s3://...``) says otherwise.
A table has four columns: ``id``, ``vector`` (fixed-size float32), ``text`` and ``metadata``
(a ``lance.json`` column that ``where`` filters read through SQL, see filters.py); ``id``
carries a BTREE index, so upserts (``merge_insert`` on ``id``: idempotent) and lookups by id
stay fast as the table grows.

Search is cosine, exact (a flat scan) until the table has an ANN index: ``IVF_HNSW_SQ`` by
default (``index`` option), built by ``create_index()`` or by the upsert that takes the
table past ``index_threshold`` rows. Rows added after the index was built are searched
exactly beside it until ``optimize()`` folds them in (run every ``OPTIMIZE_EVERY`` rows
written). ``nprobes``, ``ef`` and ``refine_factor`` tune search against the index;
``refine_factor`` 1 (the default) recomputes the hits' distances from the full vectors,
so scores are exact cosine similarities (1.0 for the same vector) with or without an index.

Collection info and the ingest manifest live in a companion table ``<name>__llm_magics``
(key, kind, value as JSON); each write is one ``merge_insert`` or delete, one commit.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import timedelta
from typing import Literal, Sequence

import numpy as np
from pydantic import Field

from llm_magics import hookimpl
from llm_magics.errors import UsageError
from llm_magics.extension import Options
from llm_magics.ingest.documents import Hit
from llm_magics.ingest.stores import VectorStore, Where, check_collection_name

from .filters import quote, to_sql

FOLDER = "lancedb"  # under the store_path setting
META_SUFFIX = "__llm_magics"
INFO_KEY = "info"
#: Rows written between two optimize() runs (compaction, new rows folded into the indices).
OPTIMIZE_EVERY = 50_000
#: ids per ``id IN (...)`` predicate.
ID_CHUNK = 1000
INDEX_TYPES = {"ivf_hnsw_sq": "IvfHnswSq", "ivf_pq": "IvfPq"}  # our names -> lancedb.index config classes
BUILD_OPTIONS = ("num_partitions", "num_sub_vectors", "m", "ef_construction")

_connections: dict[str, object] = {}
_lock = threading.RLock()


def connect(uri: str):
    """One LanceDB connection per folder or URI; every read sees the latest committed version."""
    with _lock:
        if uri not in _connections:
            import lancedb

            _connections[uri] = lancedb.connect(uri, read_consistency_interval=timedelta(0))
        return _connections[uri]


def schema(dimension: int):
    """A collection's columns."""
    import pyarrow as pa

    return pa.schema([
        pa.field("id", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float32(), dimension)),  # (d,) per row
        pa.field("text", pa.string()),
        pa.field("metadata", pa.json_(pa.utf8())),  # stored as lance.json (JSONB)
    ])  # fmt: skip


class LanceDBOptions(Options):
    uri: str | None = Field(None, description="A LanceDB URI instead of the folder (s3://bucket/prefix, ...); default: the path store option, else <store_path>/lancedb.")
    index: Literal["ivf_hnsw_sq", "ivf_pq", "none"] = Field(
        "ivf_hnsw_sq", description="ANN index that create_index() builds (and upsert past index_threshold rows): ivf_hnsw_sq, ivf_pq, or none (always exact search)."
    )
    index_threshold: int | None = Field(
        50_000, ge=1, description="Rows at which an upsert builds the ANN index itself; None: only create_index() builds it. Below it, search is exact."
    )
    nprobes: int | None = Field(None, ge=1, description="IVF partitions searched per query (higher: better recall, slower); None: LanceDB's default (20).")
    ef: int | None = Field(
        100, ge=1, description="HNSW candidates examined per partition (ivf_hnsw_sq; at least k); None: LanceDB's default (1.5 x k, recall@10 about 0.8 on MiniLM-like data)."
    )
    refine_factor: int | None = Field(
        1, ge=1, description="Fetch refine_factor x k candidates from the index and re-rank them by exact distance; 1: exact scores for the k hits; None: index distances as they are."
    )
    bypass_vector_index: bool = Field(False, description="Always search exactly (a flat scan), even when an ANN index exists: the reference for recall.")
    num_partitions: int | None = Field(None, ge=1, description="IVF partitions of the index; None: LanceDB's default (from the row count). Applied by create_index().")
    num_sub_vectors: int | None = Field(None, ge=1, description="PQ sub-vectors (ivf_pq; must divide the dimension); None: LanceDB's default. Applied by create_index().")
    m: int = Field(20, ge=4, description="HNSW links per node (ivf_hnsw_sq). Applied by create_index().")
    ef_construction: int = Field(300, ge=10, description="HNSW candidates examined while building the graph (ivf_hnsw_sq). Applied by create_index().")


class LanceDBStore(VectorStore):
    """LanceDB tables in a local folder (or object store): exact search, or an IVF_HNSW_SQ / IVF_PQ index."""

    name = "lancedb"
    persistent = True
    Options = LanceDBOptions

    def __init__(self, collection: str, path: str | None = None, embedder: str | None = None, **options):
        super().__init__(check_collection_name(collection), path, embedder, **options)
        uri = self.options.uri
        if uri is None:
            if path is None:
                from llm_magics import config

                path = os.path.join(config.settings().store_path, FOLDER)
            uri = os.path.abspath(path)
        self.path = uri
        self.meta_collection = collection + META_SUFFIX
        self._db = connect(uri)
        self._write_lock = threading.RLock()
        self._has_index: bool | None = None  # None: not looked up yet
        self._since_optimize = 0

    # -- tables ----------------------------------------------------------------

    def _open(self, name: str):
        """The table ``name`` at its latest version, or None when there is none. Opened on every
        call (about 0.5 ms on a local disk), so a table dropped or recreated by another store
        object or process is never read through a stale handle."""
        try:
            return self._db.open_table(name)
        except ValueError:  # "Table 'x' was not found"
            return None

    @property
    def table(self):
        """The collection's table (None before the first upsert)."""
        return self._open(self.collection)

    def _create(self, dimension: int):
        from lancedb.index import BTree

        table = self._db.create_table(self.collection, schema=schema(dimension), exist_ok=True)
        if not any(i.columns == ["id"] for i in table.list_indices()):
            table.create_index("id", config=BTree())
        self._has_index = False
        return table

    @staticmethod
    def _dimension(table) -> int:
        return table.schema.field("vector").type.list_size

    def has_index(self) -> bool:
        """Whether the collection has an ANN index on its vectors."""
        if self._has_index is None:
            table = self.table
            self._has_index = table is not None and any(i.columns == ["vector"] for i in table.list_indices())
        return self._has_index

    def create_index(self, index: str | None = None, **build) -> dict:
        """Build (or rebuild) the ANN index: ``index`` (default: the ``index`` option) with the
        build options (``num_partitions``, ``num_sub_vectors``, ``m``, ``ef_construction``) as
        ``build`` overrides or the store's options. Returns LanceDB's index statistics."""
        import lancedb.index as li

        unknown = set(build) - set(BUILD_OPTIONS)
        if unknown:
            raise UsageError(f"create_index() takes the build options {', '.join(BUILD_OPTIONS)}, not {', '.join(sorted(unknown))}.")
        o = self.options.model_copy(update=build) if build else self.options
        kind = index or o.index
        if kind not in INDEX_TYPES:
            raise UsageError(f"No ANN index {kind!r}: use one of {', '.join(INDEX_TYPES)} (create_index('ivf_hnsw_sq'), or --store-option index=ivf_pq).")
        table = self.table
        if table is None or table.count_rows() == 0:
            raise UsageError(f"Collection {self.collection!r} is empty: add data (%ingest ... --store lancedb) before building an index.")
        params: dict = {"distance_type": "cosine", "num_partitions": o.num_partitions}
        if kind == "ivf_pq":
            params["num_sub_vectors"] = o.num_sub_vectors
        else:
            params.update(m=o.m, ef_construction=o.ef_construction)
        with self._write_lock:
            try:
                table.create_index("vector", config=getattr(li, INDEX_TYPES[kind])(**params), replace=True)
            except (ValueError, RuntimeError) as e:
                raise UsageError(f"LanceDB could not build the {kind} index ({str(e).splitlines()[0]}). Check num_partitions / num_sub_vectors (must divide the dimension {self._dimension(table)}).") from None
            self._has_index = True
            self._since_optimize = 0
        return self.index_stats()

    def index_stats(self) -> dict:
        """LanceDB's account of the vector index ({} without one): type, indexed and unindexed rows."""
        table = self.table
        if table is None or not self.has_index():
            return {}
        name = next(i.name for i in table.list_indices() if i.columns == ["vector"])
        s = table.index_stats(name)
        return {"index_type": s.index_type, "distance_type": s.distance_type, "num_indexed_rows": s.num_indexed_rows, "num_unindexed_rows": s.num_unindexed_rows}

    def optimize(self, cleanup_older_than: timedelta | None = timedelta(minutes=1)) -> None:
        """Compact small fragments, fold new rows into the indices and delete versions older than ``cleanup_older_than``."""
        table = self.table
        if table is None:
            return
        with self._write_lock:
            table.optimize(cleanup_older_than=cleanup_older_than)
            self._since_optimize = 0

    def _after_write(self, rows: int) -> None:
        self._since_optimize += rows
        o = self.options
        if not self.has_index() and o.index != "none" and o.index_threshold is not None and self.table.count_rows() >= o.index_threshold:
            self.create_index()
        elif self._since_optimize >= OPTIMIZE_EVERY:
            self.optimize()

    # -- vectors -------------------------------------------------------------

    def upsert(self, ids, vectors, texts, metadatas) -> None:
        import pyarrow as pa

        if len(ids) == 0:
            return
        vectors = np.asarray(vectors, dtype=np.float32)  # (n, d)
        last = {str(i): n for n, i in enumerate(ids)}
        if len(last) < len(ids):  # one row per id, the last one wins (merge_insert would insert both)
            keep = sorted(last.values())
            ids, vectors = [ids[n] for n in keep], vectors[keep]
            texts, metadatas = [texts[n] for n in keep], [metadatas[n] for n in keep]
        with self._write_lock:
            table = self.table or self._create(vectors.shape[1])
            d = self._dimension(table)
            if vectors.ndim != 2 or vectors.shape[1] != d:
                raise UsageError(
                    f"Collection {self.collection!r} holds {d}-dimensional vectors, not {vectors.shape[-1]}-dimensional ones: "
                    "use the embedder it was built with, or another --collection."
                )
            data = pa.table(
                [
                    pa.array([str(i) for i in ids], pa.string()),
                    pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), d),
                    pa.array(list(texts), pa.string()),
                    pa.array([json.dumps(m, ensure_ascii=False) for m in metadatas], pa.json_(pa.utf8())),
                ],
                schema=schema(d),
            )
            table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data)
            self._after_write(len(ids))

    def delete(self, ids: Sequence[str]) -> None:
        table = self.table
        if table is None or not ids:
            return
        with self._write_lock:
            for i in range(0, len(ids), ID_CHUNK):
                table.delete(_ids_in(ids[i : i + ID_CHUNK]))

    def query(self, vector, k: int, where: Where | None = None) -> list[Hit]:
        table = self.table
        if table is None:
            return []
        o = self.options
        vector = np.asarray(vector, dtype=np.float32).ravel()  # (d,)
        search = table.search(vector, vector_column_name="vector").distance_type("cosine").select(["id", "text", "metadata", "_distance"]).limit(k)
        predicate = to_sql(where)
        if predicate is not None:
            search = search.where(predicate, prefilter=True)
        if o.bypass_vector_index:
            search = search.bypass_vector_index()
        elif self.has_index():
            if o.nprobes is not None:
                search = search.nprobes(o.nprobes)
            if o.ef is not None:
                search = search.ef(max(o.ef, k))
            if o.refine_factor is not None:
                search = search.refine_factor(o.refine_factor)
        rows = search.to_arrow().to_pylist()
        return [Hit(r["text"] or "", 1.0 - float(r["_distance"]), json.loads(r["metadata"] or "{}"), r["id"]) for r in rows]

    def get(self, where: Where | None = None, ids: Sequence[str] | None = None, vectors: bool = False) -> list[dict]:
        table = self.table
        if table is None:
            return []
        columns = ["id", "text", "metadata"] + (["vector"] if vectors else [])
        predicate = to_sql(where)
        if ids is None:
            parts = [self._scan(table, predicate, columns)]
        else:
            parts = []
            for i in range(0, len(ids), ID_CHUNK):
                cond = _ids_in(ids[i : i + ID_CHUNK])
                parts.append(self._scan(table, cond if predicate is None else f"{cond} AND {predicate}", columns))
        out = []
        for part in parts:
            if vectors:
                d = self._dimension(table)
                matrix = part.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, d)  # (n, d)
            for j, r in enumerate(part.select(["id", "text", "metadata"]).to_pylist()):
                record = {"id": r["id"], "text": r["text"] or "", "metadata": json.loads(r["metadata"] or "{}")}
                if vectors:
                    record["vector"] = np.array(matrix[j], dtype=np.float32)
                out.append(record)
        if ids is not None:  # in the order asked for
            order = {id_: n for n, id_ in enumerate(ids)}
            out.sort(key=lambda rec: order[rec["id"]])
        return out

    @staticmethod
    def _scan(table, predicate: str | None, columns: list[str]):
        query = table.search().select(columns).limit(None)
        if predicate is not None:
            query = query.where(predicate)
        return query.to_arrow()

    def count(self) -> int:
        table = self.table
        return table.count_rows() if table is not None else 0

    # -- info and manifest: rows of the companion table ------------------------

    def _meta(self, create: bool = False):
        table = self._open(self.meta_collection)
        if table is None and create:
            import pyarrow as pa

            schema = pa.schema([pa.field("key", pa.string(), nullable=False), pa.field("kind", pa.string()), pa.field("value", pa.string())])
            table = self._db.create_table(self.meta_collection, schema=schema, exist_ok=True)
        return table

    def _meta_get(self, key: str) -> dict | None:
        table = self._meta()
        if table is None:
            return None
        rows = self._scan(table, f"key = {quote(key)}", ["value"]).to_pylist()
        return json.loads(rows[0]["value"]) if rows else None

    def _meta_set(self, key: str, value: dict | None, kind: str) -> None:
        import pyarrow as pa

        with self._write_lock:
            if value is None:
                table = self._meta()
                if table is not None:
                    table.delete(f"key = {quote(key)}")
                return
            table = self._meta(create=True)
            row = pa.table({"key": [key], "kind": [kind], "value": [json.dumps(value)]})
            table.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(row)

    def info(self) -> dict:
        return self._meta_get(INFO_KEY) or {}

    def set_info(self, info: dict) -> None:
        self._meta_set(INFO_KEY, dict(info), "info")

    def manifest(self) -> dict[str, dict]:
        table = self._meta()
        if table is None:
            return {}
        rows = self._scan(table, "kind = 'manifest'", ["key", "value"]).to_pylist()
        return {r["key"][len("manifest:") :]: json.loads(r["value"]) for r in rows}

    def set_manifest(self, key: str, entry: dict | None) -> None:
        self._meta_set("manifest:" + key, entry, "manifest")

    def drop(self) -> None:
        with self._write_lock:
            for name in (self.collection, self.meta_collection):
                self._db.drop_table(name, ignore_missing=True)
            self._has_index = None
            self._since_optimize = 0


def _ids_in(ids: Sequence[str]) -> str:
    return "id IN (" + ", ".join(quote(i) for i in ids) + ")"


@hookimpl
def register_vector_stores(register):
    register(LanceDBStore)
