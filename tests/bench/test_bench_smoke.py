"""bench/bench_scale.py keeps working: its --smoke run (2k vectors, 20 queries, chroma only).

A benchmark is not a test: nothing here asserts a speed, only that the script runs end to end
and writes a report whose recall is sane.
"""

from __future__ import annotations

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
