"""Both vector stores through the same contract, plus what only Chroma promises."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from llm_magics import registry
from llm_magics.errors import UsageError
from llm_magics.ingest.stores import get_store_class


def unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(params=["memory", "chroma"])
def store(request, store_path):
    cls = get_store_class(request.param)
    s = cls(f"contract-{request.param}-{abs(hash(request.node.name)) % 10**8}", path=str(store_path))
    yield s
    s.drop()


def test_both_stores_are_plugins():
    assert {"chroma", "memory"} <= set(registry.names("vector_store"))


def test_upsert_query_get_delete(store):
    vectors = unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]])
    metas = [{"source": "a.txt", "page": 1}, {"source": "a.txt", "page": 2}, {"source": "b.txt"}, {"source": "c.txt"}]
    store.upsert(["1", "2", "3", "4"], vectors, ["one", "two", "three", "four"], metas)
    assert store.count() == 4
    hits = store.query(unit([[1, 0, 0]])[0], 2)
    assert [h.id for h in hits] == ["1", "2"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[1].score == pytest.approx(float(vectors[1] @ vectors[0]), abs=1e-5)
    assert hits[0].text == "one" and hits[0].metadata == {"source": "a.txt", "page": 1}
    # filters in Chroma's syntax
    assert {h.id for h in store.query(vectors[0], 5, where={"source": "b.txt"})} == {"3"}
    assert {h.id for h in store.query(vectors[0], 5, where={"page": {"$gte": 2}})} == {"2"}
    assert {h.id for h in store.query(vectors[0], 5, where={"source": {"$in": ["b.txt", "c.txt"]}})} == {"3", "4"}
    assert {h.id for h in store.query(vectors[0], 5, where={"$and": [{"source": "a.txt"}, {"page": 1}]})} == {"1"}
    # upsert replaces
    store.upsert(["3"], unit([[1, 0, 0]]), ["three again"], [{"source": "b.txt"}])
    assert store.count() == 4
    assert {r["text"] for r in store.get(ids=["3"])} == {"three again"}
    got = store.get(where={"source": "a.txt"}, vectors=True)
    assert {r["id"] for r in got} == {"1", "2"}
    assert np.allclose(np.asarray(next(r for r in got if r["id"] == "1")["vector"]), vectors[0], atol=1e-6)
    store.delete(["1", "2", "nope"])
    assert store.count() == 2
    assert {h.id for h in store.query(vectors[0], 10)} == {"3", "4"}


def test_info_and_manifest(store):
    assert store.info() == {}
    store.set_info({"embedder": "x", "dimension": 3})
    assert store.info() == {"embedder": "x", "dimension": 3}
    store.set_manifest("/a", {"version": "v1", "chunks": 3})
    store.set_manifest("/b", {"version": "v2", "chunks": 1})
    store.set_manifest("/b", None)
    assert store.manifest() == {"/a": {"version": "v1", "chunks": 3}}


def test_bad_collection_names_are_usage_errors(store_path):
    for cls in (get_store_class("memory"), get_store_class("chroma")):
        with pytest.raises(UsageError, match="Bad collection name"):
            cls("a b!", path=str(store_path))


def test_memory_store_is_shared_within_the_process():
    cls = get_store_class("memory")
    one = cls("shared-mem")
    one.upsert(["x"], unit([[1, 0]]), ["hello"], [{"source": "s"}])
    assert cls("shared-mem").count() == 1
    one.drop()
    assert cls("shared-mem").count() == 0


def test_chroma_hnsw_settings_and_our_embedding_function(store_path):
    from llm_magics.ingest.stores.chroma import ChromaStore

    s = ChromaStore("hnsw-check", path=str(store_path), embedder="all-minilm-l6-v2", ef_search=150)
    s.upsert(["a"], unit([[1, 0, 0]]), ["t"], [{"source": "s"}])
    hnsw = s.hnsw()
    assert hnsw["space"] == "cosine" and hnsw["ef_search"] == 150 and hnsw["ef_construction"] == 200
    config = s.col.configuration_json
    assert config["embedding_function"]["name"] == "llm_magics"  # never chromadb's "default"
    assert config["embedding_function"]["config"] == {"embedder": "all-minilm-l6-v2"}


def test_chroma_persists_across_processes(store_path):
    from llm_magics.ingest.stores.chroma import ChromaStore

    s = ChromaStore("persisted", path=str(store_path))
    s.upsert(["a", "b"], unit([[1, 0], [0, 1]]), ["first", "second"], [{"source": "x"}, {"source": "y"}])
    s.set_info({"embedder": "e", "dimension": 2})
    s.set_manifest("/x", {"version": "v"})
    code = textwrap.dedent(
        f"""
        from llm_magics.ingest.stores.chroma import ChromaStore
        s = ChromaStore("persisted", path={str(store_path)!r})
        print(s.count(), s.info()["embedder"], s.manifest()["/x"]["version"], s.query([0.0, 1.0], 1)[0].text)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["2", "e", "v", "second"], out.stderr


def test_chroma_recall_matches_exact_search(store_path):
    """HNSW with our ef settings returns what exact numpy search returns."""
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(3000, 48)))
    queries = unit(rng.normal(size=(30, 48)))
    ids = [str(i) for i in range(len(vectors))]
    texts = [f"t{i}" for i in ids]
    metas = [{"source": "s"}] * len(ids)
    chroma = get_store_class("chroma")("recall", path=str(store_path))
    memory = get_store_class("memory")("recall-exact")
    for s in (chroma, memory):
        s.upsert(ids, vectors, texts, metas)
    found = total = 0
    for q in queries:
        exact = {h.id for h in memory.query(q, 10)}
        found += len(exact & {h.id for h in chroma.query(q, 10)})
        total += 10
    memory.drop()
    assert found / total >= 0.95
