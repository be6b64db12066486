"""``pgvector``: a vector store for llm-magics in PostgreSQL with the pgvector extension.

``Index(name, store="pgvector", store_options={"url": "postgresql://user:pw@host/db"})`` or
``%ingest docs/ --store pgvector --store-option url=postgresql://...``. Each collection is a
table ``llm_magics_<name>`` (id, embedding vector(d), text, metadata jsonb) with an HNSW
index on cosine distance (``m`` and ``ef_construction`` as options), created by the plugin
on the first insert; queries run with ``hnsw.ef_search`` set per transaction and pgvector's
iterative scan (strict order), so filtered queries still return ``k`` rows. Collection
info and the ingest manifest live in two small tables (``llm_magics_collections``,
``llm_magics_manifest``); each manifest entry is one row, written in one statement.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Sequence

import numpy as np
from pydantic import Field

from llm_magics import hookimpl
from llm_magics.errors import UsageError
from llm_magics.extension import Options
from llm_magics.ingest.documents import Hit
from llm_magics.ingest.stores import VectorStore, Where, check_collection_name

COLLECTIONS, MANIFEST = "llm_magics_collections", "llm_magics_manifest"


def table_name(collection: str) -> str:
    """``llm_magics_<name>`` within PostgreSQL's 63-byte identifiers (long names: a prefix and a hash)."""
    name = "llm_magics_" + collection
    if len(name) <= 63:
        return name
    return name[:54] + "_" + hashlib.sha256(collection.encode()).hexdigest()[:8]


def to_sql(where: Where | None):
    """Chroma-style ``where`` as a psycopg SQL fragment on the ``metadata`` jsonb column."""
    from psycopg import sql

    if not where:
        return sql.SQL("TRUE")
    parts = []
    for key, cond in where.items():
        if key in ("$and", "$or"):
            joiner = sql.SQL(" AND " if key == "$and" else " OR ")
            parts.append(sql.SQL("({})").format(joiner.join([to_sql(w) for w in cond]) if cond else sql.SQL("TRUE")))
            continue
        field = sql.SQL("(metadata -> {})").format(sql.Literal(key))
        for op, arg in (cond if isinstance(cond, dict) else {"$eq": cond}).items():
            if op in ("$in", "$nin"):
                values = sql.SQL(", ").join(sql.Literal(json.dumps(a)) + sql.SQL("::jsonb") for a in arg) if arg else None
                test = sql.SQL("{} IN ({})").format(field, values) if values else sql.SQL("FALSE")
                parts.append(test if op == "$in" else sql.SQL("({} IS NULL OR NOT ({}))").format(field, test))
                continue
            value = sql.SQL("{}::jsonb").format(sql.Literal(json.dumps(arg)))
            if op == "$eq":
                parts.append(sql.SQL("{} = {}").format(field, value))
            elif op == "$ne":
                parts.append(sql.SQL("{} IS DISTINCT FROM {}").format(field, value))
            elif op in ("$gt", "$gte", "$lt", "$lte"):
                sign = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
                parts.append(sql.SQL("(jsonb_typeof({f}) = jsonb_typeof({v}) AND {f} " + sign + " {v})").format(f=field, v=value))
            else:
                raise UsageError(f"Unknown filter operator {op!r}. Use $eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $and, $or.")
    return sql.SQL(" AND ").join(parts)


