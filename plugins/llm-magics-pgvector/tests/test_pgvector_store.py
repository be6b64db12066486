"""The pgvector plugin against a real PostgreSQL + pgvector: entry point, the store contract,
the HNSW index it creates, and ingest/search/re-ingest/delete with the real MiniLM embedder."""

from __future__ import annotations

from importlib import metadata

import pytest

from llm_magics import UsageError, registry
from llm_magics.ingest.index import Index
from llm_magics.testing import check_store_contract


def test_found_through_its_entry_point():
    eps = {ep.name: ep for ep in metadata.entry_points(group="llm_magics")}
    assert eps["pgvector"].value == "llm_magics_pgvector" and eps["pgvector"].dist.name == "llm-magics-pgvector"
    assert registry.entries("vector_store")["pgvector"].plugin == "pgvector"


def test_store_contract_and_hnsw_index(pg_url):
    cls = registry.get("vector_store", "pgvector")
    store = cls("contract.test-1", url=pg_url)
    store.drop()
    check_store_contract(store)

    # the plugin's HNSW index is there, on cosine distance, with its parameters
    (indexdef,) = store._conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s", (store.table, "%hnsw%")).fetchone()
    assert "vector_cosine_ops" in indexdef and "m='16'" in indexdef and "ef_construction='200'" in indexdef

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
