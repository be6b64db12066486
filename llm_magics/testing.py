"""Helpers for testing llm-magics and its plugins: the contract every vector store keeps, and
pytest fixtures for a plugin's own test suite.

A store plugin (``register_vector_stores``) checks itself against the same contract as the
built-in stores, on a fresh, empty collection of its real engine:

    from llm_magics.testing import check_store_contract

    def test_the_store_contract(tmp_path):
        check_store_contract(MyStore("contract-test", path=str(tmp_path)))

A plugin's ``tests/conftest.py`` takes the shared fixtures by importing them:

    from llm_magics.testing import clean_shell, fresh_settings, ip  # noqa: F401

Only tests import this module (it imports pytest and numpy).
"""

from __future__ import annotations

import numpy as np
import pytest

from .ingest.stores.base import VectorStore


def unit(rows) -> np.ndarray:
    """Rows scaled to length 1, float32: what an embedder gives a store."""
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def assert_same_embeddings(a, b, min_cosine: float = 0.9995) -> None:
    """Rows of a and b are the same texts' embeddings, up to the rounding of the embedder's dtype.

    A bfloat16 encoder (the default embedder's ``dtype="auto"`` on CPUs with bf16 units) rounds
    differently when a text is batched with others of another length: the same text's vectors
    then differ by up to ~1e-3 per component, cosine above 0.9999. Different texts, or another
    model, fall far below ``min_cosine``.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float32)), np.atleast_2d(np.asarray(b, dtype=np.float32))
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    worst = int(np.argmin(cosine))
    assert cosine[worst] >= min_cosine, f"row {worst}: cosine {cosine[worst]:.6f} < {min_cosine}"


def check_store_contract(store: VectorStore) -> None:
    """What ``Index`` relies on from a store, on a fresh, empty collection: upsert by id (a
    second upsert replaces), cosine scores (1.0 for the same direction), metadata that comes back
    as stored, Chroma-style ``where`` filters, ``get`` by ids or filter with vectors, ``delete``
    (unknown ids ignored), and the collection's info and manifest. Fails with an ``AssertionError``
    that names the broken promise. Leaves data in the collection: drop it after."""
    assert store.count() == 0, f"check_store_contract needs an empty collection; {store.collection!r} has {store.count()} records"
    vectors = unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]])
    metas = [{"source": "x.md", "page": 1}, {"source": "x.md", "page": 2}, {"source": "y.pdf", "page": 1}, {"source": "z.txt"}]
    store.upsert(["a", "b", "c", "d"], vectors, ["alpha", "beta", "gamma", "delta"], metas)
    assert store.count() == 4, "count() after upserting 4 records"

    q = vectors[0]
    hits = store.query(q, k=2)
    assert [h.id for h in hits] == ["a", "b"], f"query: the nearest first, k of them; got {[h.id for h in hits]}"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5), f"score: cosine similarity, 1.0 for the same direction; got {hits[0].score}"
    assert hits[1].score == pytest.approx(float(vectors[1] @ q), abs=1e-5), "score: cosine similarity"
    assert hits[0].text == "alpha" and hits[0].metadata == {"source": "x.md", "page": 1}, "text and metadata come back as stored"

    def ids(where) -> set[str]:
        return {h.id for h in store.query(q, k=4, where=where)}

    filters = [
        ({"source": "y.pdf"}, {"c"}),
        ({"source": {"$ne": "x.md"}}, {"c", "d"}),
        ({"page": {"$gte": 2}}, {"b"}),
        ({"page": {"$lt": 2}}, {"a", "c"}),
        ({"source": {"$in": ["y.pdf", "z.txt"]}}, {"c", "d"}),
        ({"source": {"$nin": ["x.md"]}}, {"c", "d"}),
        ({"$and": [{"source": "x.md"}, {"page": {"$in": [2, 3]}}]}, {"b"}),
        ({"$or": [{"source": "z.txt"}, {"page": 2}]}, {"b", "d"}),
    ]
    for where, want in filters:
        assert ids(where) == want, f"where={where}: want {sorted(want)}, got {sorted(ids(where))}"

    records = {r["id"]: r for r in store.get(where={"source": "x.md"}, vectors=True)}
    assert set(records) == {"a", "b"} and records["b"]["text"] == "beta", "get(where=...)"
    np.testing.assert_allclose(np.asarray(records["a"]["vector"], dtype=np.float32), vectors[0], atol=1e-6, err_msg="get(vectors=True)")
    assert {r["id"] for r in store.get(ids=["d", "missing"])} == {"d"}, "get(ids=...) skips unknown ids"

    store.upsert(["a"], unit([[0, 0, 1]]), ["alpha v2"], [{"source": "x.md", "page": 1}])
    assert store.count() == 4, "an upsert of a known id replaces it"
    assert [r["text"] for r in store.get(ids=["a"])] == ["alpha v2"], "an upsert of a known id replaces its text"

    store.delete(["a", "b", "nope"])
    assert store.count() == 2 and store.get(ids=["a", "b"]) == [], "delete(ids) removes them and ignores unknown ids"
    assert {h.id for h in store.query(q, k=10)} == {"c", "d"}, "deleted records are not found"

    assert store.info() == {}, "a new collection has no info"
    store.set_info({"embedder": "e", "dimension": 3})
    assert store.info() == {"embedder": "e", "dimension": 3}, "set_info / info"
    store.set_manifest("a.txt", {"version": "v1", "chunks": 1})
    store.set_manifest("b.txt", {"version": "v2"})
    store.set_manifest("b.txt", None)
    assert store.manifest() == {"a.txt": {"version": "v1", "chunks": 1}}, "set_manifest(key, None) forgets the key"


# ---------------------------------------------------------------------------
# Fixtures for a plugin's test suite
# ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_settings():
    """Each test starts from default settings (another test may have changed them)."""
    from . import config

    config.use(None)
    yield
    config.use(None)


@pytest.fixture(autouse=True, scope="module")
def clean_shell():
    """The tests share IPython's one shell; other suites may have left %config values in it."""
    from IPython.core.interactiveshell import InteractiveShell

    if InteractiveShell.initialized():
        InteractiveShell.instance().config.pop("LLMMagics", None)
    yield


@pytest.fixture
def ip(tmp_path, monkeypatch):
    """A real InteractiveShell with llm_magics loaded, in a fresh folder."""
    from IPython.core.interactiveshell import InteractiveShell

    from . import config

    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext llm_magics").raise_error()
    try:
        yield shell
    finally:
        shell.run_cell("%unload_ext llm_magics")
        config.use(None)
