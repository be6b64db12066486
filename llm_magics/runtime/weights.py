"""Checkpoints -> (config, state dict in this runtime's names).

Three sources:
  * a Hugging Face folder: config.json + model.safetensors (memory-mapped; sharded too),
    or pytorch_model.bin, which is only ever read with `torch.load(weights_only=True)`;
  * a GGUF file (llama.cpp, architectures `llama` and `qwen2`): read with the `gguf` package,
    each tensor dequantized to float32 when it is used (GGUF_QUANT_TYPES lists the storage
    types read), and, for `llama` only, the q/k rows that llama.cpp's converter permuted put
    back in Hugging Face order (convert_hf_to_gguf.py permutes Llama's q/k, not Qwen2's).

Converting a GGUF costs seconds (parsing the metadata, dequantizing 272 tensors),
so the result is cached as safetensors under $LLM_MAGICS_CACHE (default
~/.cache/llm_magics), keyed by the file's path, size and modification time, and
written atomically. The second load reads that cache and never opens the GGUF.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .config import DecoderConfig, EncoderConfig

log = logging.getLogger(__name__)

CACHE_VERSION = "1"  # bump when the converted layout changes


# ─── reading files ────────────────────────────────────────────────────────────


def read_safetensors(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Tensors from one or more safetensors files, through a memory map."""
    from safetensors import safe_open

    tensors = {}
    for path in paths:
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():
                tensors[name] = f.get_tensor(name)
    return tensors


def read_hf_folder(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """config.json and the checkpoint tensors of a Hugging Face model folder."""
    hf_config = json.loads((folder / "config.json").read_text())
    index = folder / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return hf_config, read_safetensors([folder / s for s in shards])
    if (folder / "model.safetensors").exists():
        return hf_config, read_safetensors([folder / "model.safetensors"])
    if (folder / "pytorch_model.bin").exists():
        # Never unpickle arbitrary objects: weights_only refuses anything but tensors.
        return hf_config, torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True, mmap=True)
    raise FileNotFoundError(f"No model.safetensors or pytorch_model.bin in {folder}")


def gguf_metadata(reader) -> dict:
    """Every key/value of a GGUF header as plain Python values."""
    return {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}


# The storage types read (all that `gguf.quants.dequantize` turns into float32): the K-quants
# Q4_K/Q5_K/Q6_K (256-value super-blocks of sub-blocks with their own scales) that llama.cpp's
# Q4_K_M mixes with Q5_0/Q8_0, and the older 32-value blocks Q4_0/Q4_1/Q5_0/Q8_0.
GGUF_QUANT_TYPES = ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q8_0", "Q4_K", "Q5_K", "Q6_K")


class GGUFTensors(Mapping):
    """The tensors of a GGUF file by llama.cpp name, each dequantized to float32 when it is read.

    The file stays memory-mapped; converting one tensor at a time keeps the peak at the
    converted model plus one tensor (a 0.5B model: ~2.5 GB, not twice that).
    """

    CHUNK_ROWS = 4096  # measured: smaller blocks were faster too (less memory traffic)

    def __init__(self, reader):
        self._tensors = {t.name: t for t in reader.tensors}
        unsupported = sorted({t.tensor_type.name for t in reader.tensors} - set(GGUF_QUANT_TYPES))
        if unsupported:
            raise ValueError(f"GGUF storage type(s) {', '.join(unsupported)} are not supported; the runtime reads {', '.join(GGUF_QUANT_TYPES)}.")

    def __getitem__(self, name: str) -> torch.Tensor:
        from gguf.quants import dequantize

        t = self._tensors[name]
        data = t.data  # quantized: (rows, bytes per row) uint8 on the memory map; F32/F16: (rows, cols)
        if data.ndim < 2 or data.shape[0] <= self.CHUNK_ROWS:
            array = dequantize(data, t.tensor_type)  # numpy, shape in row-major order (rows, cols)
            # F32/F16 come back as views of the read-only map: copy those; quantized types are fresh arrays.
            return torch.from_numpy(np.require(array, np.float32, ["C_CONTIGUOUS", "WRITEABLE", "OWNDATA"]))
        # Large matrices (a 151,936-row embedding) a block of rows at a time: numpy's temporaries
        # for a whole Q8_0 matrix would triple its size.
        first = dequantize(data[: self.CHUNK_ROWS], t.tensor_type)
        out = np.empty((data.shape[0], *first.shape[1:]), dtype=np.float32)
        out[: self.CHUNK_ROWS] = first
        for start in range(self.CHUNK_ROWS, data.shape[0], self.CHUNK_ROWS):
            out[start : start + self.CHUNK_ROWS] = dequantize(data[start : start + self.CHUNK_ROWS], t.tensor_type)
        return torch.from_numpy(out)

    def __iter__(self):
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def types(self) -> dict[str, int]:
        """How many tensors of each storage type the file holds ({"Q5_0": 133, ...})."""
        return dict(Counter(t.tensor_type.name for t in self._tensors.values()))


