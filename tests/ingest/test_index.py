"""``Index``: idempotent, incremental, safe against bad input, interrupts and crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from llm_magics import hookimpl, plugins
from llm_magics.errors import UsageError
from llm_magics.ingest.index import KEY, VERSION, Index
from llm_magics.ingest.stores.memory import MemoryStore

STORES = ["memory", "chroma"]


def write_corpus(folder, n=4):
    folder.mkdir(exist_ok=True)
    topics = ["herons wade in shallow water", "kettles boil water fast", "comets orbit the sun", "violins have four strings", "glaciers carve valleys"]
    for i in range(n):
        (folder / f"doc{i}.md").write_text(f"# Doc {i}\n\n" + "\n\n".join(f"{topics[i % 5]} and paragraph {j} of doc {i}." for j in range(6)))
    return folder


def committed_state(index):
    """{source key: sorted chunk ids of its committed version}, checked for completeness."""
    manifest = index.store.manifest()
    records = index.store.get()
    state = {}
    for key, entry in manifest.items():
        if not entry.get("version"):
            continue
        ids = sorted(r["id"] for r in records if r["metadata"][KEY] == key and r["metadata"][VERSION] == entry["version"])
        assert len(ids) == entry["chunks"], f"{key}: committed version is incomplete"
        state[key] = ids
    return state


def assert_search_sees_only_committed(index):
    manifest = index.store.manifest()
    hits = index.search("water paragraph doc", k=500)
    for hit in hits:
        (record,) = index.store.get(ids=[hit.id])
        meta = record["metadata"]
        assert manifest[meta[KEY]]["version"] == meta[VERSION], "search returned a chunk of an unfinished version"
        assert not any(k.startswith("_") for k in hit.metadata)


@pytest.mark.parametrize("store", STORES)
def test_reingesting_adds_nothing(hash_embedder, tmp_path, store):
    docs = write_corpus(tmp_path / "docs")
    index = Index(collection="idem", store=store)
    first = index.add(str(docs), splitter="recursive", chunk_size=60, chunk_overlap=10)
    assert first.files_read == 4 and first.chunks_added > 8 and first.chunks_removed == 0
    count, state = index.store.count(), committed_state(index)
    calls = type(hash_embedder).calls
    again = index.add(str(docs), splitter="recursive", chunk_size=60, chunk_overlap=10)
    assert (again.files_read, again.files_unchanged, again.chunks_added, again.chunks_removed) == (0, 4, 0, 0)
    assert again.chunks_unchanged == first.chunks_added
    assert index.store.count() == count and committed_state(index) == state
    assert type(hash_embedder).calls == calls  # nothing was embedded again
    # a touched but unchanged file is read, found identical, and still adds nothing
    os.utime(docs / "doc0.md", (1, 1))
    touched = index.add(str(docs), splitter="recursive", chunk_size=60, chunk_overlap=10)
    assert touched.chunks_added == 0 and touched.files_unchanged == 4
    # a new Index object on the same persistent collection agrees
    if store == "chroma":
        assert Index(collection="idem", store="chroma").add(str(docs), splitter="recursive", chunk_size=60, chunk_overlap=10).chunks_added == 0


def test_a_new_loader_revision_reads_unchanged_files_again(minilm, tmp_path, monkeypatch):
    from llm_magics.ingest.loaders import html

    docs = tmp_path / "site"
    docs.mkdir()
    (docs / "page.html").write_text("<ul><li><a href='/'>Home</a></li></ul><p>Herons wade in shallow water.</p>")
    (docs / "notes.md").write_text("Kettles boil water.")
    index = Index(collection="revision", store="chroma", embedder=minilm)
    with monkeypatch.context() as old_code:  # what revision 1 made of the page: its menu kept
        old_code.setattr(html.HTMLLoader, "revision", 1)
        keep = html.html_to_text
        old_code.setattr(html, "html_to_text", lambda text, headings=True, drop_links=True: keep(text, headings, False))
        index.add(str(docs))
        assert index.add(str(docs)).files_unchanged == 2
        assert "Home" in " ".join(h.text for h in index.search("herons", k=5))
    # today's loader (a new revision): its pages are read again and the menu goes; the other file is not read
    report = index.add(str(docs))
    assert report.files_read == 1 and report.files_unchanged == 1
    assert "Home" not in " ".join(h.text for h in index.search("herons", k=5))


@pytest.mark.parametrize("store", STORES)
def test_changed_file_replaces_its_chunks_and_delete_removes_a_source(hash_embedder, tmp_path, store):
    docs = write_corpus(tmp_path / "docs")
    index = Index(collection="change", store=store)
    index.add(str(docs), chunk_size=60, chunk_overlap=10)
    before = committed_state(index)
    target = docs / "doc1.md"
    target.write_text(target.read_text().replace("paragraph 5 of doc 1", "a brand new ending about otters"))
    calls = type(hash_embedder).calls
    report = index.add(str(docs), chunk_size=60, chunk_overlap=10)
    assert report.files_read == 1 and report.files_unchanged == 3
    assert report.chunks_added >= 1 and report.chunks_removed == len(before[str(target)])
    assert type(hash_embedder).calls - calls == report.chunks_embedded < report.chunks_added + 1  # unchanged texts reuse their vectors
    after = committed_state(index)
    assert after.keys() == before.keys()
    assert set(after[str(target)]).isdisjoint(before[str(target)])
    assert index.store.count() == sum(len(v) for v in after.values())  # no stale chunks left
    assert "otters" in index.search("otters", k=1)[0].text
    # delete a source
    removed = index.delete(str(target))
    assert removed == len(after[str(target)])
    assert str(target) not in index.sources()
    assert all(h.metadata["source"] != str(target) for h in index.search("otters", k=50))
    with pytest.raises(UsageError, match="No source"):
        index.delete(str(target))


def test_search_results_have_source_as_given_and_page(hash_embedder, tmp_path, pdf_factory, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pdf_factory(tmp_path / "birds.pdf", ["Herons and egrets", "Kingfishers dive for fish"])
    (tmp_path / "notes.txt").write_text("Shopping list: kettle, toaster.")
    index = Index(collection="meta", store="memory")
    index.add(["birds.pdf", "notes.txt"])
    hit = index.search("kingfishers dive fish", k=1)[0]
    assert hit.metadata["source"] == "birds.pdf" and hit.metadata["page"] == 2
    assert hit.text == "Kingfishers dive for fish"
    assert 0 < hit.score <= 1.0001
    assert index.sources() == ["birds.pdf", "notes.txt"]
    assert [h.metadata["source"] for h in index.search("kettle", k=5, where={"source": "notes.txt"})] == ["notes.txt"]
    stats = index.stats()
    assert (stats["sources"], stats["chunks"], stats["embedder"], stats["dimension"]) == (2, 3, "test-hash", 64)


@pytest.mark.parametrize("store", STORES)
def test_a_different_embedder_is_a_clear_error(hash_embedder, tmp_path, store):
    docs = write_corpus(tmp_path / "docs", 1)
    Index(collection="emb", store=store).add(str(docs))
    with pytest.raises(UsageError, match="was built with embedder 'test-hash'.*--embedder test-hash"):
        Index(collection="emb", store=store, embedder="test-hash-other").search("herons")
    with pytest.raises(UsageError, match="was built with embedder"):
        Index(collection="emb", store=store, embedder="test-hash-other").add(str(docs))
    # without --embedder, the collection's own embedder is used
    assert Index(collection="emb", store=store, embedder=None).search("herons", k=1)


def test_glob_recursive_and_missing_sources(hash_embedder, tmp_path):
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "a.md").write_text("alpha text")
    (root / "b.txt").write_text("beta text")
    (root / "sub" / "c.md").write_text("gamma text")
    (root / "sub" / "deeper" / "d.md").write_text("delta text")
    (root / ".hidden" / "e.md").write_text("secret text")
    index = Index(collection="walk", store="memory")
    flat = index.add(str(root))
    assert flat.files_read == 2
    deep = Index(collection="walk2", store="memory")
    report = deep.add(str(root), glob="*.md", recursive=True)
    assert sorted(os.path.basename(s) for s in deep.sources()) == ["a.md", "c.md", "d.md"]
    assert report.files_read == 3
    pattern = Index(collection="walk3", store="memory")
    pattern.add(str(root / "**" / "*.md"))
    assert len(pattern.sources()) == 3
    report = pattern.add([str(tmp_path / "nope.txt"), str(tmp_path / "*.xyz")])
    assert [why for _, why in report.skipped] == ["no such file or folder", "no files match this pattern"]


def test_loader_options_are_checked(hash_embedder, tmp_path):
    (tmp_path / "a.txt").write_text("x")
    index = Index(collection="opts", store="memory")
    with pytest.raises(UsageError, match="No loader takes option"):
        index.add(str(tmp_path / "a.txt"), colums=["a"])
    with pytest.raises(UsageError, match="Valid options"):
        index.add(str(tmp_path / "a.txt"), loader="pdf", query="x")


def test_sql_source_is_idempotent(hash_embedder, tmp_path):
    import sqlite3

    db = tmp_path / "shop.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE p (name TEXT)")
    con.executemany("INSERT INTO p VALUES (?)", [("kettle",), ("lamp",)])
    con.commit()
    index = Index(collection="sql", store="memory")
    url = f"sqlite:///{db}"
    assert index.add(url, query="SELECT name FROM p").chunks_added == 2
    assert index.add(url, query="SELECT name FROM p").chunks_added == 0
    con.execute("INSERT INTO p VALUES ('toaster')")
    con.commit()
    con.close()
    report = index.add(url, query="SELECT name FROM p")
    assert (report.chunks_added, report.chunks_removed) == (3, 2)
    assert index.search("toaster", k=1)[0].metadata["source"] == url


# ---------------------------------------------------------------------------
# Bad input never breaks a run
# ---------------------------------------------------------------------------


def test_bad_input_is_skipped_with_reasons(hash_embedder, tmp_path, pdf_factory, pdf_encrypt):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "good.txt").write_text("A perfectly fine file about herons.")
    (bad / "empty.txt").write_text("")
    (bad / "blank.md").write_text("   \n\n  ")
    (bad / "nul.txt").write_bytes(b"text with a NUL \x00 byte in it")
    (bad / "image.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    (bad / "program.bin").write_bytes(bytes(range(256)) * 4)
    (bad / "giant.txt").write_text("z" * 1_500_000)
    pdf_factory(bad / "real.pdf", ["A real PDF page about kettles"])
    pdf_encrypt(str(bad / "real.pdf"), str(bad / "locked.pdf"))
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\ntrailer\n<<>>\n%%EOF")
    (bad / "mislabeled.txt").write_bytes((bad / "real.pdf").read_bytes())
    (bad / "bad.json").write_text("{not json")
    (bad / "dir.txt").mkdir()  # a folder named like a file
    os.symlink("loop_b.txt", bad / "loop_a.txt")
    os.symlink("loop_a.txt", bad / "loop_b.txt")
    os.mkfifo(bad / "pipe.txt")  # opening a FIFO would block forever
    index = Index(collection="bad", store="memory")
    report = index.add(str(bad))  # must return, not raise or hang
    reasons = dict((os.path.basename(s), why) for s, why in report.skipped)
    assert reasons["empty.txt"] == "empty file"
    assert reasons["blank.md"] == "empty file"
    assert "NUL" in reasons["nul.txt"]
    assert "PNG" in reasons["image.csv"]
    assert "binary" in reasons["program.bin"]
    assert "giant single line" in reasons["giant.txt"]
    assert "encrypted" in reasons["locked.pdf"]
    assert "PDF" in reasons["corrupt.pdf"]
    assert "invalid JSON" in reasons["bad.json"]
    assert reasons["loop_a.txt"] == reasons["loop_b.txt"] == "symlink loop"
    assert "FIFO" in reasons["pipe.txt"]
    assert "dir.txt" not in reasons  # a non-recursive walk only reads files
    assert all("\n" not in why for why in reasons.values())
    assert sorted(os.path.basename(s) for s in index.sources()) == ["good.txt", "mislabeled.txt", "real.pdf"]
    assert any("mislabeled" in note for _, note in report.notes)
    assert report.files_read == 3 and report.files_skipped == len(reasons)
    text = str(report)
    assert "3 file(s) read" in text and "symlink loop" in text
    # the folder named like a file, given directly, is walked as a folder
    assert Index(collection="bad2", store="memory").add(str(bad / "dir.txt")).skipped[0][1].startswith("folder has no files")


CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from llm_magics import config, hookimpl, plugins
    from llm_magics.ingest.embedders import Embedder
    from llm_magics.ingest.index import Index

    class Tiny(Embedder):
        name = "tiny"
        dimension = 4
        def embed(self, texts):
            return np.ones((len(texts), 4), dtype=np.float32) / 2

    class P:
        @hookimpl
        def register_embedders(self, register):
            register(Tiny)

    plugins.register(P(), "tiny")
    config.settings().progress = False
    report = Index(collection="perm", store="memory", embedder="tiny").add(sys.argv[1])
    print(json.dumps({"skipped": report.skipped, "read": report.files_read}))
    """
)


