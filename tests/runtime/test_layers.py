"""The parts on their own: each checked against its textbook formula."""

from __future__ import annotations

import math

import torch

from llm_magics.runtime.layers import (
    MultiHeadSelfAttention,
    RMSNorm,
    RotaryEmbedding,
    SingleHeadSelfAttention,
    SinusoidalPositionalEncoding,
    apply_rotary,
    causal_mask,
)


def test_sinusoidal_encoding_is_the_papers_formula():
    pe = SinusoidalPositionalEncoding(50, 16)
    pos, i = 7, 3
    assert math.isclose(pe.weight[pos, 2 * i].item(), math.sin(pos / 10000 ** (2 * i / 16)), abs_tol=1e-6)
    assert math.isclose(pe.weight[pos, 2 * i + 1].item(), math.cos(pos / 10000 ** (2 * i / 16)), abs_tol=1e-6)


def test_rotary_scores_depend_only_on_distance():
    rope = RotaryEmbedding(head_dim=8, max_positions=64, base=10000.0)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(pq, pk):
        return (apply_rotary(q, *rope(pq, 1)) * apply_rotary(k, *rope(pk, 1))).sum().item()

    assert math.isclose(score(10, 4), score(30, 24), rel_tol=1e-4)


def test_multi_head_attention_is_single_heads_side_by_side():
    torch.manual_seed(0)
    C, nh, T = 12, 3, 5
    hs = C // nh
    mha = MultiHeadSelfAttention(C, nh, nh, causal=True, bias=True)
    x = torch.randn(2, T, C)
    outputs = []
    for h in range(nh):
        head = SingleHeadSelfAttention(C, hs, causal=True)
        for proj, offset in ((head.query, 0), (head.key, C), (head.value, 2 * C)):
            rows = slice(offset + h * hs, offset + (h + 1) * hs)
            proj.weight.data, proj.bias.data = mha.qkv.weight.data[rows], mha.qkv.bias.data[rows]
        outputs.append(head(x)[0])  # (B, T, hs)
    expected = mha.out(torch.cat(outputs, dim=-1))
    torch.testing.assert_close(mha(x), expected, atol=1e-5, rtol=1e-5)


def test_sdpa_and_explicit_paths_agree_with_gqa_and_padding():
    torch.manual_seed(0)
    mha = MultiHeadSelfAttention(16, 4, 2, causal=False, bias=False)
    x = torch.randn(2, 6, 16)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]).bool()[:, None, None, :]
    fast = mha(x, attn_mask=mask)
    mha.use_sdpa = False
    torch.testing.assert_close(mha(x, attn_mask=mask), fast, atol=1e-5, rtol=1e-5)


def test_causal_mask_with_cached_prefix():
    m = causal_mask(2, 5)  # two new queries after three cached positions
    assert m.tolist() == [[True, True, True, True, False], [True, True, True, True, True]]


def test_rmsnorm_formula():
    x = torch.randn(3, 8)
    norm = RMSNorm(8, eps=1e-6)
    norm.weight.data = torch.rand(8)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), expected)


def test_split_linear_computes_what_linear_computes():
    from llm_magics.runtime.quantize import SplitLinear, prepare

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    try:
        for n_threads in (1, 2, 3):
            torch.set_num_threads(n_threads)
            for out_features, bias in ((12, True), (48, False), (7, True)):  # 7 rows: not splittable, F.linear
                linear = torch.nn.Linear(20, out_features, bias=bias)
                split = SplitLinear.from_linear(linear)
                assert split.weight is linear.weight
                for shape in ((1, 1, 20), (20,), (1, 4, 20), (3, 1, 20)):  # one row (decode), then several
                    x = torch.randn(shape)
                    torch.testing.assert_close(split(x), linear(x), atol=1e-6, rtol=1e-5)
    finally:
        torch.set_num_threads(threads)

    # the bmm schedule itself, whichever one this machine picks for SplitLinear (split_wins)
    from llm_magics.runtime.quantize import split_matvec, split_wins

    w, x = torch.randn(48, 20), torch.randn(1, 1, 20)
    for splits in (2, 3, 4):
        torch.testing.assert_close(split_matvec(w, x, splits), x @ w.T, atol=1e-6, rtol=1e-5)
    assert isinstance(split_wins(2), bool) and split_wins(2) is split_wins(2)  # measured once per thread count

    # prepare() swaps every nn.Linear of a model and keeps tied matrices one tensor.
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight
    prepare(model, "float32")
    assert isinstance(model[1], SplitLinear) and model[1].weight is model[0].weight