def read_gguf(path: Path) -> tuple[dict, GGUFTensors]:
    """(metadata, float32 tensors in llama.cpp names, dequantized on access) of a GGUF file."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    return gguf_metadata(reader), GGUFTensors(reader)


def unpermute_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Undo llama.cpp's q/k permutation.

    llama.cpp rotates adjacent channel pairs (0,1), (2,3), ...; Hugging Face rotates
    (j, j + hs/2). convert_hf_to_gguf.py reorders each head's rows to match; this is
    its inverse: rows (head, pair j, 2) go back to (head, 2, pair j).
    """
    rows = w.shape[0]
    hs_half = rows // n_head // 2
    return w.reshape(n_head, hs_half, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


# ─── name maps: checkpoint -> runtime ─────────────────────────────────────────


def llama_state_dict(get, cfg: DecoderConfig, gguf: bool) -> dict[str, torch.Tensor]:
    """Map a Llama or Qwen2 checkpoint (HF names, or llama.cpp names when gguf=True).

    Qwen2 differs only in its q/k/v biases (cfg.qkv_bias) and in that llama.cpp stores its
    q/k rows unpermuted (its converter's Qwen2Model does not inherit LlamaModel's permute).
    """
    if gguf:
        names = dict(
            embed="token_embd.weight", norm="output_norm.weight", head="output.weight",
            ln1="blk.{i}.attn_norm.weight", ln2="blk.{i}.ffn_norm.weight",
            q="blk.{i}.attn_q.weight", k="blk.{i}.attn_k.weight", v="blk.{i}.attn_v.weight",
            o="blk.{i}.attn_output.weight", gate="blk.{i}.ffn_gate.weight", up="blk.{i}.ffn_up.weight",
            down="blk.{i}.ffn_down.weight",
        )  # fmt: skip
    else:
        names = dict(
            embed="model.embed_tokens.weight", norm="model.norm.weight", head="lm_head.weight",
            ln1="model.layers.{i}.input_layernorm.weight", ln2="model.layers.{i}.post_attention_layernorm.weight",
            q="model.layers.{i}.self_attn.q_proj.weight", k="model.layers.{i}.self_attn.k_proj.weight",
            v="model.layers.{i}.self_attn.v_proj.weight", o="model.layers.{i}.self_attn.o_proj.weight",
            gate="model.layers.{i}.mlp.gate_proj.weight", up="model.layers.{i}.mlp.up_proj.weight",
            down="model.layers.{i}.mlp.down_proj.weight",
        )  # fmt: skip
    sd = {"embed.weight": get(names["embed"]), "ln_final.weight": get(names["norm"])}
    for i in range(cfg.n_layer):
        n = {key: value.format(i=i) for key, value in names.items()}
        q, k = get(n["q"]), get(n["k"])
        if gguf and cfg.arch == "llama":
            q, k = unpermute_rows(q, cfg.n_head), unpermute_rows(k, cfg.n_kv_head)
        b = f"blocks.{i}."
        sd[b + "ln1.weight"] = get(n["ln1"])
        sd[b + "attn.qkv.weight"] = torch.cat([q, k, get(n["v"])])  # (nh*hs + 2*nkv*hs, C)
        sd[b + "attn.out.weight"] = get(n["o"])
        sd[b + "ln2.weight"] = get(n["ln2"])
        sd[b + "mlp.gate_up.weight"] = torch.cat([get(n["gate"]), get(n["up"])])  # (2I, C)
        sd[b + "mlp.down.weight"] = get(n["down"])
        if cfg.bias or cfg.qkv_bias:
            sd[b + "attn.qkv.bias"] = torch.cat([get(n[x].replace("weight", "bias")) for x in "qkv"])
        if cfg.bias:
            sd[b + "attn.out.bias"] = get(n["o"].replace("weight", "bias"))
    if not cfg.tie_word_embeddings:
        sd["unembed.weight"] = get(names["head"])
    return sd


def gpt2_state_dict(get, cfg: DecoderConfig) -> dict[str, torch.Tensor]:
    """Map a GPT-2 checkpoint. Its Conv1D layers store weights as (in, out): transpose them."""
    sd = {
        "embed.weight": get("wte.weight"),
        "pos_embed.weight": get("wpe.weight"),
        "ln_final.weight": get("ln_f.weight"),
        "ln_final.bias": get("ln_f.bias"),
    }
    for i in range(cfg.n_layer):
        h, b = f"h.{i}.", f"blocks.{i}."
        for ours, theirs in [("ln1", "ln_1"), ("ln2", "ln_2")]:
            sd[b + ours + ".weight"] = get(h + theirs + ".weight")
            sd[b + ours + ".bias"] = get(h + theirs + ".bias")
        for ours, theirs in [("attn.qkv", "attn.c_attn"), ("attn.out", "attn.c_proj"),
                             ("mlp.up", "mlp.c_fc"), ("mlp.down", "mlp.c_proj")]:  # fmt: skip
            sd[b + ours + ".weight"] = get(h + theirs + ".weight").t().contiguous()  # (in, out) -> (out, in)
            sd[b + ours + ".bias"] = get(h + theirs + ".bias")
    if not cfg.tie_word_embeddings:
        sd["unembed.weight"] = get("lm_head.weight")
    return sd


def bert_state_dict(get) -> dict[str, torch.Tensor]:
    """Map a BERT checkpoint (BertModel names; a leading 'bert.' is stripped by the getter)."""
    sd = {
        "embed.weight": get("embeddings.word_embeddings.weight"),
        "pos_embed.weight": get("embeddings.position_embeddings.weight"),
        "token_type_embed.weight": get("embeddings.token_type_embeddings.weight"),
        "ln_embed.weight": get("embeddings.LayerNorm.weight"),
        "ln_embed.bias": get("embeddings.LayerNorm.bias"),
    }
    i = 0
    while True:
        layer = f"encoder.layer.{i}."
        try:
            get(layer + "attention.self.query.weight")
        except KeyError:
            break
        b = f"blocks.{i}."
        for kind in ("weight", "bias"):
            sd[b + f"attn.qkv.{kind}"] = torch.cat(
                [get(layer + f"attention.self.{x}.{kind}") for x in ("query", "key", "value")]
            )  # (3C, C) / (3C,)
            sd[b + f"attn.out.{kind}"] = get(layer + f"attention.output.dense.{kind}")
            sd[b + f"ln1.{kind}"] = get(layer + f"attention.output.LayerNorm.{kind}")
            sd[b + f"mlp.up.{kind}"] = get(layer + f"intermediate.dense.{kind}")
            sd[b + f"mlp.down.{kind}"] = get(layer + f"output.dense.{kind}")
            sd[b + f"ln2.{kind}"] = get(layer + f"output.LayerNorm.{kind}")
        i += 1
    return sd


def make_getter(tensors: dict[str, torch.Tensor], prefixes=("",)):
    """A lookup that tolerates the wrapper prefixes ('bert.', 'transformer.') and old gamma/beta names."""

    def get(name: str) -> torch.Tensor:
        for prefix in prefixes:
            for candidate in (prefix + name, prefix + name.replace(".weight", ".gamma").replace(".bias", ".beta")):
                if candidate in tensors:
                    return tensors[candidate].float()
        raise KeyError(name)

    return get


# ─── the converted-weights cache ──────────────────────────────────────────────


def cache_root() -> Path:
    return Path(os.environ.get("LLM_MAGICS_CACHE") or Path.home() / ".cache" / "llm_magics")


def cache_dir_for(path: Path) -> Path:
    """A folder name unique to this file's path, size and mtime: editing or replacing the file misses."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{CACHE_VERSION}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_root() / "runtime" / f"{path.stem}-{digest}"


def write_cache(folder: Path, state_dict: dict, meta: dict, tokenizer_json: str) -> None:
    """Write model.safetensors + meta.json + tokenizer.json into a temp folder, then rename it into place."""
    from safetensors.torch import save_file

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + ".tmp-"))
    try:
        tensors = {k: v.contiguous() for k, v in state_dict.items()}
        save_file(tensors, str(tmp / "model.safetensors"))
        (tmp / "meta.json").write_text(json.dumps(meta))
        (tmp / "tokenizer.json").write_text(tokenizer_json)
        os.replace(tmp, folder)  # atomic; if another process won the race, ours is discarded below
    except OSError:
        log.info("Could not write the weights cache at %s", folder, exc_info=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_cache(folder: Path) -> tuple[dict, dict, str] | None:
    """(state_dict, meta, tokenizer_json) from a cache folder, or None when absent or unreadable."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        tokenizer_json = (folder / "tokenizer.json").read_text()
        state_dict = read_safetensors([folder / "model.safetensors"])
    except (OSError, ValueError):
        return None
    return state_dict, meta, tokenizer_json


# ─── entry points ─────────────────────────────────────────────────────────────


def load_hf_folder(folder: Path) -> tuple[EncoderConfig | DecoderConfig, dict[str, torch.Tensor]]:
    """(config, runtime state dict) for a BERT, GPT-2 or Llama folder."""
    hf_config, tensors = read_hf_folder(folder)
    model_type = hf_config.get("model_type")
    if model_type in ("bert",):
        config = EncoderConfig.from_hf(hf_config)
        pooling = folder / "1_Pooling" / "config.json"
        if pooling.exists():
            config.pooling = "mean" if json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", True) else "cls"
        st = folder / "sentence_bert_config.json"
        if st.exists():
            config.max_seq_length = json.loads(st.read_text()).get("max_seq_length", config.max_seq_length)
        return config, bert_state_dict(make_getter(tensors, ("", "bert.")))
    config = DecoderConfig.from_hf(hf_config)
    if config.arch == "gpt2":
        return config, gpt2_state_dict(make_getter(tensors, ("", "transformer.")), config)
    if "lm_head.weight" not in tensors:
        config.tie_word_embeddings = True
    return config, llama_state_dict(make_getter(tensors), config, gguf=False)


def convert_gguf(path: Path) -> tuple[DecoderConfig, dict[str, torch.Tensor], dict]:
    """(config, runtime state dict, metadata) from a GGUF file: the slow, uncached conversion."""
    meta, tensors = read_gguf(path)
    # Tied embeddings: llama.cpp omits output.weight when the unembedding reuses token_embd.
    config = DecoderConfig.from_gguf(meta, tie_word_embeddings="output.weight" not in tensors)
    return config, llama_state_dict(make_getter(tensors), config, gguf=True), meta
