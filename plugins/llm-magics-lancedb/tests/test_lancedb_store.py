"""The LanceDB plugin, installed as its own distribution: entry point -> registry -> store -> magic."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

from llm_magics import plugins, registry
from llm_magics.errors import UsageError
from llm_magics.ingest.stores.base import matches
from llm_magics.testing import check_store_contract, unit


def lancedb_store(tmp_path, name="contract-test", **options):
    return registry.get("vector_store", "lancedb")(name, path=str(tmp_path), **options)


@pytest.fixture
def store(tmp_path):
    s = lancedb_store(tmp_path)
    yield s
    s.drop()


# Values with quotes, a non-ASCII letter, keys with a dot and a quote, numbers as strings.
FILTER_METAS = [
    {"source": "x.md", "page": 1},
    {"source": "x.md", "page": 2.0},
    {"source": "it's.pdf", "page": 1.5},
    {"source": 'say "hi".txt', "flag": True, "a.b": "dot", "it's": 3},
    {"source": "café.md", "page": "1"},
    {"page": "abc", "flag": False},
    {"page": -3, "big": 12345678901234},
]
FILTERS = [
    {"source": "x.md"}, {"source": "it's.pdf"}, {"source": 'say "hi".txt'}, {"source": "café.md"},
    {"page": 1}, {"page": 2}, {"page": "1"}, {"page": {"$eq": 1.5}}, {"page": {"$ne": 1}},
    {"page": {"$gt": 1}}, {"page": {"$gte": 1.5}}, {"page": {"$lt": 0}}, {"page": {"$lte": 1}}, {"page": {"$gt": "a"}},
    {"flag": True}, {"flag": False}, {"flag": {"$ne": True}},
    {"source": {"$in": ["x.md", "it's.pdf"]}}, {"source": {"$nin": ["x.md"]}}, {"page": {"$in": [1, "abc"]}}, {"page": {"$in": []}},
    {"$and": [{"source": "x.md"}, {"page": {"$gt": 1}}]}, {"$or": [{"page": 2}, {"a.b": "dot"}, {"it's": 3}]},
    {"source": "x.md", "page": 1}, {"$or": []}, {"big": 12345678901234}, {"$and": [{"page": {"$gte": 1}}, {"page": {"$lt": 2}}]},
]  # fmt: skip


def test_found_through_its_entry_point():
    eps = {ep.name: ep for ep in metadata.entry_points(group="llm_magics")}
    assert eps["lancedb"].value == "llm_magics_lancedb"
    assert eps["lancedb"].dist.name == "llm-magics-lancedb"
    entry = registry.entries("vector_store")["lancedb"]
    assert entry.plugin == "lancedb"
    assert plugins.info["lancedb"].source.startswith("entry point llm-magics-lancedb")
    assert plugins.info["lancedb"].hooks == ["register_vector_stores"]
    assert metadata.version("lancedb") == "0.40.0"


def test_the_store_contract(store, tmp_path):
    check_store_contract(store)
    assert (tmp_path / "contract-test.lance").is_dir()  # a Lance table in the folder


def test_get_keeps_the_order_of_ids_and_a_batch_may_repeat_an_id(store):
    vectors = unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]])
    store.upsert(["a", "b", "c", "d"], vectors, ["alpha", "beta", "gamma", "delta"], [{"page": 1}, {"page": 2}, {"page": 1}, {}])
    assert [r["id"] for r in store.get(ids=["d", "missing", "a"])] == ["d", "a"]
    assert [r["id"] for r in store.get(ids=["a", "b"], where={"page": 2})] == ["b"]
    store.upsert(["e", "e"], unit([[1, 1, 0], [0, 1, 1]]), ["first", "second"], [{}, {}])  # one batch, one id twice
    assert store.count() == 5 and [r["text"] for r in store.get(ids=["e"])] == ["second"]


def test_filters_select_what_the_reference_selects(store):
    """Each where clause, as LanceDB SQL, selects exactly what the in-memory store's matcher does."""
    n = len(FILTER_METAS)
    vectors = unit(np.random.default_rng(0).standard_normal((n, 4)))
    store.upsert([f"r{i}" for i in range(n)], vectors, [f"t{i}" for i in range(n)], FILTER_METAS)
    for where in FILTERS:
        want = {f"r{i}" for i, m in enumerate(FILTER_METAS) if matches(m, where)}
        assert {r["id"] for r in store.get(where=where)} == want, where
        assert {h.id for h in store.query(vectors[0], k=n, where=where)} == want, where
    assert [r["metadata"] for r in store.get(ids=["r2", "r3"])] == FILTER_METAS[2:4]  # values round-trip