class PgvectorStore(VectorStore):
    """PostgreSQL + pgvector (cosine HNSW), at the ``url`` option."""

    name = "pgvector"
    persistent = True

    class Options(Options):
        url: str | None = Field(None, description="PostgreSQL connection URL (postgresql://user:password@host:port/db); required.")
        ef_search: int = Field(128, ge=1, le=1000, description="HNSW candidates examined per query (hnsw.ef_search; higher: better recall, slower).")
        ef_construction: int = Field(200, ge=4, description="HNSW candidates examined while building the index.")
        m: int = Field(16, ge=2, le=100, description="HNSW links per node.")

    def __init__(self, collection: str, path: str | None = None, embedder: str | None = None, **options):
        super().__init__(check_collection_name(collection), path, embedder, **options)
        if not self.options.url:
            raise UsageError("The pgvector store needs a database: --store-option url=postgresql://USER:PASSWORD@HOST:PORT/DB (or store_options={'url': ...}).")
        self.path = re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", self.options.url)  # shown in stats, password masked
        self.table = table_name(self.collection)
        self._lock = threading.RLock()
        self._conn = self._connect()
        self._dimension: int | None = None

    def _connect(self):
        import psycopg
        from pgvector.psycopg import register_vector

        try:
            conn = psycopg.connect(self.options.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as e:
            raise UsageError(
                f"Cannot connect to PostgreSQL at {self.path} ({str(e).strip().splitlines()[0]}). "
                "Start the server or fix --store-option url=postgresql://USER:PASSWORD@HOST:PORT/DB."
            ) from None
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {COLLECTIONS} (name text PRIMARY KEY, info jsonb NOT NULL)")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {MANIFEST} (collection text, key text, entry jsonb NOT NULL, PRIMARY KEY (collection, key))")
        return conn

    def _sql(self, text: str, **parts):
        from psycopg import sql

        return sql.SQL(text).format(t=sql.Identifier(self.table), **parts)

    def _exists(self) -> bool:
        with self._lock:
            return self._conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{self.table}"',)).fetchone()[0]

    def _ensure(self, dimension: int) -> None:
        if self._dimension == dimension:
            return
        from psycopg import sql

        o = self.options
        with self._lock, self._conn.transaction():
            self._conn.execute(self._sql("CREATE TABLE IF NOT EXISTS {t} (id text PRIMARY KEY, embedding vector({d}) NOT NULL, text text NOT NULL, metadata jsonb NOT NULL)", d=sql.Literal(dimension)))
            self._conn.execute(self._sql(
                "CREATE INDEX IF NOT EXISTS {i} ON {t} USING hnsw (embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {ef})",
                i=sql.Identifier(self.table[:58] + "_hnsw"), m=sql.Literal(o.m), ef=sql.Literal(o.ef_construction),
            ))  # fmt: skip
        self._dimension = dimension

    # -- vectors -------------------------------------------------------------

    def upsert(self, ids, vectors, texts, metadatas) -> None:
        if len(ids) == 0:
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        self._ensure(vectors.shape[1])
        rows = [(i, v, t, json.dumps({k: x for k, x in m.items() if x is not None})) for i, v, t, m in zip(ids, vectors, texts, metadatas)]
        with self._lock, self._conn.cursor() as cur:
            cur.executemany(self._sql(
                "INSERT INTO {t} (id, embedding, text, metadata) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, text = EXCLUDED.text, metadata = EXCLUDED.metadata"
            ), rows)  # fmt: skip

    def delete(self, ids: Sequence[str]) -> None:
        if ids and self._exists():
            with self._lock:
                self._conn.execute(self._sql("DELETE FROM {t} WHERE id = ANY(%s)"), (list(ids),))

    def query(self, vector, k: int, where: Where | None = None) -> list[Hit]:
        from psycopg import sql

        if not self._exists():
            return []
        vector = np.asarray(vector, dtype=np.float32)
        with self._lock, self._conn.transaction():
            self._conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(max(self.options.ef_search, k))))
            self._conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            rows = self._conn.execute(
                self._sql("SELECT id, text, metadata, embedding <=> %s AS d FROM {t} WHERE {w} ORDER BY embedding <=> %s LIMIT %s", w=to_sql(where)),
                (vector, vector, k),
            ).fetchall()
        return [Hit(text, 1.0 - float(d), dict(meta), id_) for id_, text, meta, d in rows]

    def get(self, where: Where | None = None, ids: Sequence[str] | None = None, vectors: bool = False) -> list[dict]:
        from psycopg import sql

        if not self._exists():
            return []
        cond = to_sql(where)
        params: tuple = ()
        if ids is not None:
            cond, params = sql.SQL("({}) AND id = ANY(%s)").format(cond), (list(ids),)
        cols = "id, text, metadata" + (", embedding" if vectors else "")
        with self._lock:
            rows = self._conn.execute(self._sql("SELECT " + cols + " FROM {t} WHERE {w} ORDER BY id", w=cond), params).fetchall()
        out = []
        for row in rows:
            rec = {"id": row[0], "text": row[1], "metadata": dict(row[2])}
            if vectors:
                vec = row[3]
                rec["vector"] = np.asarray(vec.to_numpy() if hasattr(vec, "to_numpy") else vec, dtype=np.float32)  # pgvector >= 0.4: a Vector
            out.append(rec)
        return out

    def count(self) -> int:
        if not self._exists():
            return 0
        with self._lock:
            return self._conn.execute(self._sql("SELECT count(*) FROM {t}")).fetchone()[0]

    # -- info and manifest -----------------------------------------------------

    def info(self) -> dict:
        with self._lock:
            row = self._conn.execute(f"SELECT info FROM {COLLECTIONS} WHERE name = %s", (self.collection,)).fetchone()
        return dict(row[0]) if row else {}

    def set_info(self, info: dict) -> None:
        with self._lock:
            self._conn.execute(
                f"INSERT INTO {COLLECTIONS} (name, info) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET info = EXCLUDED.info",
                (self.collection, json.dumps(info)),
            )

    def manifest(self) -> dict[str, dict]:
        with self._lock:
            rows = self._conn.execute(f"SELECT key, entry FROM {MANIFEST} WHERE collection = %s", (self.collection,)).fetchall()
        return {k: dict(e) for k, e in rows}

    def set_manifest(self, key: str, entry: dict | None) -> None:
        with self._lock:
            if entry is None:
                self._conn.execute(f"DELETE FROM {MANIFEST} WHERE collection = %s AND key = %s", (self.collection, key))
            else:
                self._conn.execute(
                    f"INSERT INTO {MANIFEST} (collection, key, entry) VALUES (%s, %s, %s) ON CONFLICT (collection, key) DO UPDATE SET entry = EXCLUDED.entry",
                    (self.collection, key, json.dumps(entry)),
                )

    def drop(self) -> None:
        with self._lock, self._conn.transaction():
            self._conn.execute(self._sql("DROP TABLE IF EXISTS {t}"))
            self._conn.execute(f"DELETE FROM {COLLECTIONS} WHERE name = %s", (self.collection,))
            self._conn.execute(f"DELETE FROM {MANIFEST} WHERE collection = %s", (self.collection,))
        self._dimension = None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


@hookimpl
def register_vector_stores(register):
    register(PgvectorStore)
