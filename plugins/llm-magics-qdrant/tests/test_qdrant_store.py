"""The Qdrant plugin, installed as its own distribution: entry point -> registry -> store -> magic."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

from llm_magics import plugins, registry
from llm_magics.errors import UsageError
from llm_magics.testing import check_store_contract, unit


@pytest.fixture
def store(tmp_path):
    cls = registry.get("vector_store", "qdrant")
    s = cls("contract-test", path=str(tmp_path))
    yield s
    s.drop()


def test_found_through_its_entry_point():
    eps = {ep.name: ep for ep in metadata.entry_points(group="llm_magics")}
    assert eps["qdrant"].value == "llm_magics_qdrant"
    assert eps["qdrant"].dist.name == "llm-magics-qdrant"
    entry = registry.entries("vector_store")["qdrant"]
    assert entry.plugin == "qdrant"
    assert plugins.info["qdrant"].source.startswith("entry point llm-magics-qdrant")
    assert plugins.info["qdrant"].hooks == ["register_vector_stores"]


def test_the_store_contract(store):
    check_store_contract(store)


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
    with pytest.raises(UsageError, match="Valid options: url, api_key, hnsw_ef, m, ef_construct, indexing_threshold, legacy_local_mode, ignore_legacy"):
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


# -- the engine: Qdrant Edge, Qdrant's own Rust engine, in this process ------------------


def edge_store(tmp_path, name, **options):
    return registry.get("vector_store", "qdrant")(name, path=str(tmp_path), **options)


def test_the_engine_is_qdrant_edge_not_the_client_local_mode(store, tmp_path):
    import qdrant_edge

    from llm_magics_qdrant.edge import EdgeEngine, _shards

    store.upsert(["a", "b"], unit([[1, 0], [0, 1]]), ["x", "y"], [{}, {}])
    assert isinstance(store.engine, EdgeEngine)
    shard_dir = tmp_path / "qdrant-edge" / "contract-test"
    assert isinstance(_shards[str(shard_dir)], qdrant_edge.EdgeShard)
    assert {"edge_config.json", "segments", "wal"} <= {p.name for p in shard_dir.iterdir()}
    assert not (tmp_path / "qdrant").exists()  # where qdrant-client's local mode would write
    assert store.engine.info("contract-test").points_count == 2
    assert metadata.version("qdrant-edge-py") == "0.9.0"


def test_data_filters_and_deletes_persist_across_reopen(tmp_path):
    from llm_magics_qdrant import edge

    s = edge_store(tmp_path, "reopen")
    vectors = unit(np.random.default_rng(1).standard_normal((40, 8)))
    ids = [f"c{i}" for i in range(40)]
    s.upsert(ids, vectors, [f"text {i}" for i in ids], [{"source": f"doc{i % 4}.md", "page": i} for i in range(40)])
    s.delete(["c0", "c4", "c8"])
    s.set_manifest("doc0.md", {"ids": ids[::4]})
    edge.close_shards()  # what exiting the process does: flush, release the WAL lock

    again = edge_store(tmp_path, "reopen")
    assert again.count() == 37
    assert again.manifest() == {"doc0.md": {"ids": ids[::4]}}
    hits = again.query(vectors[12], k=5, where={"source": "doc0.md"})
    assert hits[0].id == "c12" and hits[0].text == "text c12" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert {h.metadata["source"] for h in hits} == {"doc0.md"}
    assert not {"c0", "c4", "c8"} & {h.id for h in again.query(vectors[0], k=40)}
    assert sorted(r["id"] for r in again.get(where={"source": "doc0.md"})) == sorted(set(ids[::4]) - {"c0", "c4", "c8"})
    again.drop()
    assert not (tmp_path / "qdrant-edge" / "reopen").exists()


def test_hnsw_recall_against_exact_search(tmp_path):
    """3000 random vectors in HNSW segments (built by Qdrant's optimizer): recall@10 at the default hnsw_ef, with and without a filter."""
    rng = np.random.default_rng(0)
    n, dim, k = 3000, 64, 10
    vectors, queries = unit(rng.standard_normal((n, dim))), unit(rng.standard_normal((50, dim)))
    sources = [f"doc{i % 5}.md" for i in range(n)]
    s = edge_store(tmp_path, "recall", indexing_threshold=100)  # KB: index past ~400 vectors, not Qdrant's 10 MB
    for i in range(0, n, 500):
        s.upsert([str(j) for j in range(i, i + 500)], vectors[i : i + 500], [""] * 500, [{"source": src} for src in sources[i : i + 500]])
    assert s.engine.info("recall").indexed_vectors_count >= 0.9 * n  # the HNSW graph is what is searched

    def recall(where, allowed):
        found = 0
        for q in queries:
            scores = np.where(allowed, vectors @ q, -np.inf)  # exact search in numpy
            exact = {str(j) for j in np.argsort(-scores)[:k]}
            found += len(exact & {h.id for h in s.query(q, k=k, where=where)})
        return found / (k * len(queries))

    assert recall(None, np.ones(n, bool)) >= 0.95
    assert recall({"source": "doc3.md"}, np.array(sources) == "doc3.md") >= 0.95


def test_a_collection_from_the_old_local_mode_is_a_usage_error_and_copies_over(tmp_path, monkeypatch):
    """A collection written by version 0.1 (qdrant-client's local mode) is refused with the fix, and the fix works."""
    from llm_magics import Index

    monkeypatch.chdir(tmp_path)  # the store_path setting (.llm_magics/store) is relative: the old and new folders land here
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "birds.md").write_text("# Birds\n\nThe kestrel is a small falcon that hovers over fields hunting voles.\n")
    (docs / "ships.txt").write_text("Container ships carry thousands of steel boxes across the ocean.\n")
    old = Index("notes", store="qdrant", store_options={"legacy_local_mode": True})
    old.add(str(docs), progress=False)
    assert (tmp_path / ".llm_magics" / "store" / "qdrant" / "collection" / "notes").is_dir()

    with pytest.raises(UsageError, match=r"qdrant-client's local mode.*legacy_local_mode.*copy_to\('qdrant', \{'ignore_legacy': True\}\).*re-ingest"):
        Index("notes", store="qdrant")
    new = old.copy_to("qdrant", {"ignore_legacy": True}, progress=False)
    assert new.last_copy["sources"] == 2 and new.store.count() == old.store.count() == 2
    assert (tmp_path / ".llm_magics" / "store" / "qdrant-edge" / "notes").is_dir()
    question = "which bird hovers while hunting?"
    assert [h.id for h in new.search(question, k=2)] == [h.id for h in old.search(question, k=2)]
    assert Index("notes", store="qdrant").store.count() == 2  # copied: opens without the option


