"""Fixtures for the ingest tests: a private store folder, a test-double embedder plugin,
and the real default embedder (all-MiniLM-L6-v2 on our runtime), loaded once.

The test double hashes words into a fixed number of dimensions, so texts that share words
are close: good enough to check ranking, fast enough for hundreds of tests. It is
registered as a plugin, the same way a third-party embedder would be.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from llm_magics import config, hookimpl, plugins
from llm_magics.embedders import Embedder

_WORD = re.compile(r"\w+|[^\w\s]")


class HashEmbedder(Embedder):
    """Bag of hashed words, L2-normalised; tokens are words and punctuation marks."""

    name = "test-hash"
    dimension = 64
    max_tokens = 34  # a small window, so token-splitter limits are easy to hit
    num_special_tokens = 2
    calls = 0  # texts embedded, across instances

    def embed(self, texts):
        type(self).calls += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                slot = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, slot % self.dimension] += 1.0
            out[row, -1] += 1e-3  # no zero vectors
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def token_spans(self, text):
        return [m.span() for m in _WORD.finditer(text)]


class OtherHashEmbedder(HashEmbedder):
    """Another model, as far as a collection can tell: different name and dimension."""

    name = "test-hash-other"
    dimension = 32


class Plugin:
    @hookimpl
    def register_embedders(self, register):
        register(HashEmbedder)
        register(OtherHashEmbedder)



@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch):
    """Every test gets its own persistent-store folder and default settings."""
    s = config.settings()
    saved = {k: getattr(s, k) for k in ("store_path", "embedder", "collection", "splitter", "chunk_size", "chunk_overlap", "progress")}
    s.store_path = str(tmp_path / "store")
    s.progress = False
    yield tmp_path / "store"
    for k, v in saved.items():
        setattr(s, k, v)


@pytest.fixture
def hash_embedder():
    """Register the test-double embedders as a plugin; make ``test-hash`` the default."""
    name = plugins.register(Plugin(), "test-hash-embedders")
    s = config.settings()
    s.embedder = "test-hash"
    HashEmbedder.calls = 0
    try:
        yield HashEmbedder()
    finally:
        plugins.unregister(name)


@pytest.fixture(scope="session")
def minilm():
    """The real default embedder, loaded once for the session."""
    from llm_magics.embedders import get_embedder

    embedder = get_embedder("all-minilm-l6-v2")
    embedder.embed(["warm up"])
    return embedder
