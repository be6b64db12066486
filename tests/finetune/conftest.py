"""Fine-tuning tests: real SmolLM2 weights, a few steps, short sequences.

The data are ISO 3166 country codes from `pycountry` (its data come from Debian's
iso-codes, LGPL-2.1): "Reply with the code." / "France" -> "FRA". A short system prompt
keeps each example near 25 tokens, so a step is a second or two on 2 cores.
"""

from __future__ import annotations

import json

import pytest


def country_rows(n: int, offset: int = 0) -> list[dict]:
    import pycountry

    countries = sorted(pycountry.countries, key=lambda c: c.alpha_3)[offset : offset + n]
    return [{"messages": [{"role": "system", "content": "Reply with the code."},
                          {"role": "user", "content": c.name},
                          {"role": "assistant", "content": c.alpha_3}]} for c in countries]  # fmt: skip


@pytest.fixture
def codes_file(tmp_path):
    path = tmp_path / "codes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in country_rows(24)))
    return path


@pytest.fixture(autouse=True)
def finetune_dirs(tmp_path, monkeypatch):
    """Tuned models and runs go to this test's folder, never to the user's cache."""
    monkeypatch.setenv("LLM_MAGICS_FINETUNED", str(tmp_path / "finetuned"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield
    from llm_magics import registry

    registry.refresh()


#: Small, fast settings every training test shares (steps and the rest given per test).
FAST = dict(batch_size=4, eval_examples=2, max_new_tokens=4, learning_rate=1e-3, progress=False, verbose=False)


@pytest.fixture(scope="session")
def smollm2():
    """One loaded SmolLM2 for the tests that only read it (tokenizer, rendering)."""
    from llm_magics import models

    return models.load("smollm2-135m-instruct")
