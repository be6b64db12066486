"""``Index.add(workers=N)`` and ``%ingest --workers N --profile``: loading and splitting in a
process pool gives the same chunks, ids, skips and notes as one process; the report says
where the time went. Real loaders, the real MiniLM embedder, a real Chroma."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from llm_magics.errors import UsageError
from llm_magics.ingest.index import KEY, VERSION, Index
from llm_magics.ingest.manifest import Manifest


@pytest.fixture
def mixed(tmp_path, pdf_factory):
    """Good files of several kinds, and bad ones that every run must skip the same way."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    topics = ["Herons wade in shallow water", "Kettles boil water fast", "Comets orbit the sun", "Violins have four strings"]
    for i, topic in enumerate(topics):
        (folder / f"note{i}.md").write_text(f"# {topic}\n\n" + "\n\n".join(f"{topic}, paragraph {j}." for j in range(4)))
    (folder / "page.html").write_text("<html><title>Glaciers</title><body><h2>Ice</h2><p>Glaciers carve valleys.</p></body></html>")
    pdf_factory(folder / "birds.pdf", ["Kingfishers dive for fish", "Egrets nest in colonies"])
    (folder / "mislabeled.txt").write_bytes((folder / "birds.pdf").read_bytes())
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\ntrailer\n<<>>\n%%EOF")
    (folder / "program.bin").write_bytes(bytes(range(256)) * 4)
    (folder / "empty.txt").write_text("")
    (folder / "bad.json").write_text("{not json")
    return folder


def chunks_of(index):
    return sorted((r["id"], r["text"], r["metadata"][KEY], r["metadata"][VERSION]) for r in index.store.get())


def consistent(index) -> None:
    """Every source settled and complete: what the manifest commits is exactly what the store holds."""
    records = index.store.get()
    for key, entry in index.store.manifest().items():
        assert Manifest.settled(entry), key
        assert sum(r["metadata"][KEY] == key and r["metadata"][VERSION] == entry["version"] for r in records) == entry["chunks"]
    assert len(records) == sum(e["chunks"] for e in index.store.manifest().values())


def test_workers_give_the_same_chunks_skips_and_notes_and_rerunning_adds_nothing(minilm, mixed):
    one = Index(collection="one", store="chroma", embedder=minilm)
    two = Index(collection="two", store="chroma", embedder=minilm)
    r1 = one.add(str(mixed), chunk_size=60, chunk_overlap=10, workers=1)
    r2 = two.add(str(mixed), chunk_size=60, chunk_overlap=10, workers=2)
    assert (r1.workers, r2.workers, r2.workers_note) == (1, 2, "")
    assert chunks_of(one) == chunks_of(two) and len(chunks_of(one)) > 10
    # a broken file in a worker is reported exactly as in this process: same sources, order and reasons
    assert r2.skipped == r1.skipped and len(r1.skipped) == 4
    reasons = {os.path.basename(s): why for s, why in r2.skipped}
    assert "PDF" in reasons["corrupt.pdf"] and "binary" in reasons["program.bin"] and reasons["empty.txt"] == "empty file"
    assert "JSON" in reasons["bad.json"]
    assert r2.notes == r1.notes and "mislabeled" in r2.notes[0][1]
    assert (r2.files_read, r2.chunks_added, r2.chunks_embedded) == (r1.files_read, r1.chunks_added, r1.chunks_embedded)
    consistent(two)
    # idempotent: re-running with workers adds nothing, a touched file is re-read and found identical
    again = two.add(str(mixed), chunk_size=60, chunk_overlap=10, workers=2)
    assert (again.files_read, again.chunks_added, again.chunks_removed, again.files_unchanged) == (0, 0, 0, r1.files_read)
    for name in ("note0.md", "birds.pdf", "page.html"):
        os.utime(mixed / name, (1, 1))
    touched = two.add(str(mixed), chunk_size=60, chunk_overlap=10, workers=2)
    assert touched.workers == 2 and (touched.files_read, touched.chunks_added, touched.files_unchanged) == (0, 0, r1.files_read)
    assert chunks_of(two) == chunks_of(one)


