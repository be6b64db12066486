"""Session fixtures for the runtime tests: each real model is loaded once.

transformers is the numeric reference. Our models load through a weights cache
in a temporary folder, so the first load is a cold GGUF conversion and later
loads read the cache.
"""

from __future__ import annotations

import json
import os

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()


@pytest.fixture(scope="session", autouse=True)
def _threads_and_cache(tmp_path_factory):
    torch.set_num_threads(2)
    old = os.environ.get("LLM_MAGICS_CACHE")
    os.environ["LLM_MAGICS_CACHE"] = str(tmp_path_factory.mktemp("llm_magics_cache"))
    yield
    if old is None:
        os.environ.pop("LLM_MAGICS_CACHE", None)
    else:
        os.environ["LLM_MAGICS_CACHE"] = old


@pytest.fixture(scope="session")
def smollm():
    """Our SmolLM2, loaded cold (GGUF converted, cache written); .load_seconds says how long."""
    from llm_magics import models

    return models.load("smollm2")


@pytest.fixture(scope="session")
def hf_smollm(smollm):
    """transformers' own GGUF loader on the same file, eager attention so patterns are comparable."""
    path = smollm.path
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, attn_implementation="eager", dtype=torch.float32
    )
    return model.eval()


@pytest.fixture(scope="session")
def hf_smollm_tokenizer(smollm):
    path = smollm.path
    return transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


@pytest.fixture(scope="session")
def minilm():
    from llm_magics import models

    return models.load("minilm")


@pytest.fixture(scope="session")
def hf_minilm(minilm):
    model = transformers.AutoModel.from_pretrained(str(minilm.path), attn_implementation="eager")
    return model.eval(), transformers.AutoTokenizer.from_pretrained(str(minilm.path))


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory, minilm, smollm):
    """Small random GPT-2, BERT and Llama (GQA) models saved by transformers as safetensors folders."""
    root = tmp_path_factory.mktemp("tiny_models")
    torch.manual_seed(0)
    byte_level = smollm.tokenizer.backend.to_str()  # any byte-level BPE tokenizer.json will do
    specs = {
        "gpt2": transformers.GPT2Config(
            vocab_size=49152, n_positions=128, n_embd=64, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0
        ),
        "llama": transformers.LlamaConfig(
            vocab_size=49152, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, rope_theta=10000.0, tie_word_embeddings=False,
            bos_token_id=1, eos_token_id=2,
        ),
        "bert": transformers.BertConfig(
            vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
            max_position_embeddings=128,
        ),
    }  # fmt: skip
    folders = {}
    for name, config in specs.items():
        folder = root / name
        if name == "bert":
            model = transformers.BertModel(config)
        else:
            model = transformers.AutoModelForCausalLM.from_config(config)
        with torch.no_grad():  # random init is tiny; widen it so differences would show
            for p in model.parameters():
                if p.dim() > 1:
                    p.normal_(0, 0.2)
        model.save_pretrained(folder, safe_serialization=True)
        if name == "bert":
            for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
                (folder / f).write_bytes((minilm.path / f).read_bytes())
        else:
            (folder / "tokenizer.json").write_text(byte_level)
            (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|im_end|>"}))
        folders[name] = folder
    return folders


def relative_error(ours, ref) -> float:
    """max |ours - ref| / max |ref|: 'within 1e-4 relative' means this is below 1e-4."""
    ours, ref = ours.float(), ref.float()
    return ((ours - ref).abs().max() / ref.abs().max()).item()