def test_a_server_that_does_not_answer_is_a_usage_error():
    """No Qdrant server can run here (no binary in a registry); the url path is checked as far as it goes."""
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UsageError, match=f"Cannot reach a Qdrant server at http://127.0.0.1:{port}.*url="):
        registry.get("vector_store", "qdrant")("anything", url=f"http://127.0.0.1:{port}")


def test_filters_translate_to_both_engines():
    """The same where clause becomes a Filter of qdrant_edge (embedded) and of qdrant_client (server)."""
    import qdrant_edge
    from qdrant_client import models as qm

    from llm_magics_qdrant import to_filter

    where = {"$and": [{"source": {"$in": ["a.md", "b.md"]}}, {"page": {"$gte": 2}}, {"lang": {"$ne": "de"}}]}
    server = to_filter(where, qm)
    assert server == qm.Filter(must=[
        qm.Filter(must=[qm.FieldCondition(key="source", match=qm.MatchAny(any=["a.md", "b.md"]))]),
        qm.Filter(must=[qm.FieldCondition(key="page", range=qm.Range(gte=2))]),
        qm.Filter(must_not=[qm.FieldCondition(key="lang", match=qm.MatchValue(value="de"))]),
    ])
    edge = to_filter(where, qdrant_edge)
    assert isinstance(edge, qdrant_edge.Filter) and len(edge.must) == 3
    with pytest.raises(UsageError, match="Unknown filter operator '\\$like'"):
        to_filter({"source": {"$like": "a"}}, qm)


def test_a_shard_open_in_another_process_is_a_usage_error(store, tmp_path):
    """An Edge shard's WAL locks its folder: a second kernel gets the fix, not a Rust error."""
    import subprocess
    import sys

    store.upsert(["a"], unit([[1, 0]]), ["x"], [{}])
    code = (
        "from llm_magics import registry\n"
        "try:\n"
        f"    registry.get('vector_store', 'qdrant')('contract-test', path={str(tmp_path)!r}).count()\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.startswith("UsageError") and "open in another process" in out and "url=" in out
