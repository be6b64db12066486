"""Both vector stores through the same contract, plus what only Chroma promises."""

from __future__ import annotations

import subprocess
import sys
import re
import textwrap

import numpy as np
import pytest

from llm_magics import registry
from llm_magics.errors import UsageError
from llm_magics.ingest.stores import get_store_class
from llm_magics.testing import check_store_contract, unit


@pytest.fixture(params=["memory", "chroma"])
def store(request, store_path):
    cls = get_store_class(request.param)
    s = cls(f"contract-{request.param}-{abs(hash(request.node.name)) % 10**8}", path=str(store_path))
    yield s
    s.drop()


def test_both_stores_are_plugins():
    assert {"chroma", "memory"} <= set(registry.names("vector_store"))


def test_the_store_contract(store):
    """The contract every store keeps (llm_magics.testing, which the store plugins run too)."""
    check_store_contract(store)


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


def test_the_documented_contract_example_runs_and_the_contract_can_fail():
    """docs/plugin_hooks.md's check_store_contract example runs; a store that breaks a promise fails it."""
    from pathlib import Path

    from llm_magics.ingest.stores.memory import MemoryStore

    docs = (Path(__file__).parents[2] / "docs" / "plugin_hooks.md").read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", docs, re.S) if "check_store_contract(" in c]
    exec(compile(code, "docs:check_store_contract", "exec"), {})

    class ForgetfulStore(MemoryStore):  # ignores where= on queries
        def query(self, vector, k, where=None):
            return super().query(vector, k)

    with pytest.raises(AssertionError, match="where="):
        check_store_contract(ForgetfulStore("forgetful"))


@pytest.mark.slow
def test_chroma_reads_a_collection_bigger_than_sqlites_variable_limit(store_path):
    """Chroma 1.x reads with one SQL variable per record (SQLite allows 32,766): get() pages, so 33,000 records read back whole.

    A 50 MB ingest (bench_ingest --mb 50, ~160k chunks) failed here with "too many SQL variables", and so would
    hybrid search, whose BM25 index reads every record.
    """
    n = 33_000
    chroma = get_store_class("chroma")("big", path=str(store_path))
    vectors = unit(np.random.default_rng(0).normal(size=(n, 4)))
    ids = [f"c{i}" for i in range(n)]
    chroma.upsert(ids, vectors, [f"t{i}" for i in range(n)], [{"source": f"s{i % 7}"} for i in range(n)])
    records = chroma.get()
    assert len(records) == n and {r["id"] for r in records} == set(ids)
    assert len(chroma.get(ids=ids[:32_999])) == 32_999  # by ids too
    assert len(chroma.get(where={"source": "s3"})) == len(range(3, n, 7))
    chroma.drop()


def test_chroma_get_pages_keep_the_order_and_every_record(store_path, monkeypatch):
    from llm_magics.ingest.stores import chroma as chroma_module

    store = get_store_class("chroma")("pages", path=str(store_path))
    ids = [f"c{i:02d}" for i in range(20)]
    store.upsert(ids, unit(np.eye(20)[:, :8] + 0.1), [f"t{i}" for i in range(20)], [{"source": "a" if i % 2 else "b"} for i in range(20)])
    whole = store.get(vectors=True)
    monkeypatch.setattr(chroma_module, "PAGE", 7)  # 20 records: pages of 7, 7 and 6
    paged = store.get(vectors=True)
    assert [(r["id"], r["text"], r["metadata"]) for r in paged] == [(r["id"], r["text"], r["metadata"]) for r in whole]
    assert all(np.allclose(a["vector"], b["vector"]) for a, b in zip(paged, whole))
    assert [r["id"] for r in store.get(ids=ids[3:18])] == ids[3:18]
    assert sorted(r["id"] for r in store.get(where={"source": "a"})) == ids[1::2]
    monkeypatch.setattr(chroma_module, "PAGE", 5)  # exactly 4 full pages, then an empty one
    assert len(store.get()) == 20
    store.drop()
