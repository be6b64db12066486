"""Chunks are embedded with their document title and section path (``LLMMagics.embed_headings``):
what the vectors hold, what is stored and cited, switching it, and what it finds."""

from __future__ import annotations

import numpy as np

from llm_magics import config
from llm_magics.ingest.documents import embedding_text, heading
from llm_magics.ingest.index import Index
from llm_magics.ingest.pipeline import EMBEDDED

GUIDE = """# Field guide

## Herons

Herons wade in shallow water on long legs.
They stand still for minutes, then strike fast with the bill.
Their nests are built high in trees, in colonies.

## Glaciers

Glaciers are rivers of ice that move a few metres a day.
They carve deep valleys with steep sides.
Meltwater from them feeds many rivers in summer.
"""


def vectors_by_text(index):
    return {r["text"]: (r["vector"], r["metadata"]) for r in index.store.get(vectors=True)}


def test_heading_is_the_nearest_header_else_the_title():
    assert heading({"title": "R-FAQ", "section": "Installing R"}) == "Installing R"
    assert heading({"title": "gitfaq(7)", "section": "gitfaq(7) Manual Page > Configuration"}) == "Configuration"
    assert heading({"title": "R-FAQ", "page": 3}) == "R-FAQ"
    assert heading({"source": "a.txt"}) == "" and embedding_text("text", {}) == "text"
    assert len(heading({"title": "t" * 500})) == 200  # leaves the chunk its room in the window


def test_vectors_embed_the_heading_and_the_stored_text_is_the_chunk(hash_embedder, tmp_path):
    (tmp_path / "guide.md").write_text(GUIDE)
    index = Index(collection="headings", store="memory")
    index.add(str(tmp_path / "guide.md"), chunk_size=80, chunk_overlap=0)
    stored = vectors_by_text(index)
    assert len(stored) >= 4
    for text, (vector, meta) in stored.items():
        assert not text.startswith("Field guide >")  # stored as written in the file
        assert meta["section"] in ("Field guide > Herons", "Field guide > Glaciers") and meta[EMBEDDED] == "headings"
        np.testing.assert_allclose(vector, hash_embedder.embed([f"{meta['section'].split(' > ')[-1]}\n\n{text}"])[0], atol=1e-6)
    assert all(EMBEDDED not in h.metadata for h in index.search("herons", k=3))
    # the same setting again: nothing to do
    calls = type(hash_embedder).calls
    assert index.add(str(tmp_path / "guide.md"), chunk_size=80, chunk_overlap=0).chunks_added == 0
    assert type(hash_embedder).calls == calls


def test_switching_headings_reembeds_and_reuses_nothing_of_the_other_kind(hash_embedder, tmp_path):
    (tmp_path / "guide.md").write_text(GUIDE)
    index = Index(collection="switch", store="memory")
    index.add(str(tmp_path / "guide.md"), chunk_size=80, chunk_overlap=0)
    config.settings().embed_headings = False
    report = index.add(str(tmp_path / "guide.md"), chunk_size=80, chunk_overlap=0)
    stored = vectors_by_text(index)
    assert report.chunks_added == len(stored) and report.chunks_removed == len(stored)  # rewritten, old version gone
    for text, (vector, meta) in stored.items():
        assert EMBEDDED not in meta
        np.testing.assert_allclose(vector, hash_embedder.embed([text])[0], atol=1e-6)  # the text alone, not a reused heading vector
    # and back, per call
    index.add(str(tmp_path / "guide.md"), chunk_size=80, chunk_overlap=0, headings=True)
    for text, (vector, meta) in vectors_by_text(index).items():
        np.testing.assert_allclose(vector, hash_embedder.embed([f"{meta['section'].split(' > ')[-1]}\n\n{text}"])[0], atol=1e-6)


def test_a_chunk_below_its_header_is_found_by_the_sections_words(minilm, tmp_path):
    """The real MiniLM: 'They carve deep valleys' says glaciers only through its section's header."""
    (tmp_path / "guide.md").write_text(GUIDE)
    found = {}
    for on in (False, True):
        index = Index(collection=f"find-{on}", store="memory", embedder=minilm)
        index.add(str(tmp_path / "guide.md"), chunk_size=80, chunk_overlap=0, headings=on)
        found[on] = index.search("How do glaciers shape the land?", k=1, mode="dense", expand=0)[0].text
    assert found[True].startswith("They carve deep valleys"), found
    assert not found[False].startswith("They carve"), found  # without its heading, the header's own chunk wins
