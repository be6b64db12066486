"""Tuned models under a name: saved as Hugging Face folders, listed in one registry file.

`save(lm, name)` writes the (merged) model as an HF Llama folder (config.json,
model.safetensors, tokenizer.json, tokenizer_config.json) under
$LLM_MAGICS_CACHE/models/finetuned/NAME and records it in
$LLM_MAGICS_CACHE/models/finetuned/registry.json. This module is also a built-in plugin:
its `register_models` reads that file, so `%%ask --model NAME` and `runtime.load(NAME)`
find the model in this kernel (after `registry.refresh()`) and in every new one.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from ..hookspecs import hookimpl


def root() -> Path:
    """Where tuned models live: $LLM_MAGICS_FINETUNED, else models/finetuned under the cache root
    ($LLM_MAGICS_CACHE or ~/.cache/llm_magics, the runtime's)."""
    if os.environ.get("LLM_MAGICS_FINETUNED"):
        return Path(os.environ["LLM_MAGICS_FINETUNED"])
    base = Path(os.environ.get("LLM_MAGICS_CACHE") or Path.home() / ".cache" / "llm_magics")
    return base / "models" / "finetuned"


def registry_file() -> Path:
    return root() / "registry.json"


def registered() -> dict[str, dict]:
    """{name: {"path", "base", "created", ...}} of every tuned model recorded on this machine."""
    try:
        return json.loads(registry_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def record(name: str, folder: Path, **info) -> None:
    """Add or replace `name` in the registry file (written to a temp file, then renamed: atomic)."""
    entries = registered()
    entries[name] = {"path": str(folder), "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **info}
    registry_file().parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=registry_file().parent, prefix=".registry-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(entries, f, indent=2)
    os.replace(tmp, registry_file())


def forget(name: str) -> bool:
    entries = registered()
    if entries.pop(name, None) is None:
        return False
    fd, tmp = tempfile.mkstemp(dir=registry_file().parent, prefix=".registry-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(entries, f, indent=2)
    os.replace(tmp, registry_file())
    _refresh_everything(name)
    return True


def _refresh_everything(name: str) -> None:
    from .. import registry as plugin_registry

    plugin_registry.refresh()  # the model registry too: the next resolve() reads the file again
    try:
        from ..models import cache

        cache.unload(name)  # a model loaded earlier under this name is stale now
    except Exception:  # noqa: BLE001 - nothing loaded, or no cache in this layout
        pass


def hf_state_dict(module) -> dict:
    """Our runtime's names -> Hugging Face Llama names (q/k/v and gate/up split back out)."""
    cfg = module.config
    nh, nkv, hs = cfg.n_head, cfg.n_kv_head, cfg.head_dim
    sd = {"model.embed_tokens.weight": module.embed.weight, "model.norm.weight": module.ln_final.weight}
    for i, block in enumerate(module.blocks):
        p = f"model.layers.{i}."
        qkv = block.attn.qkv.weight
        sd[p + "self_attn.q_proj.weight"] = qkv[: nh * hs]
        sd[p + "self_attn.k_proj.weight"] = qkv[nh * hs : (nh + nkv) * hs]
        sd[p + "self_attn.v_proj.weight"] = qkv[(nh + nkv) * hs :]
        if block.attn.qkv.bias is not None:
            b = block.attn.qkv.bias
            sd[p + "self_attn.q_proj.bias"], sd[p + "self_attn.k_proj.bias"], sd[p + "self_attn.v_proj.bias"] = (
                b[: nh * hs], b[nh * hs : (nh + nkv) * hs], b[(nh + nkv) * hs :])  # fmt: skip
        sd[p + "self_attn.o_proj.weight"] = block.attn.out.weight
        gate, up = block.mlp.gate_up.weight.chunk(2, dim=0)
        sd[p + "mlp.gate_proj.weight"], sd[p + "mlp.up_proj.weight"] = gate, up
        sd[p + "mlp.down_proj.weight"] = block.mlp.down.weight
        sd[p + "input_layernorm.weight"] = block.ln1.weight
        sd[p + "post_attention_layernorm.weight"] = block.ln2.weight
    if not cfg.tie_word_embeddings:
        sd["lm_head.weight"] = module.unembed.weight
    return {k: v.detach().float().contiguous().clone() for k, v in sd.items()}


def save(lm, name: str, **info) -> Path:
    """Write a runtime LanguageModel (Llama or Qwen2 layout, adapters merged) as an HF folder and register it."""
    from safetensors.torch import save_file

    from ..errors import UsageError

    cfg = lm.config
    if cfg.arch not in ("llama", "qwen2"):
        raise UsageError(f"Saving a tuned {cfg.arch} model under a name is not supported; use the adapter in {info.get('adapter')}.")
    folder = root() / name
    root().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root(), prefix=f".{name}-"))
    hf_config = {
        "architectures": ["Qwen2ForCausalLM" if cfg.arch == "qwen2" else "LlamaForCausalLM"], "model_type": cfg.arch,
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.n_embd, "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.n_layer, "num_attention_heads": cfg.n_head, "num_key_value_heads": cfg.n_kv_head,
        "max_position_embeddings": cfg.max_seq_len, "rope_theta": cfg.rope_theta, "rms_norm_eps": cfg.norm_eps,
        "hidden_act": cfg.hidden_act, "attention_bias": cfg.bias, "tie_word_embeddings": cfg.tie_word_embeddings,
        "bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id, "torch_dtype": "float32",
    }  # fmt: skip
    tok = lm.tokenizer
    tokenizer_config = {"bos_token": tok.bos_token, "eos_token": tok.eos_token, "pad_token": tok.pad_token,
                        "chat_template": tok.chat_template, "add_bos_token": tok.add_bos,
                        "model_max_length": tok.max_length or cfg.max_seq_len}  # fmt: skip
    (tmp / "config.json").write_text(json.dumps(hf_config, indent=2))
    (tmp / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    (tmp / "tokenizer.json").write_text(tok.backend.to_str())
    save_file(hf_state_dict(lm.module), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    os.replace(tmp, folder)
    record(name, folder, **info)
    _refresh_everything(name)
    return folder


@hookimpl
def register_models(register):
    """Every tuned model in the registry file, as a generator under its name."""
    for name, entry in registered().items():
        path = Path(entry["path"])
        if path.is_dir():
            register(name, path, "generator", description=f"fine-tuned from {entry.get('base', '?')}")
