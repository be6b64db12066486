"""Hybrid search, small-to-big and the token budget, on the real MiniLM and a real Chroma."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from llm_magics import Index
from llm_magics.ingest import retrieval
from llm_magics.ingest.documents import Hit

# Paragraphs about one topic (timeouts and waiting), so that a dense search for an
# identifier lands on the paragraphs that sound right rather than the one that names it.
TOPIC = [
    "A busy handler sleeps and retries while another connection holds the lock on a table.",
    "The connection waits for a number of milliseconds before it gives up and reports that it is busy.",
    "Long-running statements can be interrupted from another thread when the user presses Cancel.",
    "Timeouts protect an application from waiting forever on a lock that is never released.",
    "Retry loops should back off, sleeping a little longer after each failed attempt to get the lock.",
    "A write transaction blocks other writers; readers keep going until a checkpoint needs them gone.",
]
NEEDLE = ("Colour themes: the palette file lists twelve colours, the default font is a serif face at eleven points, "
          "and the legacy option QX_RELAXED_WALK sets the icon size.")


def words(text: str) -> int:
    return len(text.split())


def write_docs(folder, paragraphs, name="guide.md"):
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("# Guide\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def topic_index(minilm, tmp_path):
    docs = write_docs(tmp_path / "docs", TOPIC[:3] + [NEEDLE] + TOPIC[3:])
    index = Index(collection="hybrid", embedder=minilm)
    report = index.add(str(docs), chunk_size=120, chunk_overlap=0)
    assert report.chunks_added == index.store.count() >= len(TOPIC) + 1
    return index, docs


def rank_of(hits, needle):
    return next((i for i, h in enumerate(hits, 1) if needle in h.text), None)


def test_hybrid_finds_an_exact_identifier_that_dense_search_ranks_low(topic_index):
    index, _ = topic_index
    query = "How long does QX_RELAXED_WALK make the connection wait on a busy lock?"
    dense = retrieval.search(index, query, 3, None, retrieval.RetrievalSettings(mode="dense"))
    hybrid = retrieval.search(index, query, 3, None, retrieval.RetrievalSettings(mode="hybrid"))
    assert rank_of(dense, "QX_RELAXED_WALK") is None  # the identifier is not in dense's top 3
    assert rank_of(hybrid, "QX_RELAXED_WALK") is not None
    assert all(-1.0 <= h.score <= 1.0 for h in hybrid)  # cosine scores on every hit, lexical-only ones too


def test_reingest_adds_nothing_to_either_index_and_delete_removes_from_both(topic_index):
    index, docs = topic_index
    before = retrieval.lexical_index(index.store, index._hidden_versions())
    assert sorted(before.ids) == sorted(r["id"] for r in index.store.get())
    again = index.add(str(docs), chunk_size=120, chunk_overlap=0)
    assert again.chunks_added == 0
    after = retrieval.lexical_index(index.store, index._hidden_versions())
    assert after is before  # the store did not change, so neither did its lexical index
    assert index.delete(str(docs)) == len(before.ids)
    emptied = retrieval.lexical_index(index.store, index._hidden_versions())
    assert emptied.ids == [] and emptied.search("QX_RELAXED_WALK", 5) == []


def test_a_changed_file_replaces_its_chunks_in_the_lexical_index(topic_index):
    index, docs = topic_index
    docs.write_text("# Guide\n\nThe flag is now called QX_STRICT_WALK.\n", encoding="utf-8")
    index.add(str(docs), chunk_size=120, chunk_overlap=0)
    lex = retrieval.lexical_index(index.store, index._hidden_versions())
    assert lex.search("relaxed", 5) == []  # the old chunks are gone from BM25 too
    assert [index.store.get(ids=[i])[0]["text"] for i, _ in lex.search("QX_STRICT_WALK", 5)] == ["# Guide\n\nThe flag is now called QX_STRICT_WALK."]


def test_small_to_big_hands_on_neighbours_once(minilm, tmp_path):
    paragraphs = [f"Step {i}: " + TOPIC[i % len(TOPIC)] for i in range(8)]
    docs = write_docs(tmp_path / "docs", paragraphs)
    text = docs.read_text(encoding="utf-8")
    index = Index(collection="s2b", embedder=minilm)
    index.add(str(docs), chunk_size=110, chunk_overlap=0)
    query = "the connection waits milliseconds before it gives up busy"
    small = retrieval.search(index, query, 4, None, retrieval.RetrievalSettings(mode="dense"))
    big = retrieval.search(index, query, 4, None, retrieval.RetrievalSettings(mode="dense", expand=1))
    assert big[0].text.startswith(text[big[0].metadata["start_index"]: big[0].metadata["start_index"] + 20])
    assert small[0].text in big[0].text and len(big[0].text) > len(small[0].text)
    for hit in big:  # each window is a contiguous piece of the document, joined exactly
        assert " ".join(hit.text.split()) in " ".join(text.split())
    # no chunk is handed on twice: the windows do not overlap
    spans = sorted((h.metadata["start_index"], h.metadata["start_index"] + len(h.text)) for h in big)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))

    # hybrid mode reads the neighbours from the BM25 index's records (no store read per query), with the same windows
    hybrid = retrieval.search(index, query, 4, None, retrieval.RetrievalSettings(mode="hybrid", expand=1))
    reads = []
    get = index.store.get
    index.store.get = lambda *a, **kw: reads.append(kw) or get(*a, **kw)
    try:
        again = retrieval.search(index, query, 4, None, retrieval.RetrievalSettings(mode="hybrid", expand=1))
    finally:
        del index.store.get
    assert [(h.id, h.text) for h in again] == [(h.id, h.text) for h in hybrid]
    assert not [kw for kw in reads if "where" in kw]  # the ids of lexical-only hits are read for their vectors, no source is
    windows = {h.id: h.text for h in big}
    assert all(h.text == windows[h.id] for h in hybrid if h.id in windows)  # a hit both modes find gets the same window


def test_a_paragraph_in_two_files_is_handed_on_once(minilm, tmp_path):
    docs = tmp_path / "docs"
    write_docs(docs, TOPIC[:3] + [NEEDLE], name="manual.md")
    write_docs(docs, [NEEDLE] + TOPIC[3:], name="tutorial.md")  # the same paragraph, in another file
    index = Index(collection="twice", embedder=minilm)
    index.add(str(docs), chunk_size=200, chunk_overlap=0)
    query = "Which option sets the icon size?"
    assert sum(NEEDLE in r["text"] for r in index.store.get()) == 2  # both copies are stored
    for mode in ("dense", "hybrid"):
        hits = retrieval.search(index, query, 4, None, retrieval.RetrievalSettings(mode=mode))
        assert sum(NEEDLE in h.text for h in hits) == 1, mode
        assert rank_of(hits, NEEDLE) == 1 and len(hits) == 4  # still k hits: the next distinct one fills the place
    plain = [Hit(" a  b", 0.9, {}, "1"), Hit("a b\n", 0.8, {}, "2"), Hit("a c", 0.7, {}, "3"), Hit("b", 0.6, {}, "4")]
    assert [h.id for h in retrieval.distinct(plain)] == ["1", "3"]  # whitespace does not make text new
    wider = retrieval.distinct([Hit("a b", 0.9, {}, "1"), Hit("c", 0.8, {}, "2"), Hit("x a b c y", 0.7, {}, "3"), Hit("d", 0.6, {}, "4")])
    assert [(h.id, h.score) for h in wider] == [("3", 0.9), ("4", 0.6)]  # the text that holds both takes the first place


def test_budget_fills_with_whole_hits_and_cuts_only_the_last(topic_index):
    index, _ = topic_index
    hits = retrieval.search(index, "waiting on a lock", 4, None, retrieval.RetrievalSettings(mode="hybrid", budget=40), words)
    assert sum(words(h.text) + retrieval.PER_HIT_TOKENS for h in hits) <= 40
    assert len(hits) > 1
    assert all(not h.metadata.get("truncated") for h in hits[:-1])


hit_texts = st.lists(st.text(alphabet="abc de\n", min_size=0, max_size=80), min_size=0, max_size=12)


@settings(max_examples=200, deadline=None)
@given(texts=hit_texts, budget=st.integers(min_value=0, max_value=120))
def test_pack_never_exceeds_the_budget_and_keeps_the_order(texts, budget):
    hits = [Hit(t, 1.0 - i / 100, {"n": i}, str(i)) for i, t in enumerate(texts)]
    packed = retrieval.pack(hits, budget, words, per_hit=2, min_cut=3)
    assert sum(words(h.text) + 2 for h in packed) <= budget
    assert [h.id for h in packed] == [h.id for h in hits[: len(packed)]]
    for h, original in zip(packed, hits):
        assert original.text.startswith(h.text)
        assert h.text == original.text or h is packed[-1]


def test_rrf_rewards_agreement():
    fused = retrieval.rrf([["a", "b", "c"], ["c", "b", "x"]])
    assert {i for i, _ in fused[:2]} == {"b", "c"}  # found by both rankings
    assert fused[0][1] == pytest.approx(1 / (60 + 3) + 1 / (60 + 1))
    assert {i for i, _ in fused} == {"a", "b", "c", "x"}


def test_index_search_uses_the_settings_and_takes_options(topic_index):
    from llm_magics import UsageError, config

    index, _ = topic_index
    query = "How long does QX_RELAXED_WALK make the connection wait on a busy lock?"
    s = config.settings()
    assert (s.retrieval, s.expand, s.context_budget) == ("hybrid", 1, 1000)  # the defaults
    packed = index.search(query, budget=30, count_tokens=words)
    assert sum(words(h.text) + retrieval.PER_HIT_TOKENS for h in packed) <= 30
    assert all(not k.startswith("_") for h in packed for k in h.metadata)  # private metadata stays inside
    dense = index.search(query, 3, mode="dense", expand=0)
    assert rank_of(dense, "QX_RELAXED_WALK") is None and len(dense) == 3
    assert rank_of(index.search(query, 3, expand=0), "QX_RELAXED_WALK") is not None
    with pytest.raises(UsageError, match="hybrid or dense"):
        index.search(query, mode="sparse")


def test_convex_fusion_keeps_a_clear_lexical_winner_above_middling_agreement():
    # x is BM25's clear best but only fifth by cosine; b is second in both. RRF (ranks only)
    # puts b first; the convex fusion of normalised scores keeps x first.
    dense = [("a", 0.80), ("b", 0.78), ("c", 0.70), ("d", 0.60), ("x", 0.55), ("y", 0.30)]
    lexical = [("x", 12.0), ("b", 3.0), ("z", 2.0)]
    assert retrieval.rrf([[i for i, _ in dense], [i for i, _ in lexical]])[0][0] == "b"
    fused = retrieval.convex([dense, lexical], (0.5, 0.5))
    assert fused[0] == ("x", pytest.approx(0.5 * 0.5 + 0.5 * 1.0))
    assert {i for i, _ in fused} == {"a", "b", "c", "d", "x", "y", "z"}
    assert dict(fused)["y"] == 0.0 and dict(fused)["z"] == 0.0  # each list's minimum, absent from the other
    assert retrieval.convex([[("p", 1.0), ("q", 1.0)]], (1.0,)) == [("p", 1.0), ("q", 1.0)]  # equal scores: no division by zero
    # BM25 from 0 (its least possible score): two lexical candidates are not stretched to 1 and 0
    fused = dict(retrieval.convex([dense, [("x", 4.0), ("b", 3.0)]], (0.5, 0.5), (None, 0.0)))
    assert fused["b"] == pytest.approx(0.5 * 0.96 + 0.5 * 0.75) and fused["b"] > fused["x"]


def test_default_fusion_is_convex_and_ranks_the_identifier_higher_than_rrf(topic_index):
    from llm_magics import UsageError, config

    index, _ = topic_index
    assert config.settings().fusion == "convex"
    query = "How long does QX_RELAXED_WALK make the connection wait on a busy lock?"  # dense ranks it low
    convex = index.search(query, 8, expand=0)
    rrf = index.search(query, 8, expand=0, fusion="rrf")
    assert [h.id for h in convex] == [h.id for h in index.search(query, 8, expand=0, fusion="convex")]
    assert rank_of(convex, "QX_RELAXED_WALK") == 1  # BM25's clear best
    assert rank_of(rrf, "QX_RELAXED_WALK") > 1  # below chunks both rankings put in the middle
    with pytest.raises(UsageError, match="convex or rrf"):
        index.search(query, fusion="borda")
