"""The fastest decode path (dtype="q4": llama.cpp's blocks in a C kernel) and the thread policy.

q4 keeps the GGUF's own 4-bit and 8-bit blocks and float32 activations when decoding, so
its greedy tokens should be the float32 path's (the prefill's matmuls run in bfloat16 on a
CPU with bf16 units; the greedy test checks both prefills). The threshold below is what the quantization allows
honestly: every token equal for 32 tokens on each prompt (measured: all equal on these and
four other prompts; only the order of float32 additions differs, which could flip a near tie).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from llm_magics.runtime import kernels, threads

pytestmark = pytest.mark.skipif(not kernels.available(), reason="no C compiler for the q4 kernel")

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n",
]


@pytest.fixture(scope="module")
def smollm_q4(smollm):
    from llm_magics import runtime

    return runtime.load(smollm.path, dtype="q4")


def test_kernel_products_equal_float32_matmul_on_the_dequantized_weights():
    torch.manual_seed(0)
    w = torch.randn(96, 64)
    codes, scales, mins = kernels.pack_q4(w)
    w4 = kernels.q4_dequantize(codes, scales, mins, 1)
    codes8, scales8 = kernels.pack_q8(w)
    w8 = kernels.q8_dequantize(codes8, scales8, 1)
    assert (w4 - w).abs().max() <= (w.amax() - w.amin()) / 15  # 4 bits: within one step of the block
    assert (w8 - w).abs().max() <= w.abs().max() / 127
    for rows in (1, 3):
        x = torch.randn(rows, 64)
        for threads_ in (1, 2):
            got4 = kernels.q4_matmul(x, codes, scales, mins, threads_)
            got8 = kernels.q8_matmul(x, codes8, scales8, threads_)
            assert torch.allclose(got4, x @ w4.T, rtol=1e-5, atol=1e-5)
            assert torch.allclose(got8, x @ w8.T, rtol=1e-5, atol=1e-5)


def test_bf16_dequantization_rounds_like_torch():
    torch.manual_seed(1)
    w = torch.randn(64, 96) * torch.logspace(-3, 2, 96)  # magnitudes across the exponent range
    codes, scales, mins = kernels.pack_q4(w)
    codes8, scales8 = kernels.pack_q8(w)
    for threads_ in (1, 2):
        w4 = kernels.q4_dequantize(codes, scales, mins, threads_, torch.bfloat16)
        w8 = kernels.q8_dequantize(codes8, scales8, threads_, torch.bfloat16)
        assert w4.dtype == w8.dtype == torch.bfloat16
        assert torch.equal(w4, kernels.q4_dequantize(codes, scales, mins, 1).to(torch.bfloat16))  # nearest even, as torch
        assert torch.equal(w8, kernels.q8_dequantize(codes8, scales8, 1).to(torch.bfloat16))
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        kernels.q8_dequantize(codes8, scales8, 1, torch.float16)


def test_prefill_dtype_of_a_q4_layer(smollm_q4):
    from llm_magics.runtime import quantize

    layer = smollm_q4.module.blocks[0].mlp.down
    x = torch.randn(7, layer.in_features)  # 7 rows: more than the kernel's, so a prefill matmul
    exact = torch.nn.functional.linear(x, layer.dequantize(1))
    try:
        assert quantize.set_prefill(smollm_q4.module, "float32") == 30 * 4 + 1  # every q4/q8 layer
        assert torch.allclose(layer(x), exact, rtol=1e-5, atol=1e-5)
        quantize.set_prefill(smollm_q4.module, "bfloat16")
        got = layer(x)
        assert got.dtype == torch.float32 and not torch.equal(got, exact)
        assert torch.equal(got, torch.nn.functional.linear(x.bfloat16(), layer.dequantize(1).bfloat16()).float())
        assert (got - exact).abs().max() <= 0.02 * exact.abs().max()
        with pytest.raises(ValueError, match="Choose one of: float32, bfloat16, auto"):
            quantize.set_prefill(smollm_q4.module, "fp16")
    finally:
        quantize.set_prefill(smollm_q4.module, "auto")
    assert layer.prefill_dtype == (torch.bfloat16 if quantize.native_bf16() else torch.float32)


def test_gguf_blocks_are_kept_exactly(smollm, smollm_q4):
    """SmolLM2's Q4_1 matrices become q4 and its Q8_0 embedding q8, with the float32 path's weights."""
    kinds = {name: m.kind for name, m in smollm_q4.module.named_modules() if hasattr(m, "kind")}
    assert kinds["unembed"] == "q8"
    assert {kinds[f"blocks.0.{n}"] for n in ("attn.qkv", "attn.out", "mlp.gate_up", "mlp.down")} == {"q4"}
    ours = smollm_q4.module.blocks[3].mlp.down.dequantize(1)
    ref = smollm.module.blocks[3].mlp.down.weight
    assert (ours - ref).abs().max() <= 1e-6 * ref.abs().max()


@pytest.mark.slow
@pytest.mark.parametrize("prefill", ["float32", "auto"])  # auto: bfloat16 matmuls on a CPU with bf16 units
def test_q4_greedy_tokens_equal_float32(smollm, smollm_q4, prefill):
    from llm_magics.runtime import quantize

    quantize.set_prefill(smollm_q4.module, prefill)
    for prompt in PROMPTS:
        ref = smollm.generate(prompt, max_new_tokens=32, stop_token_ids=[], stream=True, threads=1)
        ref.read()
        got = smollm_q4.generate(prompt, max_new_tokens=32, stop_token_ids=[], stream=True, threads=1)
        got.read()
        assert got.token_ids == ref.token_ids, prompt


def test_free_cores_arithmetic():
    """(busy ticks, all ticks, own ticks) snapshots -> free cores, on 2 CPUs over 100 ticks each."""
    quiet = threads._free((0, 0, 0), (10, 200, 0), 2)  # others used 0.1 of a core
    neighbour = threads._free((0, 0, 0), (100, 200, 0), 2)  # one core fully busy
    ours_only = threads._free((0, 0, 0), (190, 200, 190), 2)  # we used both; nobody else did
    shared = threads._free((0, 0, 0), (200, 200, 140), 2)  # we got 1.4 cores, a neighbour 0.6
    assert (quiet, neighbour, ours_only, shared) == (2, 1, 2, 1)


def test_thread_policy_leaves_a_busy_core_alone():
    cores = threads.usable_cores()
    if len(cores) < 2:
        pytest.skip("needs at least 2 usable cores")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it get going
        chosen = threads.choose_threads(interval=0.2)
        governor = threads.ThreadGovernor("auto", interval=0.2)
    finally:
        busy.kill()
        busy.wait()
    assert 1 <= chosen <= len(cores) - 1
    assert 1 <= governor.threads() <= len(cores) - 1


def test_generation_reports_its_threads(smollm_q4):
    fixed = smollm_q4.generate("Hello", max_new_tokens=3, stop_token_ids=[], stream=True, threads=1)
    fixed.read()
    auto = smollm_q4.generate("Hello", max_new_tokens=3, stop_token_ids=[], stream=True)
    auto.read()
    assert fixed.timings["threads"] == [1]
    assert all(1 <= n <= len(threads.usable_cores()) for n in auto.timings["threads"])
    assert auto.token_ids == fixed.token_ids  # each output row is summed by one thread: the count cannot change it
    assert torch.get_num_threads() == 2  # restored after each step (the session fixture set 2)
