"""The fastest decode path (dtype="q4": llama.cpp's blocks in a C kernel) and the thread policy.

q4 keeps the GGUF's own 4-bit and 8-bit blocks and float32 activations when decoding, so
its greedy tokens should be the float32 path's (the prefill's matmuls run in bfloat16 on a
CPU with bf16 units; the greedy test checks both prefills). The threshold below is what the quantization allows
honestly: every token equal for 32 tokens on each prompt (measured: all equal on these and
four other prompts; only the order of float32 additions differs, which could flip a near tie).
`set_decode(model, "int8")` rounds the activations to int8 blocks instead (llama.cpp's way): its
products are checked against the same rounding done in torch, its tokens against a measured floor.
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


def gguf_like_blocks(rows: int, cols: int, codes: range, seed: int) -> torch.Tensor:
    """Weights as a GGUF block format leaves them: d * q + m per block of 32, with integer codes drawn
    from `codes` (real blocks seldom use the first and last code). With more than 16 codes a Q5_0 block:
    a float16 d, negative for about half the blocks as llama.cpp's, and m = -16 d. Else a Q4_K block:
    d and -m are a float16 (one per row here, per 256 weights in the file) times a 6-bit integer per
    block, so neither need be a float16 itself."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(codes.start, codes.stop, (rows, cols // 32, 32), generator=g).float()
    if len(codes) > 16:
        sign = torch.randint(0, 2, (rows, cols // 32, 1), generator=g) * 2 - 1
        d = ((torch.rand(rows, cols // 32, 1, generator=g) * 0.01 + 1e-3) * sign).half().float()
        m = -16 * d
    else:
        super_d, super_m = ((torch.rand(2, rows, 1, 1, generator=g) + 0.1) * 1e-4).half().float()
        d = super_d * torch.randint(1, 64, (rows, cols // 32, 1), generator=g)
        m = -super_m * torch.randint(0, 64, (rows, cols // 32, 1), generator=g)
    return (d * q + m).reshape(rows, cols)


def test_exact_packing_finds_each_blocks_step():
    """pack_exact holds Q5_0-like blocks as q5 with float16 scales and Q4_K-like blocks (codes 1..14:
    min/max scaling gets their step wrong) as q4 with float32 ones, both exactly; weights from no
    block format are refused."""
    q5_weights = gguf_like_blocks(40, 96, range(2, 30), 0)
    kind, codes, scales, mins = kernels.pack_exact(q5_weights)
    assert kind == "q5" and codes.shape == (40, 3 * 20)
    assert scales.dtype == mins.dtype == torch.float16  # Q5_0's float16 d, and a minimum moved to a float16
    assert torch.equal(kernels.q5_dequantize(codes, scales, mins, 1), q5_weights)
    full = gguf_like_blocks(40, 96, range(32), 2)  # codes fill 0..31: a negative d's block spans -15 |d| .. 16 |d|
    kind, codes, scales, mins = kernels.pack_exact(full)
    assert kind == "q5" and scales.dtype == torch.float16 and (scales < 0).any()  # counted down from 16 |d|
    assert torch.equal(kernels.q5_dequantize(codes, scales, mins, 1), full)
    q4_weights = gguf_like_blocks(40, 96, range(1, 15), 1)
    codes4, scales4, mins4 = kernels.pack_q4(q4_weights)
    assert (kernels.q4_dequantize(codes4, scales4, mins4, 1) - q4_weights).abs().max() > 1e-4  # min/max: wrong step
    kind, codes, scales, mins = kernels.pack_exact(q4_weights)
    assert kind == "q4" and scales.dtype == mins.dtype == torch.float32  # Q4_K's scales are no float16s
    assert torch.allclose(kernels.q4_dequantize(codes, scales, mins, 1), q4_weights, rtol=0, atol=1e-7)
    few_codes = q4_weights.clone()
    few_codes[0, :32] = 0.01 * torch.tensor([0.0, 7, 15] * 10 + [0, 7]) - 0.02  # smallest gap: 7 steps
    kind, codes, scales, mins = kernels.pack_exact(few_codes)
    assert kind == "q4"
    assert torch.allclose(kernels.q4_dequantize(codes, scales, mins, 1), few_codes, rtol=0, atol=1e-7)
    assert kernels.pack_exact(torch.randn(40, 96)) is None


def test_q5_products_and_dequantization():
    """q5 products with float32 activations equal a float32 matmul on the weights; with int8 activations
    they equal the same rounding done in torch; the bf16 dequantization rounds as torch does."""
    from llm_magics.runtime.quantize import BlockQuantLinear

    w = gguf_like_blocks(64, 160, range(32), 5)  # 5 blocks per row: the pairs and a lone block
    linear = torch.nn.Linear(160, 64, bias=False)
    linear.weight.data.copy_(w)
    layer = BlockQuantLinear(linear)
    assert layer.kind == "q5" and torch.equal(layer.dequantize(1), w)
    assert torch.equal(layer.dequantize(2, torch.bfloat16), w.to(torch.bfloat16))
    torch.manual_seed(6)
    for rows in (1, 3):
        x = torch.randn(rows, 160)
        for threads_ in (1, 2):
            got = kernels.q5_matmul(x, layer.codes, layer.scales, layer.mins, threads_)
            assert torch.allclose(got, x @ w.T, rtol=1e-5, atol=1e-5)
            got = kernels.q5_matmul_q8x(x, layer.codes, layer.scales, layer.mins, threads_)
            ref = int8_activation_reference(x, layer.kind, w, layer.mins)
            assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5 * ref.abs().max())
        assert torch.allclose(layer(x), x @ w.T, rtol=1e-5, atol=1e-5)


def llama_q5_0(w: torch.Tensor) -> torch.Tensor:
    """W as llama.cpp's quantize_row_q5_0 leaves it: per block of 32, d = max / -16 for the weight of
    largest magnitude (stored as float16), codes min(31, int(x / d + 16.5)), weights d * (q - 16)."""
    N, K = w.shape
    blocks = w.reshape(N, K // 32, 32)
    top = blocks.gather(-1, blocks.abs().argmax(-1, keepdim=True))
    d = top / -16
    inverse = torch.where(d == 0, torch.zeros_like(d), 1 / d)
    q = (blocks * inverse + 16.5).trunc().clamp(max=31)
    return (d.half().float() * (q - 16)).reshape(N, K)


def test_q5_0_matrices_are_stored_without_mins():
    """Q5_0's blocks are symmetric (m = -16 d), so BlockQuantLinear keeps no mins for them: the
    products, with float32 and int8 activations, and the dequantized weights are bit for bit those
    of the same codes and scales with the mins -16 d stored."""
    from llm_magics.runtime.quantize import BlockQuantLinear

    torch.manual_seed(8)
    for cols in (32, 160, 896):  # one block; pairs and a lone block; Qwen's rows
        w = llama_q5_0(torch.randn(48, cols))
        linear = torch.nn.Linear(cols, 48, bias=False)
        linear.weight.data.copy_(w)
        layer = BlockQuantLinear(linear)
        assert layer.kind == "q5" and layer.mins.numel() == 0 and layer.scales.dtype == torch.float32
        assert torch.equal(layer.dequantize(1), w) and torch.equal(layer.dequantize(2, torch.bfloat16), w.to(torch.bfloat16))
        codes, scales = kernels.pack_q5_0(w)
        stored = -16 * scales  # float16, exact
        assert torch.equal(kernels.q5_dequantize(codes, scales, stored, 1), w)
        for rows in (1, 3):
            x = torch.randn(rows, cols)
            for threads_ in (1, 2):
                for half in (scales, scales.float()):
                    mins = stored.to(half.dtype)
                    assert torch.equal(kernels.q5_matmul(x, codes, half, None, threads_),
                                       kernels.q5_matmul(x, codes, half, mins, threads_))  # fmt: skip
                    got = kernels.q5_matmul_q8x(x, codes, half, None, threads_)
                    assert torch.equal(got, kernels.q5_matmul_q8x(x, codes, half, mins, threads_))
                    ref = int8_activation_reference(x, "q5", w, stored.float())
                    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5 * ref.abs().max())
            exact = x @ w.T
            assert torch.allclose(layer(x), exact, rtol=1e-5, atol=1e-5 * exact.abs().max())
    assert kernels.pack_q5_0(torch.randn(4, 64)) is None  # float weights: no Q5_0 step holds them
    assert kernels.pack_q5_0(gguf_like_blocks(8, 64, range(2, 30), 0)) is None  # codes 2..29: not Q5_0's rounding


def int8_activation_reference(x, kind: str, w, mins):
    """What the *_q8x products compute, in torch and in w's dtype: x rounded to int8 blocks
    (kernels.quantize_activations), times the codes' integer weights (w (N, K) less each block's
    minimum), plus (q4, q5) each block's minimum times the sum of the original x."""
    M, K = x.shape
    xq, dx = kernels.quantize_activations(x)
    rounded = (xq.to(w.dtype).view(M, K // 32, 32) * dx.to(w.dtype)[..., None]).view(M, K)  # (M, K)
    if kind == "q8":
        return rounded @ w.T
    mins = mins.to(w.dtype)  # (N, K/32)
    return rounded @ (w - mins.repeat_interleave(32, dim=1)).T + x.to(w.dtype).view(M, K // 32, 32).sum(-1) @ mins.T


def packed(kind: str, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes, scales, mins) of W as BlockQuantLinear packs a `kind` matrix; mins empty for q8."""
    if kind == "q4":
        return kernels.pack_q4(w)
    if kind == "q8":
        return (*kernels.pack_q8(w), torch.empty(0))
    found, codes, scales, mins = kernels.pack_exact(w)
    assert found == kind
    return codes, scales, mins


def block_codes(kind: str, codes: torch.Tensor, nblocks: int) -> torch.Tensor:
    """The integer codes q (N, nblocks, 32) of packed blocks, unpacked in torch (blockq.c's layouts)."""
    N = codes.shape[0]
    if kind == "q8":
        return codes.view(N, nblocks, 32).long()
    block = codes.view(N, nblocks, -1).long()  # (N, nblocks, 16 or 20 bytes)
    q = torch.cat([block[..., :16] & 0xF, block[..., :16] >> 4], dim=-1)  # byte j: q[j] and q[j + 16]
    if kind == "q5":
        bits = (block[..., 16:20, None] >> torch.arange(8)) & 1  # (N, nblocks, 4, 8): bit j of a little-endian uint32
        q = q | bits.reshape(N, nblocks, 32) << 4
    return q


def reference_weights(kind: str, codes, scales, mins) -> torch.Tensor:
    """W (N, K) in float64, d * q + m per block, from the codes and scales unpacked in torch."""
    N, nblocks = scales.shape
    w = scales.double()[..., None] * block_codes(kind, codes, nblocks)  # (N, nblocks, 32)
    if kind != "q8":
        w = w + mins.double()[..., None]
    return w.view(N, nblocks * 32)


@pytest.mark.parametrize("kind", ["q4", "q5", "q8"])
def test_float16_scales_in_every_product(kind):
    """Every product and dequantization reads float16 scales and mins (as packed) and float32 ones
    (the same values) alike. Against the weights unpacked in float64: dequantization is d * q + m
    rounded once to float32 (d * q is exact: an 11-bit float16 times a code), products with float32
    activations are x @ Wᵀ to float rounding, and with int8 activations the same rounding of x done in
    float64. Both storages give identical results: each float16 scale becomes its float32 where it is used."""
    g = torch.Generator().manual_seed(8)
    N, K = 48, 21 * 32  # 21 blocks: mins 16 (or 8) at a time and the rest; blocks four at a time and a lone one
    w = gguf_like_blocks(N, K, range(32), 8) if kind == "q5" else torch.randn(N, K, generator=g)
    codes, scales, mins = packed(kind, w)
    assert scales.dtype == torch.float16 and (kind == "q8" or mins.dtype == torch.float16)
    exact = reference_weights(kind, codes, scales, mins)  # (N, K) float64
    dequantize = getattr(kernels, f"{kind}_dequantize")
    matmul, matmul_q8x = getattr(kernels, f"{kind}_matmul"), getattr(kernels, f"{kind}_matmul_q8x")
    xs = [torch.randn(rows, K, generator=g) for rows in (1, 3)]
    results = {}
    for dtype in (torch.float16, torch.float32):
        weights = (codes, scales.to(dtype)) + (() if kind == "q8" else (mins.to(dtype),))
        for threads_ in (1, 2):
            assert torch.equal(dequantize(*weights, threads_), exact.float())
            assert torch.equal(dequantize(*weights, threads_, torch.bfloat16), exact.float().bfloat16())
            for x in xs:
                got, ref = matmul(x, *weights, threads_), x.double() @ exact.T
                assert (got - ref).abs().max() <= 1e-5 * ref.abs().max(), (dtype, threads_, len(x))
                got_q8x, ref = matmul_q8x(x, *weights, threads_), int8_activation_reference(x.double(), kind, exact, mins)
                assert (got_q8x - ref).abs().max() <= 1e-5 * ref.abs().max(), (dtype, threads_, len(x))
                results.setdefault((threads_, len(x)), []).append((got, got_q8x))
    for (half_float, half_int8), (float_float, float_int8) in results.values():
        assert torch.equal(half_float, float_float) and torch.equal(half_int8, float_int8)


def test_scales_are_float16_where_that_holds_every_weight():
    """A layer keeps the blocks it is given: float16 scales for weights from Q4_1, Q5_0 and Q8_0 blocks
    (as the file stores them), float32 for Q4_K blocks (a float16 times a 6-bit sub-scale), each
    weight exact either way. Float weights (no block format: 8-bit blocks) get float16 scales."""
    from llm_magics.runtime.quantize import BlockQuantLinear

    torch.manual_seed(9)
    float_weights = torch.randn(64, 96)
    q4_1 = kernels.q4_dequantize(*kernels.pack_q4(float_weights), 1)
    q8_0 = kernels.q8_dequantize(*kernels.pack_q8(float_weights), 1)
    cases = [  # weights, kind, scales' dtype, exact
        (q4_1, "q4", torch.float16, True),
        (gguf_like_blocks(64, 96, range(32), 10), "q5", torch.float16, True),
        (q8_0, "q8", torch.float16, True),
        (gguf_like_blocks(64, 96, range(1, 15), 11), "q4", torch.float32, True),
        (float_weights, "q8", torch.float16, False),
    ]
    for i, (w, kind, dtype, exact) in enumerate(cases):
        linear = torch.nn.Linear(96, 64, bias=False)
        linear.weight.data.copy_(w)
        layer = BlockQuantLinear(linear)
        assert (layer.kind, layer.half_scales) == (kind, dtype == torch.float16), i
        for int8 in (True, False):  # stored as float16 for the int8-activation products only
            layer.decode_int8 = int8
            stored = dtype if int8 else torch.float32
            assert layer.scales.dtype == stored and (kind == "q8" or layer.mins.dtype == stored), (i, int8)
            if exact:
                assert torch.allclose(layer.dequantize(1), w, rtol=0, atol=1e-7), (i, int8)


def test_int8_activation_products_match_torch(smollm_q4):
    torch.manual_seed(2)
    module = smollm_q4.module
    for layer in (module.blocks[0].mlp.down, module.blocks[5].attn.qkv, module.unembed):  # q4, q4, q8
        for rows in (1, 3):
            x = torch.randn(rows, layer.in_features)
            ref = int8_activation_reference(x, layer.kind, layer.dequantize(1), layer.mins)
            exact = x @ layer.dequantize(1).T
            for threads_ in (1, 2):
                if layer.kind == "q4":
                    got = kernels.q4_matmul_q8x(x, layer.codes, layer.scales, layer.mins, threads_)
                else:
                    got = kernels.q8_matmul_q8x(x, layer.codes, layer.scales, threads_)
                assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5 * ref.abs().max()), (layer.kind, rows, threads_)
            assert (got - exact).abs().max() <= 0.02 * exact.abs().max()  # rounding x costs little


def test_activation_rounding():
    """Per block of 32: scale amax/127, codes in -127..127, each within half a step of x; an all-zero block stays 0."""
    torch.manual_seed(3)
    x = torch.randn(2, 96) * torch.logspace(-3, 2, 96)
    x[1, 32:64] = 0
    xq, dx = kernels.quantize_activations(x)
    assert xq.abs().max() == 127 and dx[1, 1] == 0 and not xq[1, 32:64].any()
    assert ((xq.float().view(2, 3, 32) * dx[..., None]).view(2, 96) - x).abs().le(dx.repeat_interleave(32, 1) / 2 + 1e-12).all()


@pytest.mark.parametrize("build", ["portable", "avx2"])
def test_portable_and_avx2_builds_compute_what_the_native_one_does(build, tmp_path, monkeypatch):
    """blockq.c's plain-C branch (built without -march=native, float16 scales converted in C) and its
    AVX2 branch (where the CPU has AVX2, FMA and F16C) compute the same sums as this machine's build:
    every product, float32 and int8 activations, float16 and float32 scales, agrees to float rounding,
    and every float16 value (subnormals, infinities, NaNs) widens as torch widens it."""
    import ctypes
    import shutil

    flags = {"portable": [], "avx2": ["-mavx2", "-mfma", "-mf16c"]}[build]
    if build == "avx2" and not {"avx2", "fma", "f16c"} <= set(kernels._cpu_flags().split()):
        pytest.skip("the CPU has no AVX2, FMA or F16C")
    compiler = shutil.which("gcc") or shutil.which("cc")
    built = tmp_path / f"blockq_{build}.so"
    subprocess.run([compiler, "-O2", *flags, "-fopenmp", "-shared", "-fPIC", "-o", str(built), *map(str, kernels.SOURCES), "-lm"], check=True)
    lib = ctypes.CDLL(str(built))
    kernels._declare(lib)
    assert lib.q8x_native() == (build == "avx2")
    torch.manual_seed(4)
    x = torch.randn(2, 21 * 32)  # 21 blocks: mins 16 (or 8) at a time and the rest; a lone block
    weights = {"q4": torch.randn(64, 21 * 32), "q5": gguf_like_blocks(64, 21 * 32, range(32), 7), "q8": torch.randn(64, 21 * 32)}
    cases = []
    for kind, w in weights.items():
        codes, scales, mins = packed(kind, w)
        for dtype in (torch.float16, torch.float32):
            stored = (codes, scales.to(dtype)) + (() if kind == "q8" else (mins.to(dtype),))
            for product in (f"{kind}_matmul", f"{kind}_matmul_q8x"):
                cases.append((product, stored, getattr(kernels, product)(x, *stored, 1)))
            cases.append((f"{kind}_dequantize", stored, getattr(kernels, f"{kind}_dequantize")(*stored, 1)))
    codes, scales = kernels.pack_q5_0(llama_q5_0(torch.randn(64, 21 * 32)))  # q5 without mins
    for stored in ((codes, scales, None), (codes, scales.float(), None)):
        for name in ("q5_matmul", "q5_matmul_q8x"):
            cases.append((name, stored, getattr(kernels, name)(x, *stored, 1)))
        cases.append(("q5_dequantize", stored, kernels.q5_dequantize(*stored, 1)))
    monkeypatch.setattr(kernels, "_lib", lib)
    for name, stored, native in cases:
        got = getattr(kernels, name)(*stored, 1) if name.endswith("dequantize") else getattr(kernels, name)(x, *stored, 1)
        assert torch.allclose(got, native, rtol=1e-5, atol=1e-5 * native.abs().max()), (name, stored[1].dtype)
    every_half = torch.arange(-(2**15), 2**15).to(torch.int16).view(torch.float16).reshape(2048, 32)  # as scales
    widened = kernels.q8_dequantize(torch.ones(2048, 32 * 32, dtype=torch.int8), every_half, 1)[:, ::32]  # d * 1
    torch.testing.assert_close(widened, every_half.float(), rtol=0, atol=0, equal_nan=True)  # subnormals, inf, NaN


def test_decode_activations_of_a_q4_model(smollm_q4):
    from llm_magics.runtime import quantize

    layer = smollm_q4.module.blocks[0].mlp.down
    x = torch.randn(1, layer.in_features)
    try:
        assert quantize.set_decode(smollm_q4.module, "float32") == 30 * 4 + 1
        assert torch.equal(layer(x), kernels.q4_matmul(x, layer.codes, layer.scales, layer.mins, torch.get_num_threads()))
        quantize.set_decode(smollm_q4.module, "int8")
        assert torch.equal(layer(x), kernels.q4_matmul_q8x(x, layer.codes, layer.scales, layer.mins, torch.get_num_threads()))
        quantize.set_decode(smollm_q4.module, "auto")
        assert layer.decode_int8 == kernels.int8_dot_native()
        with pytest.raises(ValueError, match="Choose one of: float32, int8, auto"):
            quantize.set_decode(smollm_q4.module, "fp16")
    finally:
        quantize.set_decode(smollm_q4.module)
    assert layer.decode_int8 == quantize._DECODE[quantize.DEFAULT_DECODE]()


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


def greedy(lm, prompt: str, n: int = 32) -> list[int]:
    generation = lm.generate(prompt, max_new_tokens=n, stop_token_ids=[], stream=True, threads=1)
    generation.read()
    return generation.token_ids


@pytest.mark.slow
@pytest.mark.parametrize("prefill", ["float32", "auto"])  # auto: bfloat16 matmuls on a CPU with bf16 units
def test_q4_greedy_tokens_equal_float32(smollm, smollm_q4, prefill):
    from llm_magics.runtime import quantize

    quantize.set_prefill(smollm_q4.module, prefill)
    quantize.set_decode(smollm_q4.module, "float32")  # float32 activations: the exact path
    try:
        for prompt in PROMPTS:
            assert greedy(smollm_q4, prompt) == greedy(smollm, prompt), prompt
    finally:
        quantize.set_prefill(smollm_q4.module, "auto")
        quantize.set_decode(smollm_q4.module)


def teacher_forced_choices(lm, prompt: str, reference: list[int]) -> list[int]:
    """The token lm would pick at each step while it is made to follow `reference` (greedy)."""
    choices = []

    def follow(generated, scores):
        choices.append(int(scores.argmax()))
        forced = torch.full_like(scores, float("-inf"))
        forced[reference[len(generated)]] = 0.0
        return forced

    lm.generate(prompt, max_new_tokens=len(reference), stop_token_ids=[], logits_processor=follow, threads=1)
    return choices


@pytest.mark.slow
def test_q4_int8_activations_next_token_agreement(smollm, smollm_q4):
    """int8 activations round x (about 0.4 % of a block's largest value). Left to run freely, greedy
    tokens part from float32's at the first near tie and differ after it, so free-running agreement
    swings with chance (measured on 6 prompts x 64 tokens: 77 % through the modules, 50 % through the
    fused step, whose logits err no more: both 5.1 % of the largest logit, median). Made to follow
    float32's tokens, the next-token choice is a stable measure: measured 277 and 273 of 282 steps
    equal (modules, fused). The floor leaves room for another CPU's float rounding."""
    from llm_magics.runtime import quantize

    quantize.set_prefill(smollm_q4.module, "float32")
    quantize.set_decode(smollm_q4.module, "int8")
    try:
        pairs = [(teacher_forced_choices(smollm_q4, prompt, ref), ref) for prompt in PROMPTS
                 for ref in [greedy(smollm, prompt)]]  # fmt: skip
    finally:
        quantize.set_prefill(smollm_q4.module, "auto")
        quantize.set_decode(smollm_q4.module)
    equal = sum(a == b for got, ref in pairs for a, b in zip(got, ref)) / sum(len(ref) for _, ref in pairs)
    assert equal >= 0.9, [sum(a == b for a, b in zip(got, ref)) for got, ref in pairs]


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


# ─── the fused decode step (fused.py, kernels/step.c) ─────────────────────────


def module_and_fused_logits(lm, prompt: str, steps: int, threads_: int):
    """Prefill once, copy the KV cache, then decode the same greedy tokens through Decoder.forward
    and through the fused step side by side: [(module logits, fused logits)] per step."""
    from llm_magics.runtime import fused
    from llm_magics.runtime.generate import KVCache

    model, c = lm.module, lm.config
    ids = lm.encode(prompt)
    ours, theirs = (KVCache(c.n_layer, 1, c.n_kv_head, len(ids) + steps, c.head_dim) for _ in range(2))
    step = fused.FusedDecodeStep(model)
    pairs = []
    with torch.inference_mode():
        logits = model(torch.tensor([ids]), kv_cache=theirs, last_only=True)[0, -1]
        ours.k.copy_(theirs.k), ours.v.copy_(theirs.v)
        for pos in range(len(ids), len(ids) + steps):
            token = int(logits.argmax())
            logits = model(torch.tensor([[token]]), start_pos=pos, kv_cache=theirs)[0, -1]
            pairs.append((logits, step(token, pos, ours, threads_)))
    return pairs, (ours, theirs)


@pytest.mark.parametrize("activations", ["float32", "int8"])
def test_fused_step_equals_the_module_step(smollm_q4, activations):
    """The C step computes what Decoder.forward computes for one token, on 1 and 2 threads. With
    float32 activations: the same logits and cache rows to float rounding (only the order of
    additions differs; measured 1-2e-6 of the largest logit). With int8 activations the rounding is
    chaotic: moving the input embedding by 1e-6 of itself moves the module path's own logits by 4 %
    of the largest (int8 against float32: 4.7 %), so the two paths part by that much (measured 3-10 %
    over 3 prompts x 6 steps, the chosen token equal at 17 of 18), and the test checks the bound
    and that the step's products do round x."""
    from llm_magics.runtime import fused, quantize

    quantize.set_decode(smollm_q4.module, activations)
    tolerance = 1e-5 if activations == "float32" else 0.2
    try:
        step = fused.FusedDecodeStep(smollm_q4.module)
        assert step._layers[0].down.int8_x == (activations == "int8") == step._model.unembed.int8_x
        for threads_ in (1, 2):
            pairs, (ours, theirs) = module_and_fused_logits(smollm_q4, PROMPTS[2], 6, threads_)
            for want, got in pairs:
                assert (got - want).abs().max() <= tolerance * want.abs().max(), threads_
            if activations == "float32":
                assert all(got.argmax() == want.argmax() for want, got in pairs)
                for mine, reference in ((ours.k, theirs.k), (ours.v, theirs.v)):  # float rounding, as the logits
                    assert (mine - reference).abs().max() <= 1e-5 * reference.abs().max()
    finally:
        quantize.set_decode(smollm_q4.module)


def test_generation_takes_the_fused_step_and_keeps_its_tokens(smollm_q4):
    module = smollm_q4.module
    fused_run = smollm_q4.generate(PROMPTS[0], max_new_tokens=16, stop_token_ids=[], stream=True, threads=1)
    fused_run.read()
    module.fused_decode = False
    try:
        plain = smollm_q4.generate(PROMPTS[0], max_new_tokens=16, stop_token_ids=[], stream=True, threads=1)
        plain.read()
    finally:
        module.fused_decode = True
    assert fused_run.timings["fused_decode"] and not plain.timings["fused_decode"]
    assert fused_run.token_ids == plain.token_ids
    recorded = smollm_q4.generate(PROMPTS[0], max_new_tokens=2, stream=True, capture_attention=True)
    recorded.read()
    assert not recorded.timings["fused_decode"]  # recording attention needs the module path


def test_fused_step_refuses_what_it_cannot_compute(smollm, smollm_q4):
    from llm_magics.runtime import fused
    from llm_magics.runtime.generate import KVCache

    assert fused.supported(smollm.module) == "not q4-prepared" and fused.for_model(smollm.module) is None
    step = fused.FusedDecodeStep(smollm_q4.module)
    c = smollm_q4.config
    with pytest.raises(ValueError, match="outside the KV cache"):
        step(1, 4, KVCache(c.n_layer, 1, c.n_kv_head, 4, c.head_dim))
    with pytest.raises(ValueError, match="one sequence's float32"):
        step(1, 0, KVCache(c.n_layer, 2, c.n_kv_head, 4, c.head_dim))
    with pytest.raises(ValueError, match="not q4-prepared"):
        fused.FusedDecodeStep(smollm.module)