def test_permission_denied_is_skipped(tmp_path):
    """A file we may not read. Root reads anything, so when the tests run as root the
    ingest runs in a child process without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    (dropped from its capability bounding set before exec): the kernel then denies root
    exactly as it denies any other user. No mock: open() really fails with EACCES."""
    folder = tmp_path / "perm"
    folder.mkdir()
    (folder / "open.txt").write_text("anyone may read this")
    secret = folder / "secret.txt"
    secret.write_text("nobody may read this")
    secret.chmod(0)
    preexec = None
    if os.geteuid() == 0:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)

        def preexec():
            for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
                if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                    raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, timeout=120, preexec_fn=preexec)
    finally:
        secret.chmod(0o644)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["read"] == 1
    assert result["skipped"] == [[str(secret), "permission denied"]]


# ---------------------------------------------------------------------------
# Interrupts and crashes leave the collection consistent
# ---------------------------------------------------------------------------


class FlakyMemoryStore(MemoryStore):
    """A memory store whose Nth upsert writes half its rows, then fails."""

    name = "flaky-memory"
    fail_on: int | None = None
    error: type[BaseException] = KeyboardInterrupt
    upserts = 0

    def upsert(self, ids, vectors, texts, metadatas):
        cls = type(self)
        cls.upserts += 1
        if cls.upserts == cls.fail_on:
            half = max(1, len(ids) // 2)
            super().upsert(ids[:half], vectors[:half], texts[:half], metadatas[:half])
            raise cls.error("simulated interrupt in the middle of a write")
        super().upsert(ids, vectors, texts, metadatas)


@pytest.fixture
def flaky_store(hash_embedder):
    class P:
        @hookimpl
        def register_vector_stores(self, register):
            register(FlakyMemoryStore)

    name = plugins.register(P(), "flaky-store")
    FlakyMemoryStore.upserts, FlakyMemoryStore.fail_on = 0, None
    yield FlakyMemoryStore
    plugins.unregister(name)
    MemoryStore("interrupted").drop()
    MemoryStore("clean-run").drop()


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
@pytest.mark.parametrize("fail_on", [1, 3, 5])  # the 1st, 3rd or last of five sources
def test_interrupt_or_crash_mid_write_is_consistent_and_rerun_completes(flaky_store, tmp_path, error, fail_on):
    docs = write_corpus(tmp_path / "docs", 5)
    index = Index(collection="interrupted", store="flaky-memory")
    index.add(str(docs / "doc0.md"), chunk_size=80, chunk_overlap=10)  # one source committed before
    flaky_store.fail_on, flaky_store.error = flaky_store.upserts + fail_on, error
    docs.joinpath("doc0.md").write_text("# Doc 0\n\nRewritten: herons now hunt frogs at dawn.")
    with pytest.raises(error):
        index.add(str(docs), chunk_size=80, chunk_overlap=10)
    committed_state(index)  # every committed version is complete ...
    assert_search_sees_only_committed(index)  # ... and search never sees a half-written one
    assert index.stats()["unfinished"] == 1  # the source that was being written

    flaky_store.fail_on = None
    calls = flaky_store.upserts
    report = index.add(str(docs), chunk_size=80, chunk_overlap=10)
    assert flaky_store.upserts > calls and not report.interrupted
    clean = Index(collection="clean-run", store="memory")
    clean.add(str(docs), chunk_size=80, chunk_overlap=10)
    expected = committed_state(clean)
    assert committed_state(index) == expected  # same chunk ids as a run that never failed
    assert index.store.count() == sum(len(v) for v in expected.values())  # no leftovers
    assert index.stats()["unfinished"] == 0
    assert "frogs" in index.search("herons hunt frogs", k=1)[0].text


def test_keyboard_interrupt_while_embedding(hash_embedder, tmp_path, monkeypatch):
    docs = write_corpus(tmp_path / "docs", 5)
    index = Index(collection="embed-interrupt", store="memory")
    from llm_magics.ingest.pipeline import _Writer

    monkeypatch.setattr(_Writer, "GROUP", 10)  # embed and write a few sources at a time
    real_embed = type(hash_embedder).embed
    calls = {"n": 0}

    def embed(self, texts):
        calls["n"] += 1
        if calls["n"] == 5:  # in the second group of sources
            raise KeyboardInterrupt
        return real_embed(self, texts)

    monkeypatch.setattr(type(hash_embedder), "embed", embed)
    with pytest.raises(KeyboardInterrupt):
        index.add(str(docs), chunk_size=80, chunk_overlap=10, batch_size=4)
    report = index.last_report
    assert report.interrupted and 0 < len(index.sources()) < 5
    committed_state(index)
    assert_search_sees_only_committed(index)
    done = len(index.sources())
    rerun = index.add(str(docs), chunk_size=80, chunk_overlap=10)
    assert rerun.files_unchanged == done and rerun.files_read == 5 - done
    assert len(index.sources()) == 5
    MemoryStore("embed-interrupt").drop()


def test_the_manifest_owns_the_write_protocol():
    from llm_magics.ingest.manifest import Manifest

    import numpy as np

    store = MemoryStore("manifest-steps")
    m = Manifest(store)
    stale = m.begin("k", "a.txt", "v1", None)  # 1: pending, hidden
    assert stale == [] and m.hidden_versions() == ["v1"] and not m.settled(m.entries()["k"])
    store.upsert(["c1"], np.ones((1, 4), dtype=np.float32), ["text"], [m.tag({"source": "a.txt"}, "k", "v1")])  # 2
    m.commit("k", "v1", stale, source="a.txt", chunks=1)  # 3
    assert m.settled(m.entries()["k"]) and m.hidden_versions() == []
    stale = m.begin("k", "a.txt", "v2", m.entries()["k"])  # a new version of the same source
    assert stale == ["v1"] and m.entries()["k"]["version"] == "v1"  # the old one stays live until commit
    m.commit("k", "v2", stale, source="a.txt", chunks=0)
    assert m.hidden_versions() == ["v1"]
    assert m.forget("k", keep="v2") == 1 and m.settled(m.entries()["k"])  # 4: v1's chunk deleted
    m.hide("k")
    assert m.entries()["k"]["version"] is None
    assert m.forget("k") == 0 and "k" not in m.entries()


def test_source_keys_come_from_the_loader_and_sql_hides_its_password():
    import ast
    from pathlib import Path

    from llm_magics.ingest import pipeline
    from llm_magics.ingest.loaders.sql import SQLLoader
    from llm_magics.ingest.loaders.text import TextLoader

    key = SQLLoader.source_key("postgresql://bob:hunter2@db/shop", {"query": "SELECT 1"})
    assert key == 'postgresql://bob:***@db/shop {"query": "SELECT 1"}'
    assert TextLoader.source_key("notes.txt", {}) == os.path.abspath("notes.txt")
    from llm_magics.ingest import index

    for module in (pipeline, index):  # core imports no loader plugin's module (loaders/sources.py is shared)
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not [n for n in names if n.startswith("loaders.") and n != "loaders.sources"], names


def test_the_store_folder_as_a_store_option(hash_embedder, tmp_path):
    """``--store-option path=DIR`` names the folder as ``path=`` does; two different ones are an error."""
    docs = write_corpus(tmp_path / "docs", n=1)
    Index(collection="opt", store="chroma", store_options={"path": str(tmp_path / "db")}).add(str(docs))
    assert Index(collection="opt", store="chroma", path=str(tmp_path / "db")).store.count() > 0
    assert Index(collection="opt", store="chroma", path=str(tmp_path / "db"), store_options={"path": str(tmp_path / "db")}).store.count() > 0
    with pytest.raises(UsageError, match="Two folders"):
        Index(collection="opt", store="chroma", path=str(tmp_path / "a"), store_options={"path": str(tmp_path / "b")})