def test_filters_quote_every_literal():
    from llm_magics_lancedb.filters import to_sql

    sql = to_sql({"$and": [{"source": "it's"}, {"o'key": {"$gte": 2}}]})
    assert sql == (
        """(((COALESCE(json_extract(metadata, '$["source"]') = '"it''s"', FALSE)) AND """
        """(COALESCE(TRY_CAST(json_extract(metadata, '$["o''key"]') AS DOUBLE) >= 2, FALSE))))"""
    )
    assert to_sql(None) is None and to_sql({}) is None
    with pytest.raises(UsageError, match=r"Unknown filter operator '\$like'. Use \$eq, \$ne"):
        to_sql({"source": {"$like": "a%"}})
    with pytest.raises(UsageError, match="takes a list"):
        to_sql({"source": {"$in": "a.md"}})
    with pytest.raises(UsageError, match="compare with a string, number or bool"):
        to_sql({"source": {"$eq": ["a.md"]}})


def test_info_manifest_and_data_persist_across_reopen(tmp_path):
    import llm_magics_lancedb

    s = lancedb_store(tmp_path, "persist-test")
    vectors = unit(np.random.default_rng(1).standard_normal((40, 8)))
    ids = [f"c{i}" for i in range(40)]
    s.upsert(ids, vectors, [f"text {i}" for i in ids], [{"source": f"doc{i % 4}.md", "page": i} for i in range(40)])
    s.delete(["c0", "c4", "c8"])
    s.set_info({"embedder": "e", "dimension": 8})
    s.set_manifest("doc0.md", {"ids": ids[::4], "hash": "h"})
    s.set_manifest("b.txt", {"ids": []})
    s.set_manifest("b.txt", None)
    llm_magics_lancedb._connections.clear()  # a new connection reads everything back from the folder

    again = lancedb_store(tmp_path, "persist-test")
    assert again.info() == {"embedder": "e", "dimension": 8}
    assert again.manifest() == {"doc0.md": {"ids": ids[::4], "hash": "h"}}
    assert again.count() == 37
    hits = again.query(vectors[12], k=5, where={"source": "doc0.md"})
    assert hits[0].id == "c12" and hits[0].text == "text c12" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert {h.metadata["source"] for h in hits} == {"doc0.md"}
    assert not {"c0", "c4", "c8"} & {h.id for h in again.query(vectors[0], k=40)}
    s.upsert(["new"], vectors[:1], ["x"], [{}])  # another store object on the same table sees the write
    assert again.count() == 38
    again.drop()
    assert s.count() == 0 and s.info() == {} and s.manifest() == {}
    assert not (tmp_path / "persist-test.lance").exists()


def test_bad_names_and_options_are_usage_errors(tmp_path, store):
    cls = registry.get("vector_store", "lancedb")
    with pytest.raises(UsageError, match="Bad collection name"):
        cls("a/b", path=str(tmp_path))
    with pytest.raises(UsageError, match="Valid options: uri, index, index_threshold, nprobes, ef, refine_factor, bypass_vector_index, num_partitions"):
        cls("fine-name", path=str(tmp_path), colour="red")
    with pytest.raises(UsageError, match="index: Input should be 'ivf_hnsw_sq', 'ivf_pq' or 'none'"):
        cls("fine-name", path=str(tmp_path), index="hnsw")
    with pytest.raises(UsageError, match="is empty: add data"):
        store.create_index()
    store.upsert(["a"], unit([[1, 0, 0]]), ["x"], [{}])
    with pytest.raises(UsageError, match="holds 3-dimensional vectors, not 2-dimensional.*another --collection"):
        store.upsert(["b"], unit([[1, 0]]), ["y"], [{}])
    with pytest.raises(UsageError, match="No ANN index 'flat'.*ivf_hnsw_sq, ivf_pq"):
        store.create_index("flat")
    with pytest.raises(UsageError, match="takes the build options num_partitions, num_sub_vectors, m, ef_construction, not nprobe"):
        store.create_index(nprobe=4)


