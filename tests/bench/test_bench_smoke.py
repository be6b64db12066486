"""The benchmarks keep working: bench/bench_scale.py --smoke (2k vectors, 20 queries, chroma
only) and bench/bench_ingest.py --workers 2 --ray --smoke (one process, the pool and Ray on a
few files), both on a clean checkout where bench/corpora is not fetched.

A benchmark is not a test: nothing here asserts a speed, only that the script runs end to end
and writes a report whose recall is sane.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_bench_scale_smoke(tmp_path):
    out = tmp_path / "results.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_scale.py"), "--smoke", "--cache", str(tmp_path / "cache"), "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = out.read_text()
    assert "## 2,000 vectors" in report and "perturbed copies" in report
    rows = [line for line in report.splitlines() if line.startswith("| chroma |")]
    assert len(rows) == 2  # default and tuned search
    assert all(float(row.rstrip(" |").rsplit("|", 1)[1]) >= 0.8 for row in rows)  # recall@10 against exact search


def test_bench_ingest_engines_smoke(tmp_path):
    """One process, a pool of 2 and Ray ingest the same few files: a table with the three sides and their ratios."""
    pytest.importorskip("ray.data", reason="the ray extra: pip install 'llm-magics[ray]'")
    out = tmp_path / "engines.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_ingest.py"), "--workers", "2", "--ray", "--smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = out.read_text()
    assert "| measure | 1 process | 2 workers | Ray | 2 workers vs 1 process | Ray vs 1 process |" in report
    wall = next(line for line in report.splitlines() if line.startswith("| wall seconds (median) |"))
    cells = [c.strip() for c in wall.strip("|").split("|")][1:]
    assert all(float(c) > 0 for c in cells[:3]) and all(c.endswith("x") for c in cells[3:])
    assert "the same ids and texts on every side (asserted)" in report and "dtype " in report
    assert "**excluded** from the timed Ray runs: every one reports it reused the instance" in report
    assert "### Reading" in report


def test_bench_ingest_corpus_takes_doc_files_in_order_and_never_python(tmp_path):
    """--mb: after the corpora, files from the doc folder in sorted order, .gz unpacked, up to the size asked; no Python docs."""
    spec = importlib.util.spec_from_file_location("bench_ingest", ROOT / "bench" / "bench_ingest.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    doc = tmp_path / "doc"
    for package, name, size in [("apt", "README", 300), ("bash", "NEWS.gz", 400), ("python3.11", "README", 900), ("zsh", "FAQ.html", 500), ("zsh", "logo.png", 50)]:
        (doc / package).mkdir(parents=True, exist_ok=True)
        data = f"{package} {name}\n".encode() * (size // 10)
        (doc / package / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    (doc / "python-is-python3").symlink_to(doc / "apt")  # a symlinked package folder is a copy, never read
    assert [p.relative_to(doc).as_posix() for p in bench.doc_files(doc)] == ["apt/README", "bash/NEWS.gz", "zsh/FAQ.html"]
    args = argparse.Namespace(corpora="", smoke=False, mb=0.0006)  # 600 bytes: apt and bash
    folder, text = bench.engines_corpus(args, tmp_path / "work", doc_root=doc)
    assert sorted(p.name for p in folder.iterdir()) == ["doc-apt__README", "doc-bash__NEWS"]
    assert (folder / "doc-bash__NEWS").read_text().startswith("bash NEWS.gz")  # unpacked
    assert "2 files" in text and "python" in text
