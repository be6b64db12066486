"""The main job and the demo notebooks, run for real: a subprocess and a real kernel (nbclient)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "demo_notebooks").glob("*.ipynb"))
# The learning road's notebooks (issue 12) train and load models: slow, all together under 10 minutes on 2 cores.
ROAD = {"00_road_map", "03_rnn_lstm", "04_embeddings_positions", "05_attention", "06_blocks_and_decoding", "07_scale", "08_finetune", "09_failure_modes"}


def test_the_demo_ingests_and_answers_its_three_questions_offline_with_sources(tmp_path):
    """`python -m llm_magics.demo`, as `make demo` runs it, with no network and the default settings:
    each of its three questions answered right, from the document that says it, and no more than that."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", "NO_PROXY": "*", "HTTPS_PROXY": "http://127.0.0.1:9"}
    out = subprocess.run(
        [sys.executable, "-m", "llm_magics.demo", "--store-path", str(tmp_path / "store")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    answers = {}  # question -> (the answer line, the label of the source its last [n] cites)
    for block in out.stdout.split("Q: ")[1:]:
        question, rest = block.split("\n", 1)
        line, *labels = rest.split("A: ", 1)[1].splitlines()
        cites = re.findall(r"\[(\d+)\]", line)
        cited = next((label for label in labels if cites and label.strip().startswith(f"[{cites[-1]}]")), "")
        answers[question.strip()] = (line, cited)
    badge, source = answers["Who gives out access badges, and where?"]
    assert "Marta Ruiz" in badge and "B214" in badge and "handbook.md" in source, (badge, source)
    heron, source = answers["How many nodes does the Heron GPU cluster have?"]
    assert ("8" in heron or "eight" in heron.lower()) and "cluster.html" in source, (heron, source)
    laser, source = answers["Who gives the laser safety training?"]
    assert "Okafor" in laser and "safety.pdf" in source, (laser, source)
    assert "drill" not in laser.lower(), laser  # not the neighbouring sentence's fire drills


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in ROAD else p for p in NOTEBOOKS], ids=[p.name for p in NOTEBOOKS])
def test_demo_notebook_runs(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    # 08 trains for 40 steps by default; 30 still shows the gain it asserts (+0.19 exact match at 20)
    # and keeps all the notebooks together under 10 minutes on 2 cores. The kernel inherits it.
    monkeypatch.setenv("LLM_MAGICS_FINETUNE_STEPS", "30")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