def test_ann_index_recall_default_and_tuned(tmp_path):
    """3000 random vectors: an upsert past index_threshold builds IVF_HNSW_SQ; recall@10 against
    exact numpy search at the default and tuned search options, with and without a filter; IVF_PQ too."""
    rng = np.random.default_rng(0)
    n, dim, k = 3000, 64, 10
    vectors, queries = unit(rng.standard_normal((n, dim))), unit(rng.standard_normal((30, dim)))
    sources = np.array([f"doc{i % 5}.md" for i in range(n)])
    s = lancedb_store(tmp_path, "recall", index_threshold=2000)
    for i in range(0, n, 500):
        s.upsert([str(j) for j in range(i, i + 500)], vectors[i : i + 500], [""] * 500, [{"source": src} for src in sources[i : i + 500]])
    stats = s.index_stats()
    assert stats["index_type"] == "IVF_HNSW_SQ" and stats["distance_type"] == "cosine"
    assert stats["num_indexed_rows"] == 2000 and stats["num_unindexed_rows"] == 1000  # searched exactly beside the index

    def recall(store, where=None):
        allowed = np.ones(n, bool) if where is None else sources == where["source"]
        found = 0
        for q in queries:
            exact = {str(j) for j in np.argsort(-np.where(allowed, vectors @ q, -np.inf))[:k]}
            found += len(exact & {h.id for h in store.query(q, k=k, where=where)})
        return found / (k * len(queries))

    assert recall(s) >= 0.9  # the default ef=100; LanceDB's own (ef=None, 1.5 x k) is far lower on random vectors
    tuned = lancedb_store(tmp_path, "recall", ef=100, nprobes=50, refine_factor=5)
    assert recall(tuned) >= 0.97 and recall(tuned, {"source": "doc3.md"}) >= 0.97
    assert recall(lancedb_store(tmp_path, "recall", bypass_vector_index=True)) == 1.0
    hit = s.query(vectors[7], k=1)[0]
    assert hit.id == "7" and hit.score == pytest.approx(1.0, abs=1e-5)  # refine_factor 1: exact scores

    s.optimize()
    assert s.index_stats()["num_unindexed_rows"] == 0
    assert s.create_index("ivf_pq", num_partitions=8, num_sub_vectors=16)["index_type"] == "IVF_PQ"
    assert recall(lancedb_store(tmp_path, "recall", nprobes=8, refine_factor=20)) >= 0.9


def test_ingest_and_search_from_the_magic(ip, tmp_path):
    """End to end: %ingest --store lancedb with the real default embedder, then Index.search."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "birds.md").write_text("# Birds\n\nThe kestrel is a small falcon that hovers over fields hunting voles.\n")
    (docs / "ships.txt").write_text("Container ships carry thousands of steel boxes across the ocean.\n")
    db = tmp_path / "lance"
    ip.run_cell(f"%ingest {docs} --recursive --store lancedb --store-option path={db} --collection birds-and-ships -o idx").raise_error()
    idx = ip.user_ns["idx"]
    assert type(idx.store).__name__ == "LanceDBStore" and idx.store.path == str(db)
    assert (db / "birds-and-ships.lance").is_dir()
    hits = idx.search("which bird hovers while hunting?", k=2)
    assert hits[0].metadata["source"].endswith("birds.md")
    assert hits[0].score > hits[1].score
    before = idx.store.count()
    ip.run_cell(f"%ingest {docs} --recursive --store lancedb --store-option path={db} --collection birds-and-ships").raise_error()
    assert idx.store.count() == before  # re-ingesting adds nothing

    from llm_magics import Index

    for options in ({"path": str(db)}, {"uri": str(db)}):
        again = Index("birds-and-ships", store="lancedb", store_options=options)
        assert [h.id for h in again.search("which bird hovers while hunting?", k=2)] == [h.id for h in hits]
    copied = again.copy_to("lancedb", {"path": str(tmp_path / "lance-copy")}, progress=False)  # nothing re-embedded
    assert copied.store.count() == before and copied.stats()["sources"] == 2
    assert [h.id for h in copied.search("which bird hovers while hunting?", k=2)] == [h.id for h in hits]
    with pytest.raises(Exception, match="Valid options: uri"):
        ip.run_cell(f"%ingest {docs} --store lancedb --store-option colour=red").raise_error()


def test_default_folder_is_under_the_store_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = registry.get("vector_store", "lancedb")("default-place")
    s.upsert(["a"], unit([[1, 0]]), ["x"], [{}])
    assert (tmp_path / ".llm_magics" / "store" / "lancedb" / "default-place.lance").is_dir()


def test_importing_llm_magics_does_not_import_lancedb():
    code = (
        "import sys, llm_magics\n"
        "from llm_magics import registry\n"
        "registry.get('vector_store', 'lancedb')\n"
        "print('lancedb' in sys.modules, 'pyarrow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[0] == "False", out.stderr
