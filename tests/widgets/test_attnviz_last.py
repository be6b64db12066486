"""%attnviz --last after a real %%ask: the local model's captured attention, per source."""

from __future__ import annotations

import numpy as np
import pytest

from llm_magics.demo import DATA


@pytest.fixture
def asked(tmp_path, monkeypatch):
    """A real shell that ingested the demo documents and asked SmolLM2 one question."""
    from IPython.core.interactiveshell import InteractiveShell

    from llm_magics import config

    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext llm_magics").raise_error()
    try:
        shell.run_cell(f"%ingest {DATA} --recursive --store memory --collection attnviz-last -o idx").raise_error()
        shell.run_cell("%%ask --index idx --k 2 --max-tokens 24 -o answer\nWho gives the laser safety training?").raise_error()
        yield shell
    finally:
        shell.run_cell("%unload_ext llm_magics")
        config.use(None)


def test_last_shows_attention_from_answer_tokens_to_sources(asked):
    answer = asked.user_ns["answer"]
    assert answer.extras.get("attention") is not None, "the local backend captures attention by default"
    widget = asked.run_cell("%attnviz --last -o g").result
    assert type(widget).__name__ == "GroundingWidget" and asked.user_ns["g"] is widget

    n_tokens, n_sources = len(widget.answer_tokens), len(widget.sources)
    assert n_tokens == answer.usage.completion_tokens or n_tokens > 0
    assert n_sources == len([s for s in answer.sources])
    matrix = np.frombuffer(widget.matrix, dtype="<f4")
    matrix = matrix.reshape(n_tokens, n_sources)
    assert np.all(matrix >= 0) and np.all(matrix.sum(axis=1) <= 1.0 + 1e-3)
    assert matrix.sum() > 0  # the answer did look at its sources
    labels = " ".join(s["label"] for s in widget.sources)
    assert "safety.pdf" in labels


def test_only_the_newest_answer_keeps_its_attention(asked):
    first = asked.user_ns["answer"]
    asked.run_cell("%%ask --index idx --k 2 --max-tokens 8 -o second\nHow many nodes does Heron have?").raise_error()
    assert "attention" not in first.extras
    assert asked.user_ns["second"].extras.get("attention") is not None


def test_ask_then_attnviz_share_one_loaded_smollm2(tmp_path, monkeypatch):
    """%%ask, %attnviz --last and %attnviz --model smollm2 use the one loaded-model cache."""
    from IPython.core.interactiveshell import InteractiveShell

    from llm_magics import config, models
    from llm_magics.models import cache

    key = (str(models.resolve("smollm2").path), "float32")
    cache.unload("smollm2")
    before = cache.loads[key]
    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext llm_magics").raise_error()
    try:
        shell.run_cell(f"%ingest {DATA} --recursive --store memory --collection attnviz-once -o idx").raise_error()
        shell.run_cell("%%ask --index idx --k 2 --max-tokens 8 -o answer\nWho gives the laser safety training?").raise_error()
        shell.run_cell("%attnviz --last -o g").raise_error()
        shell.run_cell('%attnviz "The cat sat on the mat" --model smollm2 -o w').raise_error()
        assert cache.loads[key] == before + 1, "SmolLM2 was loaded more than once"
        assert cache.loaded().count(key) == 1
        shell.run_cell("%llm unload smollm2").raise_error()
        assert key not in cache.loaded()
    finally:
        shell.run_cell("%unload_ext llm_magics")
        config.use(None)
