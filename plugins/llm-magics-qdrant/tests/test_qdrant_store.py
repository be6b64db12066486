"""The Qdrant plugin, installed as its own distribution: entry point -> registry -> store -> magic."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

from llm_magics import plugins, registry
from llm_magics.errors import UsageError


@pytest.fixture
def store(tmp_path):
    cls = registry.get("vector_store", "qdrant")
    s = cls("contract-test", path=str(tmp_path))
    yield s
    s.drop()


def unit(rows):
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_found_through_its_entry_point():
    eps = {ep.name: ep for ep in metadata.entry_points(group="llm_magics")}
    assert eps["qdrant"].value == "llm_magics_qdrant"
    assert eps["qdrant"].dist.name == "llm-magics-qdrant"
    entry = registry.entries("vector_store")["qdrant"]
    assert entry.plugin == "qdrant"
    assert plugins.info["qdrant"].source.startswith("entry point llm-magics-qdrant")
    assert plugins.info["qdrant"].hooks == ["register_vector_stores"]


def test_upsert_query_get_delete(store):
    vectors = unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]])
    ids = ["a", "b", "c", "d"]
    metas = [{"source": "x.md", "page": 1}, {"source": "x.md", "page": 2}, {"source": "y.pdf", "page": 1}, {"source": "z.txt"}]
    store.upsert(ids, vectors, ["alpha", "beta", "gamma", "delta"], metas)
    assert store.count() == 4

    hits = store.query(unit([[1, 0, 0]])[0], k=2)
    assert [h.id for h in hits] == ["a", "b"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5) and hits[0].text == "alpha"
    assert hits[0].metadata == {"source": "x.md", "page": 1}

    assert [h.id for h in store.query(unit([[1, 0, 0]])[0], k=4, where={"source": "y.pdf"})] == ["c"]
    assert {h.id for h in store.query(unit([[1, 0, 0]])[0], k=4, where={"page": {"$gte": 2}})} == {"b"}
    assert {h.id for h in store.query(unit([[1, 0, 0]])[0], k=4, where={"$or": [{"source": "z.txt"}, {"page": 2}]})} == {"b", "d"}
    assert {h.id for h in store.query(unit([[1, 0, 0]])[0], k=4, where={"source": {"$nin": ["x.md"]}})} == {"c", "d"}

    records = {r["id"]: r for r in store.get(where={"source": "x.md"}, vectors=True)}
    assert set(records) == {"a", "b"} and records["b"]["text"] == "beta"
    np.testing.assert_allclose(records["a"]["vector"], vectors[0], atol=1e-6)
    assert [r["id"] for r in store.get(ids=["d", "missing"])] == ["d"]

    store.upsert(["a"], unit([[0, 0, 1]]), ["alpha v2"], [{"source": "x.md", "page": 1}])
    assert store.count() == 4
    assert store.query(unit([[0, 0, 1]])[0], k=1)[0].text in {"alpha v2", "delta"}

    store.delete(["a", "b", "nope"])
    assert store.count() == 2


def test_info_and_manifest_persist_across_reopen(tmp_path):
    cls = registry.get("vector_store", "qdrant")
    s = cls("persist-test", path=str(tmp_path))
    s.upsert(["a"], unit([[1, 2, 3]]), ["text"], [{"source": "a.txt"}])
    s.set_info({"embedder": "e", "dimension": 3})
    s.set_manifest("a.txt", {"ids": ["a"], "hash": "h"})
    s.set_manifest("b.txt", {"ids": []})
    s.set_manifest("b.txt", None)
    again = cls("persist-test", path=str(tmp_path))
    assert again.info() == {"embedder": "e", "dimension": 3}
    assert again.manifest() == {"a.txt": {"ids": ["a"], "hash": "h"}}
    assert again.count() == 1
    again.drop()
    assert cls("persist-test", path=str(tmp_path)).count() == 0


def test_bad_names_and_options_are_usage_errors(tmp_path):
    cls = registry.get("vector_store", "qdrant")
    with pytest.raises(UsageError, match="Bad collection name"):
        cls("a/b", path=str(tmp_path))
    with pytest.raises(UsageError, match="Valid options: url, api_key, hnsw_ef"):
        cls("fine-name", path=str(tmp_path), colour="red")


def test_ingest_and_search_from_the_magic(ip, tmp_path):
    """End to end: %ingest --store qdrant with the real default embedder, then search."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "birds.md").write_text("# Birds\n\nThe kestrel is a small falcon that hovers over fields hunting voles.\n")
    (docs / "ships.txt").write_text("Container ships carry thousands of steel boxes across the ocean.\n")
    ip.run_cell(f"%ingest {docs} --recursive --store qdrant --collection birds-and-ships -o idx").raise_error()
    idx = ip.user_ns["idx"]
    assert type(idx.store).__name__ == "QdrantStore"
    hits = idx.search("which bird hovers while hunting?", k=2)
    assert hits[0].metadata["source"].endswith("birds.md")
    assert hits[0].score > hits[1].score
    before = idx.store.count()
    ip.run_cell(f"%ingest {docs} --recursive --store qdrant --collection birds-and-ships").raise_error()
    assert idx.store.count() == before  # re-ingesting adds nothing
