"""Splitters: property tests (coverage, overlap, size) and agreement with LangChain."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_magics import Document, registry
from llm_magics.errors import UsageError
from llm_magics.ingest.splitters import get_splitter

# Text built from words, spaces, newlines and paragraph breaks, plus the odd long word.
pieces = st.one_of(
    st.sampled_from(["a", "bb", "ccc", "word", "longerword", "x" * 40, " ", "  ", "\n", "\n\n", ". ", "# Head\n", "## Sub\n"]),
    st.text(alphabet="abcdefghij éß", min_size=1, max_size=12),
)
texts = st.lists(pieces, min_size=0, max_size=120).map("".join)
sizes = st.integers(min_value=5, max_value=120).flatmap(lambda size: st.tuples(st.just(size), st.integers(min_value=0, max_value=size - 1)))

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chunks_of(splitter, text):
    return list(splitter.split_document(Document(text, {"source": "t"})))


def check_invariants(text, chunks, size, overlap, length=len):
    covered = [False] * len(text)
    previous_end = None
    for chunk in chunks:
        start = chunk.metadata["start_index"]
        # start_index locates the chunk exactly
        assert text[start : start + len(chunk.text)] == chunk.text
        assert chunk.text and chunk.text == chunk.text.strip()
        # size limit
        assert length(chunk.text) <= size
        # overlap: neighbours share at most `overlap`, and chunks move forward
        if previous_end is not None:
            shared = max(0, previous_end - start)
            assert length(text[start : start + shared]) <= overlap
            assert start >= previous_start
        previous_start, previous_end = start, start + len(chunk.text)
        for i in range(start, start + len(chunk.text)):
            covered[i] = True
    # coverage: every non-space character is in some chunk
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))


@pytest.mark.parametrize("name", ["recursive", "character", "markdown"])
@PROPERTY
@given(text=texts, size_overlap=sizes)
def test_character_splitters_cover_overlap_and_fit(name, text, size_overlap):
    size, overlap = size_overlap
    splitter = get_splitter(name, chunk_size=size, chunk_overlap=overlap)
    check_invariants(text, chunks_of(splitter, text), size, overlap)


@settings(PROPERTY, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # the embedder is stateless
@given(text=texts, size_overlap=sizes)
def test_token_splitter_never_exceeds_the_window(hash_embedder, text, size_overlap):
    size, overlap = size_overlap
    splitter = get_splitter("token", embedder=hash_embedder, chunk_size=size, chunk_overlap=overlap)
    limit = min(size, hash_embedder.max_tokens - hash_embedder.num_special_tokens)
    assert splitter.chunk_size == limit
    count = lambda s: len(hash_embedder.token_spans(s))  # noqa: E731
    check_invariants(text, chunks_of(splitter, text), limit, max(overlap, splitter.chunk_overlap), count)


@PROPERTY
@given(text=texts)
def test_recursive_matches_langchain(text):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    ours = get_splitter("recursive", chunk_size=50, chunk_overlap=10).split_text(text)
    theirs = RecursiveCharacterTextSplitter(chunk_size=50, chunk_overlap=10).split_text(text)
    assert ours == theirs


def test_recursive_defaults_and_registry():
    assert set(registry.names("splitter")) >= {"character", "recursive", "token", "markdown"}
    splitter = get_splitter("recursive", chunk_size=100)
    assert splitter.separators({}) == ["\n\n", "\n", " ", ""]
    assert splitter.chunk_overlap == 20  # the setting (200), kept below a fifth of an explicit chunk_size
    assert splitter.separators({"language": "python"})[:2] == ["\nclass ", "\ndef "]


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError, match="chunk_overlap"):
        get_splitter("recursive", chunk_size=10, chunk_overlap=10)
    with pytest.raises(UsageError, match="Valid options"):
        get_splitter("recursive", chunk_sise=10)
    with pytest.raises(UsageError, match="token splitter"):
        get_splitter("token")


def test_giant_single_line_is_fast():
    text = "y" * 3_000_000
    t0 = time.perf_counter()
    chunks = get_splitter("recursive", chunk_size=1000, chunk_overlap=100).split_text(text)
    assert time.perf_counter() - t0 < 2.0
    assert len(chunks) == -(-(len(text) - 100) // 900)
    assert all(len(c) <= 1000 for c in chunks)


def test_markdown_headers_in_metadata_and_kept_with_their_text():
    text = "# Guide\n\nIntro text.\n\n## Install\n\n### From source\n\n" + "Clone the repository and build it. " * 8 + "\n\n## Use\n\nRun it.\n"
    chunks = chunks_of(get_splitter("markdown", chunk_size=120, chunk_overlap=20), text)
    by_section = {}
    for c in chunks:
        by_section.setdefault(c.metadata.get("section"), []).append(c)
    assert list(by_section) == ["Guide", "Guide > Install > From source", "Guide > Use"]
    first = by_section["Guide > Install > From source"][0]
    # an empty section's header joins the next, and a header always starts a chunk with text after it
    assert first.text.startswith("## Install\n\n### From source\n\nClone")
    assert first.metadata["h2"] == "Install" and first.metadata["h3"] == "From source"
    assert all(len(c.text) <= 120 for c in chunks)


def test_markdown_ignores_headers_in_code():
    text = "# Real\n\n```\n# not a header\n```\n\nText.\n"
    chunks = chunks_of(get_splitter("markdown", chunk_size=200, chunk_overlap=0), text)
    assert len(chunks) == 1 and chunks[0].metadata["section"] == "Real"
    code = Document("# comment\nx = 1\n\n# another\ny = 2\n", {"language": "python"})
    assert all("section" not in c.metadata for c in get_splitter("markdown", chunk_size=200, chunk_overlap=0).split_document(code))


def test_token_splitter_with_the_real_tokenizer(minilm):
    window = minilm.max_tokens - 2
    text = ("Herons wade in shallow water, hunting fish with their sharp beaks. " * 60 + "\n\n") * 3 + "Pneumonoultramicroscopicsilicovolcanoconiosis " * 200
    splitter = get_splitter("token", embedder=minilm)
    assert splitter.chunk_size == window
    chunks = chunks_of(splitter, text)
    counts = [len(minilm.token_spans(c.text)) for c in chunks]
    assert max(counts) <= window
    assert max(counts) > window * 0.8  # and it uses the window, not a tiny fraction of it
    check_invariants(text, chunks, window, splitter.chunk_overlap, lambda s: len(minilm.token_spans(s)))
