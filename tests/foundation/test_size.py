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


# ─── training arithmetic, against published figures ────────────────────────────


def test_gpt3_training_compute_matches_the_paper():
    report = sizing.size("gpt3")  # 300B tokens by default
    assert report.tokens == 300e9
    assert report.training_flops() == pytest.approx(3.14e23, rel=0.01)  # GPT-3 paper, table D.1
    assert report.petaflop_days() == pytest.approx(3640, rel=0.01)  # "3.64E+03 petaflop/s-days"
    assert "3.14e+23 FLOPs" in report.table()


def test_published_parameter_counts_of_other_models():
    assert sizing.size("llama2-7b").total == 6_738_415_616  # Llama-2-7b-hf, "6.74B"
    assert sizing.size("llama2-70b").total == 68_976_648_192  # Llama-2-70b-hf, grouped-query attention
    assert sizing.size("gpt2-xl").total == 1_557_611_200  # GPT-2 1.5B
    assert sizing.size("llama3-8b").total == 8_030_261_248  # Meta-Llama-3-8B, "8.03B"


def test_llama2_training_arithmetic():
    report = sizing.size("llama2-7b")
    assert report.tokens == 2e12  # "trained on 2.0T tokens"
    assert report.training_flops() == pytest.approx(6 * 6.74e9 * 2e12, rel=0.01)  # 8.1e22
    # its KV cache: 2 · 32 layers · 4096 · 2 bytes = 0.5 MiB per token in fp16
    assert report.kv_cache_per_token("fp16") == 524_288
    # grouped-query attention: 8 kv heads of 64 query heads -> 8× smaller
    assert sizing.size("llama2-70b").kv_cache_per_token("fp16") == 2 * 80 * 8 * 128 * 2


def test_adam_needs_16_bytes_per_parameter():
    # ZeRO (Rajbhandari et al. 2020): a 7.5B model trained with mixed-precision Adam holds 120 GB of model states
    report = sizing.size(n_layer=32, n_head=32, head_dim=128, vocab_size=32000, n_ctx=4096)
    assert report.training_bytes("mixed") == 16 * report.total
    assert report.training_bytes("fp32") == 16 * report.total
    assert 16 * 7.5e9 == pytest.approx(120e9)
    assert sizing.size("gpt3").training_bytes("mixed") == pytest.approx(2.79e12, rel=0.01)


def test_training_time_on_given_gpus():
    report = sizing.size("gpt3", gpus=1024, mfu=0.5, gpu_flops="312T")
    expected = 6 * report.total * 300e9 / (1024 * 312e12 * 0.5)
    assert report.training_seconds() == pytest.approx(expected)
    assert "Time on 1,024 GPUs × 312 TFLOP/s at 50% utilisation" in report.table()
    half = sizing.size("gpt3", gpus=2048, mfu=0.5, gpu_flops=312e12)
    assert half.training_seconds() == pytest.approx(report.training_seconds() / 2)


def test_tokens_option_and_mistakes():
    assert sizing.size("gpt3", tokens="1.4T").tokens == 1.4e12
    assert sizing.size("gpt2").training_flops() is None  # no published token count
    assert "pass --tokens" in sizing.size("gpt2").table()
    assert sizing.size("gpt2", tokens="10B").training_flops() == pytest.approx(6 * 124_439_808 * 10e9)
    with pytest.raises(UsageError, match="--tokens 'lots' is not a number"):
        sizing.size("gpt3", tokens="lots")
    with pytest.raises(UsageError, match="--mfu a fraction"):
        sizing.size("gpt3", mfu=40)


def test_llm_size_magic_prints_training_compute(ip, capsys):
    report = ip.run_cell("%llm size gpt3 --gpus 2048 --mfu 0.4").result
    assert report.hardware.gpus == 2048
    assert "3.14e+23 FLOPs" in report.table()
    custom = ip.run_cell("%llm size --layers 2 --heads 2 --head-dim 8 --vocab 100 --context 16 --tokens 1M").result
    assert custom.training_flops() == pytest.approx(6 * custom.total * 1e6)
    ip.run_cell("%llm size gpt3 --tokens lots")
    assert "is not a number" in capsys.readouterr().err
