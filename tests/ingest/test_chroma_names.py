"""Any collection name a user types works in Chroma, whose own rule is 3-63 characters:
short and long names map to a valid Chroma name, the same one every time, and Chroma's
listing keeps the user's name in the collection's metadata. A real embedded Chroma."""

from __future__ import annotations

import numpy as np
import pytest

from llm_magics.errors import UsageError
from llm_magics.ingest.stores import get_store_class
from llm_magics.ingest.stores.chroma import chroma_name, client


def test_names_chroma_accepts_stay_as_they_are():
    for name in ("docs", "my-docs", "papers_2024", "a.b.c", "x" * 63):
        assert chroma_name(name) == name


def test_other_names_map_deterministically_to_valid_ones():
    import re

    valid = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")
    for name in ("jl", "j", "Q", "x" * 64, "long-" * 40, "10.0.0.1"):
        mapped = chroma_name(name)
        assert valid.match(mapped) and ".." not in mapped, (name, mapped)
        assert mapped == chroma_name(name)  # the same name, the same collection
    assert chroma_name("jl").startswith("jl-") and chroma_name("jl") != chroma_name("JL") != chroma_name("j")


def test_short_collection_in_a_real_chroma(tmp_path):
    cls = get_store_class("chroma")
    store = cls("jl", path=str(tmp_path))
    vectors = np.eye(3, dtype=np.float32)
    store.upsert(["a", "b", "c"], vectors, ["one", "two", "three"], [{"source": "s"}] * 3)
    store.set_info({"embedder": "x", "dimension": 3})
    store.set_manifest("/s", {"version": "v1", "chunks": 3})
    again = cls("jl", path=str(tmp_path))  # opened again by the same user name: the same collection
    assert again.count() == 3 and again.query(vectors[1], 1)[0].text == "two"
    assert again.info() == {"embedder": "x", "dimension": 3} and again.manifest() == {"/s": {"version": "v1", "chunks": 3}}
    listed = {c.name: dict(c.metadata or {}) for c in client(str(tmp_path)).list_collections()}
    assert listed[chroma_name("jl")]["name"] == "jl"  # Chroma's listing shows the user's name
    other = cls("j", path=str(tmp_path))
    assert other.count() == 0  # a different name is a different collection
    again.drop()
    assert cls("jl", path=str(tmp_path)).count() == 0


def test_names_no_store_can_hold_are_still_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="Bad collection name"):
        get_store_class("chroma")("a b!", path=str(tmp_path))


def test_ingest_magic_with_a_two_letter_collection(ip, tmp_path, hash_embedder):
    (tmp_path / "notes.txt").write_text("Short collection names work now.\n")
    ip.run_cell(f"%ingest {tmp_path / 'notes.txt'} --collection jl --embedder test-hash -o idx").raise_error()
    idx = ip.user_ns["idx"]
    assert idx.collection == "jl" and idx.store.count() >= 1
    assert idx.search("short collection names", k=1)[0].text.startswith("Short collection names")