def test_the_report_times_each_stage(minilm, mixed):
    index = Index(collection="timed", store="chroma", embedder=minilm)
    report = index.add(str(mixed), workers=0)  # 0 and 1 both mean this process
    assert report.workers == 1 and report.embed_seconds > 0 and report.load_seconds > 0 and report.store_seconds > 0
    main = [s for _, s, where in report.stages() if where == "main"]
    assert [name for name, *_ in report.stages()] == ["load", "split", "embed", "store", "other"]
    assert sum(main) == pytest.approx(report.seconds, rel=1e-6)  # the main rows add up to the wall time
    # CPU time of this process: the embedder's threads count, so it can exceed 1 core but not the machine
    assert 0 < report.cpu_seconds <= (os.cpu_count() or 1) * report.seconds * 1.05
    assert report.cores_busy == pytest.approx(report.cpu_seconds / report.seconds)
    bound = max(1.0, (os.cpu_count() or 1) / report.cores_busy)
    assert f"cores busy in this process: {report.cores_busy:.2f} of {os.cpu_count()}" in report.profile()
    assert f"at most {bound:.2f}x faster" in report.profile()

    pooled = Index(collection="timed2", store="chroma", embedder=minilm).add(str(mixed), workers=2)
    rows = {name: (s, where) for name, s, where in pooled.stages()}
    assert rows["load"][1] == rows["split"][1] == "workers" and rows["wait for workers"][1] == "main"
    assert rows["wait for workers"][0] > 0 and rows["load"][0] > 0
    assert sum(s for s, where in rows.values() if where == "main") == pytest.approx(pooled.seconds, rel=1e-6)
    assert pooled.load_seconds + pooled.split_seconds < 10 * pooled.seconds  # seconds, not a wrong unit
    assert pooled.cpu_seconds > 0 and "at most" not in pooled.profile()  # the bound is for one process only


def test_a_single_source_does_not_start_a_pool_and_bad_counts_are_usage_errors(minilm, mixed):
    index = Index(collection="single", store="chroma", embedder=minilm)
    report = index.add(str(mixed / "note1.md"), workers=4)
    assert report.workers == 1 and "fewer than 2 sources" in report.workers_note and report.files_read == 1
    for bad in (-1, 1.5, "2"):
        with pytest.raises(UsageError, match="workers must be a whole number"):
            index.add(str(mixed), workers=bad)


def test_profile_option_prints_the_table(ip, minilm, mixed, capsys):
    ip.run_cell("%config LLMMagics.progress = False").raise_error()
    ip.run_cell(f"%ingest {mixed} --embedder all-minilm-l6-v2 --collection prof --workers 2 --profile").raise_error()
    out = capsys.readouterr().out
    assert "Profile (2 worker processes)" in out
    for row in ("load (all, summed)", "split (all, summed)", "wait for workers", "embed", "store", "total (wall)"):
        assert row in out
    assert "100%" in out and "4 skipped" in out


def test_ctrl_c_stops_the_workers_and_leaves_the_collection_consistent(minilm, mixed, monkeypatch):
    from llm_magics.ingest.pipeline import _Writer

    index = Index(collection="interrupted", store="chroma", embedder=minilm)
    monkeypatch.setattr(_Writer, "GROUP", 5)  # embed and write a few sources at a time
    real_embed, calls = type(minilm).embed, {"n": 0}

    def embed(self, texts):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_embed(self, texts)

    monkeypatch.setattr(type(minilm), "embed", embed)
    with pytest.raises(KeyboardInterrupt):
        index.add(str(mixed), chunk_size=60, chunk_overlap=10, workers=2)
    assert index.last_report.interrupted and 0 < len(index.sources()) < 7
    for p in multiprocessing.active_children():  # a worker finishing its file exits on its own; none may linger
        p.join(15)
    assert multiprocessing.active_children() == []  # no worker left behind
    consistent(index)
    monkeypatch.setattr(type(minilm), "embed", real_embed)
    done = len(index.sources())
    rerun = index.add(str(mixed), chunk_size=60, chunk_overlap=10, workers=2)
    assert rerun.files_unchanged == done and rerun.files_read == 7 - done
    consistent(index)


CRASHING_PLUGIN = '''
import multiprocessing
from llm_magics import hookimpl
from llm_magics.ingest.documents import Document
from llm_magics.ingest.loaders import Loader

class CrashLoader(Loader):
    name = "crash"
    extensions = (".crash",)

    def load(self, source):
        if multiprocessing.parent_process() is not None:  # in a worker; the main process reads it fine
            import os

            os._exit(3)  # a crash in C code, as far as the pool can tell
        yield Document(open(source).read(), {"source": source})

@hookimpl
def register_loaders(register):
    register(CrashLoader)
'''


def test_a_worker_that_dies_is_reported_and_the_run_goes_on(minilm, mixed, tmp_path, monkeypatch):
    """A plugin module registered at runtime loads in the workers too; one whose loader kills
    its worker costs that file (and any in flight beside it), not the run."""
    from llm_magics import plugins

    (tmp_path / "crash_plugin.py").write_text(CRASHING_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))  # the workers get this process's sys.path
    import crash_plugin

    (mixed / "aa.crash").write_text("This file takes its worker down.")
    name = plugins.register(crash_plugin, "crash-plugin")
    try:
        index = Index(collection="crashed", store="chroma", embedder=minilm)
        report = index.add(str(mixed), chunk_size=60, chunk_overlap=10, workers=2)
    finally:
        plugins.unregister(name)
    reasons = {os.path.basename(s): why for s, why in report.skipped}
    assert "worker process died" in reasons["aa.crash"]
    assert report.files_read + report.files_skipped == 12 and report.files_read >= 1
    assert multiprocessing.active_children() == []
    consistent(index)
