"""The pgvector plugin against a real PostgreSQL + pgvector: entry point, the store contract,
the HNSW index it creates, and ingest/search/re-ingest/delete with the real MiniLM embedder."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

from llm_magics import UsageError, registry
from llm_magics.ingest.index import Index


def unit(rows):
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_found_through_its_entry_point():
    eps = {ep.name: ep for ep in metadata.entry_points(group="llm_magics")}
    assert eps["pgvector"].value == "llm_magics_pgvector" and eps["pgvector"].dist.name == "llm-magics-pgvector"
    assert registry.entries("vector_store")["pgvector"].plugin == "pgvector"


def test_store_contract_and_hnsw_index(pg_url):
    cls = registry.get("vector_store", "pgvector")
    store = cls("contract.test-1", url=pg_url)
    store.drop()
    vectors = unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]])
    metas = [{"source": "x.md", "page": 1}, {"source": "x.md", "page": 2}, {"source": "y.pdf", "page": 1}, {"source": "z.txt"}]
    store.upsert(["a", "b", "c", "d"], vectors, ["alpha", "beta", "gamma", "delta"], metas)
    assert store.count() == 4
    hits = store.query(unit([[1, 0, 0]])[0], k=2)
    assert [h.id for h in hits] == ["a", "b"] and hits[0].text == "alpha" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].metadata == {"source": "x.md", "page": 1}
    q = unit([[1, 0, 0]])[0]
    assert [h.id for h in store.query(q, k=4, where={"source": "y.pdf"})] == ["c"]
    assert {h.id for h in store.query(q, k=4, where={"page": {"$gte": 2}})} == {"b"}
    assert {h.id for h in store.query(q, k=4, where={"$or": [{"source": "z.txt"}, {"page": 2}]})} == {"b", "d"}
    assert {h.id for h in store.query(q, k=4, where={"source": {"$nin": ["x.md"]}})} == {"c", "d"}
    assert {h.id for h in store.query(q, k=4, where={"$and": [{"source": "x.md"}, {"page": {"$in": [2, 3]}}]})} == {"b"}
    records = {r["id"]: r for r in store.get(where={"source": "x.md"}, vectors=True)}
    assert set(records) == {"a", "b"} and records["b"]["text"] == "beta"
    np.testing.assert_allclose(records["a"]["vector"], vectors[0], atol=1e-6)
    assert [r["id"] for r in store.get(ids=["d", "missing"])] == ["d"]
    store.delete(["a", "b", "nope"])
    assert store.count() == 2

    # the plugin's HNSW index is there, on cosine distance, with its parameters
    (indexdef,) = store._conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s", (store.table, "%hnsw%")).fetchone()
    assert "vector_cosine_ops" in indexdef and "m='16'" in indexdef and "ef_construction='200'" in indexdef

    store.set_info({"embedder": "e", "dimension": 3})
    store.set_manifest("a.txt", {"version": "v1", "chunks": 1})
    store.set_manifest("b.txt", {"version": "v2"})
    store.set_manifest("b.txt", None)
    again = cls("contract.test-1", url=pg_url)  # a new connection sees the same
    assert again.info() == {"embedder": "e", "dimension": 3} and again.manifest() == {"a.txt": {"version": "v1", "chunks": 1}}
    again.drop()
    assert again.count() == 0 and again.manifest() == {} and again.info() == {}


def test_bad_or_missing_url_says_how_to_fix_it(pg_url):
    with pytest.raises(UsageError, match="--store-option url=postgresql://"):
        Index("x", store="pgvector")
    with pytest.raises(UsageError, match="Cannot connect to PostgreSQL .*fix --store-option url="):
        Index("x", store="pgvector", store_options={"url": "postgresql://nobody:secret@127.0.0.1:1/none"})


def test_ingest_search_reingest_delete_with_minilm(pg_url, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text("# Tides\n\nThe Moon's gravity pulls the oceans, so the sea rises and falls twice a day.")
    (docs / "bees.md").write_text("# Honey bees\n\nWorker bees collect nectar and pollen. The queen lays the eggs.")
    idx = Index("pg-docs", store="pgvector", store_options={"url": pg_url}, embedder="all-minilm-l6-v2")
    idx.drop()
    report = idx.add(docs, progress=False)
    assert report.files_read == 2 and report.chunks_added >= 2
    assert idx.search("Why does the sea level change?", k=1, mode="dense")[0].metadata["source"].endswith("tides.md")
    assert idx.add(docs, progress=False).chunks_added == 0
    assert idx.delete(str(docs / "tides.md")) >= 1
    assert [s.rsplit("/", 1)[-1] for s in idx.sources()] == ["bees.md"]
    idx.drop()
