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
from llm_magics.ingest.embedders import Embedder

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
    from llm_magics.ingest.embedders import get_embedder

    embedder = get_embedder("all-minilm-l6-v2")
    embedder.embed(["warm up"])
    return embedder


# ---------------------------------------------------------------------------
# Real files
# ---------------------------------------------------------------------------


def make_pdf(path, pages: list[str], title: str | None = None) -> str:
    """Write a real PDF by hand: one page per string, Helvetica text, a correct xref table."""

    def escape(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    objects: list[bytes] = []
    n_pages = len(pages)
    font_id = 3 + 2 * n_pages
    info_id = font_id + 1
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    for i, text in enumerate(pages):
        lines = text.split("\n")
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            ops.append(f"({escape(line)}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R /Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    objects.append(f"<< /Title ({escape(title or '')}) >>".encode())
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, info_id, xref)
    with open(path, "wb") as f:
        f.write(bytes(out))
    return str(path)


@pytest.fixture
def pdf_factory():
    return make_pdf


def encrypt_pdf(src: str, dst: str, password: str = "secret") -> str:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(src).pages:
        writer.add_page(page)
    writer.encrypt(user_password=password, owner_password=password, algorithm="RC4-128")
    with open(dst, "wb") as f:
        writer.write(f)
    return dst


@pytest.fixture
def pdf_encrypt():
    return encrypt_pdf
