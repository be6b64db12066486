"""%llm size: parameter counts and memory from the architecture."""

from __future__ import annotations

import pytest

from llm_magics import sizing
from llm_magics.errors import UsageError


def test_gpt3_is_175b_and_700gb_in_fp32():
    report = sizing.size(n_layer=96, n_head=96, head_dim=128, vocab_size=50257, n_ctx=2048)
    assert 174.5e9 < report.total < 175.5e9
    assert report.bytes("fp32") == pytest.approx(700e9, rel=0.01)
    assert report.bytes("fp16") == pytest.approx(350e9, rel=0.01)
    assert sizing.size("gpt3").total == report.total


def test_gpt2_small_matches_the_checkpoint():
    assert sizing.size("gpt2").total == 124_439_808  # GPT2LMHeadModel, tied head


def test_smollm2_matches_the_checkpoint():
    assert sizing.size("smollm2-135m").total == 134_515_008  # LlamaForCausalLM, tied head


def test_missing_dimensions_say_what_to_pass():
    with pytest.raises(UsageError, match="--layers, --heads and --head-dim"):
        sizing.size(n_layer=2)
    with pytest.raises(UsageError, match="No preset 'gpt9'"):
        sizing.size("gpt9")
