"""``Index.add(engine="ray")`` and ``%ingest --engine ray``: loading, splitting and embedding
as a Ray Data pipeline on a real local Ray instance give the chunks, ids, vectors and skips of
the local engine, and the manifest keeps re-runs idempotent. Real loaders, the real MiniLM
embedder, a real Chroma.

Starting Ray takes 20-40 s on a busy 2-core machine, so the whole file shares one local
instance (the ingest reuses it, as it would a notebook's) and keeps to a few runs.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from IPython.core.error import UsageError

from llm_magics.ingest.index import KEY, Index
from llm_magics.testing import assert_same_embeddings

pytest.importorskip("ray.data", reason="the ray extra: pip install 'llm-magics[ray]'")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def ray_instance():
    """One local Ray instance (2 CPUs: a load+split actor and an embedding actor) for the session."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def folder(tmp_path, pdf_factory):
    """Good files of several kinds, and broken ones both engines must skip the same way."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, topic in enumerate(["Herons wade in shallow water", "Kettles boil water fast", "Comets orbit the sun"]):
        (folder / f"note{i}.md").write_text(f"# {topic}\n\n" + "\n\n".join(f"{topic}, paragraph {j}." for j in range(4)))
    (folder / "page.html").write_text("<html><title>Glaciers</title><body><h2>Ice</h2><p>Glaciers carve valleys.</p></body></html>")
    pdf_factory(folder / "birds.pdf", ["Kingfishers dive for fish", "Egrets nest in colonies"])
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\ntrailer\n<<>>\n%%EOF")
    (folder / "program.bin").write_bytes(bytes(range(256)) * 4)
    (folder / "empty.txt").write_text("")
    return folder


def records(index):
    return sorted(((r["id"], r["text"], r["metadata"][KEY]), r["vector"]) for r in index.store.get(vectors=True))


def test_ray_gives_the_local_chunks_vectors_and_skips_and_rerunning_adds_nothing(ray_instance, minilm, folder):
    local = Index(collection="local", store="chroma", embedder=minilm)
    on_ray = Index(collection="on-ray", store="chroma", embedder=minilm)
    r1 = local.add(str(folder), chunk_size=60, chunk_overlap=10)
    r2 = on_ray.add(str(folder), chunk_size=60, chunk_overlap=10, engine="ray")
    assert (r2.engine, r2.workers) == ("ray", 2) and "already started (reused" in r2.workers_note
    a, b = records(local), records(on_ray)
    assert [key for key, _ in a] == [key for key, _ in b] and len(a) > 10  # same ids, texts and sources
    assert_same_embeddings(np.stack([v for _, v in a]), np.stack([v for _, v in b]))
    # a broken file is reported exactly as in this process: same sources, order and reasons
    assert r2.skipped == r1.skipped and len(r1.skipped) == 3
    reasons = {os.path.basename(s): why for s, why in r2.skipped}
    assert "PDF" in reasons["corrupt.pdf"] and "binary" in reasons["program.bin"] and reasons["empty.txt"] == "empty file"
    assert (r2.files_read, r2.chunks_added, r2.chunks_embedded) == (r1.files_read, r1.chunks_added, r1.chunks_embedded)
    assert r2.embed_seconds > 0 and r2.load_seconds > 0
    assert on_ray.stats()["embedder"] == "all-minilm-l6-v2"  # the collection records the embedder Ray used

    # idempotent: the manifest decides in this process, so nothing is read, embedded or written again
    again = on_ray.add(str(folder), chunk_size=60, chunk_overlap=10, engine="ray")
    assert (again.files_read, again.chunks_added, again.chunks_removed, again.chunks_embedded) == (0, 0, 0, 0)
    assert again.files_unchanged == r1.files_read and again.skipped == r1.skipped
    # a changed file replaces its chunks, as locally
    (folder / "note1.md").write_text("# Kettles\n\nKettles whistle when the water boils.")
    changed = on_ray.add(str(folder), chunk_size=60, chunk_overlap=10, engine="ray")
    local.add(str(folder), chunk_size=60, chunk_overlap=10)
    assert changed.files_read == 1 and changed.chunks_removed > 0
    assert [key for key, _ in records(on_ray)] == [key for key, _ in records(local)]


def test_magic_engine_ray_and_bad_engines(ray_instance, ip, minilm, folder, capsys, monkeypatch):
    """The magic runs on Ray; wrong engines, options and a missing extra are UsageErrors with the fix."""
    ip.run_cell("%config LLMMagics.progress = False").raise_error()
    ip.run_cell(f"idx = %ingest {folder} --embedder all-minilm-l6-v2 --collection magic --engine ray --profile").raise_error()
    out = capsys.readouterr().out
    assert "5 file(s) read" in out and "3 skipped" in out
    assert "Profile (Ray Data, 2 CPUs" in out and "embed (all, summed)" in out and "wait for workers" in out
    assert ip.user_ns["idx"].last_report.engine == "ray"

    with pytest.raises(UsageError, match=r"No ingest engine 'nope'\. Known: local, ray"):
        ip.run_cell(f"%ingest {folder} --engine nope").raise_error()
    with pytest.raises(UsageError, match="--ray-address is for the Ray engine: add --engine ray"):
        ip.run_cell(f"%ingest {folder} --ray-address ray://head:10001").raise_error()
    with pytest.raises(UsageError, match="Drop --workers"):
        ip.run_cell(f"%ingest {folder} --engine ray --workers 2").raise_error()
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(UsageError, match=r"pip install 'llm-magics\[ray\]'"):
        ip.run_cell(f"%ingest {folder} --engine ray").raise_error()
