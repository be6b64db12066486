"""GPT-2, Llama (grouped-query) and BERT: small random models saved by transformers as safetensors."""

from __future__ import annotations

import pytest
import torch

from .conftest import relative_error


@pytest.fixture(scope="module")
def pairs(tiny_folders):
    """name -> (ours, transformers' model) for the three tiny folders."""
    import transformers

    from llm_magics import runtime

    out = {}
    for name, folder in tiny_folders.items():
        if name == "bert":
            ref = transformers.AutoModel.from_pretrained(folder, attn_implementation="eager")
        else:
            ref = transformers.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager")
        out[name] = (runtime.load(str(folder)), ref.eval())
    return out


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_decoder_logits_attention_and_greedy(pairs, name):
    ours, ref = pairs[name]
    ids = list(range(100, 140, 3))
    with torch.no_grad():
        out = ref(torch.tensor([ids]), output_attentions=True)
    assert relative_error(ours.logits(ids), out.logits[0]) < 1e-4
    _, cache = ours.run_with_cache(ids)
    for layer in range(2):
        torch.testing.assert_close(cache[f"blocks.{layer}.attn.hook_pattern"], out.attentions[layer][0], atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        greedy = ref.generate(torch.tensor([ids]), max_new_tokens=32, do_sample=False, eos_token_id=None,
                              pad_token_id=0)[0, len(ids):].tolist()  # fmt: skip
    # Random weights: no stop tokens on either side, so both run the full 32 tokens.
    generation = ours.generate(ids, max_new_tokens=32, stop_token_ids=[], stream=True)
    generation.read()
    assert generation.token_ids == greedy


def test_decoder_configs(pairs):
    gpt2, _ = pairs["gpt2"]
    llama, _ = pairs["llama"]
    assert (gpt2.config.arch, gpt2.config.positional_encoding, gpt2.config.norm, gpt2.config.mlp) == (
        "gpt2", "learned", "layernorm", "gelu")  # fmt: skip
    assert (llama.config.n_head, llama.config.n_kv_head, llama.config.tie_word_embeddings) == (4, 2, False)


def test_bert_hidden_states_and_attention(pairs):
    ours, ref = pairs["bert"]
    text = "the quick brown fox jumps over the lazy dog"
    hidden, cache = ours.run_with_cache(text, "and runs away")
    ids = torch.tensor([ours._batch_tokenizer.encode(text, "and runs away").ids])
    types = torch.tensor([ours._batch_tokenizer.encode(text, "and runs away").type_ids])
    with torch.no_grad():
        out = ref(input_ids=ids, token_type_ids=types, output_attentions=True)
    assert relative_error(hidden, out.last_hidden_state[0]) < 1e-4
    for layer in range(2):
        torch.testing.assert_close(cache[f"blocks.{layer}.attn.hook_pattern"], out.attentions[layer][0], atol=1e-5, rtol=1e-4)
    # Embeddings: mean pooling over the mask, as sentence-transformers does it.
    texts = ["a b c", "a much longer text with more word pieces in it"]
    ids_list = [ours._batch_tokenizer.encode(t).ids for t in texts]
    pooled = []
    for row in ids_list:
        with torch.no_grad():
            h = ref(input_ids=torch.tensor([row])).last_hidden_state[0]
        pooled.append(torch.nn.functional.normalize(h.mean(0), dim=-1))
    cos = (torch.tensor(ours.embed(texts)) * torch.stack(pooled)).sum(1)
    assert cos.min() > 0.99999
