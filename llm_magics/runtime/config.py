"""Configurations: every dimension of a model, as a plain dataclass.

Two shapes of transformer live in this runtime:

* an **encoder** (BERT, MiniLM): every token sees every other token, the output
  is one vector per token that we pool into a sentence embedding;
* a **decoder** (Llama, GPT-2): each token sees only the tokens before it, the
  output is a distribution over the next token.

The defaults below are the models we ship with (all-MiniLM-L6-v2 and
SmolLM2-135M-Instruct), so `EncoderConfig()` and `DecoderConfig()` describe real
networks. The `from_hf` constructors read a Hugging Face `config.json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

GGUF_ARCHITECTURES = ("llama", "qwen2")  # what DecoderConfig.from_gguf and weights.py read


@dataclass
class EncoderConfig:
    """A BERT-style encoder. Defaults: all-MiniLM-L6-v2."""

    vocab_size: int = 30522  # word pieces in the vocabulary
    max_position_embeddings: int = 512  # longest input the learned positions cover
    type_vocab_size: int = 2  # segment ids: 0 for sentence A, 1 for sentence B
    n_layer: int = 6  # encoder blocks
    n_head: int = 12  # attention heads per block
    n_embd: int = 384  # width of the residual stream (d_model)
    intermediate_size: int = 1536  # hidden width of the MLP (4 * n_embd)
    layer_norm_eps: float = 1e-12  # BERT's tiny epsilon
    hidden_act: str = "gelu"  # exact erf GELU; "gelu_new" is the tanh approximation
    pad_token_id: int = 0  # [PAD]; masked out of attention and pooling
    positional_encoding: str = "learned"  # "learned" (BERT) or "sinusoidal" (Vaswani et al.)
    pooling: str = "mean"  # sentence vector: "mean" of token vectors over the mask, or "cls"
    normalize: bool = True  # L2-normalise sentence embeddings
    max_seq_length: int = 256  # sentence-transformers truncates inputs here
    kind: str = field(default="encoder", init=False)

    @property
    def head_dim(self) -> int:
        """Width of one attention head: n_embd split evenly across heads (384 / 12 = 32)."""
        return self.n_embd // self.n_head

    @classmethod
    def from_hf(cls, hf: dict, **overrides) -> "EncoderConfig":
        """Read a transformers `BertConfig` dictionary (config.json)."""
        cfg = cls(
            vocab_size=hf["vocab_size"],
            max_position_embeddings=hf.get("max_position_embeddings", 512),
            type_vocab_size=hf.get("type_vocab_size", 2),
            n_layer=hf["num_hidden_layers"],
            n_head=hf["num_attention_heads"],
            n_embd=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"],
            layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
            hidden_act=hf.get("hidden_act", "gelu"),
            pad_token_id=hf.get("pad_token_id") or 0,
            max_seq_length=min(hf.get("max_position_embeddings", 512), 512),
        )
        for key, value in overrides.items():
            setattr(cfg, key, value)
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DecoderConfig:
    """A causal decoder. Defaults: SmolLM2-135M-Instruct (a Llama).

    A GPT-2 differs from a Llama in five switches, all here: learned positions
    instead of rotary, LayerNorm instead of RMSNorm, a GELU MLP instead of
    SwiGLU, biases on the linear layers, and one key/value head per query head.
    """

    arch: str = "llama"  # "llama", "qwen2" or "gpt2"; only used for names and weight maps
    vocab_size: int = 49152  # byte-level BPE tokens
    n_layer: int = 30  # decoder blocks
    n_head: int = 9  # query heads
    n_kv_head: int = 3  # key/value heads; n_head // n_kv_head queries share each (GQA)
    n_embd: int = 576  # width of the residual stream (d_model)
    intermediate_size: int = 1536  # hidden width of the MLP
    max_seq_len: int = 8192  # context window
    positional_encoding: str = "rotary"  # "rotary" (Llama), "learned" (GPT-2) or "sinusoidal"
    rope_theta: float = 100000.0  # base of the rotary frequencies
    norm: str = "rmsnorm"  # "rmsnorm" (Llama) or "layernorm" (GPT-2)
    norm_eps: float = 1e-5
    mlp: str = "swiglu"  # "swiglu" (Llama) or "gelu" (GPT-2)
    hidden_act: str = "silu"  # activation inside the MLP: "silu", "gelu" or "gelu_new"
    bias: bool = False  # biases on q/k/v/o and the MLP (GPT-2: True)
    qkv_bias: bool = False  # biases on q/k/v only (Qwen2: True; its o and MLP have none)
    tie_word_embeddings: bool = True  # the unembedding reuses the embedding matrix
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    kind: str = field(default="decoder", init=False)

    @property
    def head_dim(self) -> int:
        """Width of one attention head: 576 / 9 = 64 for SmolLM2."""
        return self.n_embd // self.n_head

    @classmethod
    def from_hf(cls, hf: dict, **overrides) -> "DecoderConfig":
        """Read a transformers `LlamaConfig` or `GPT2Config` dictionary (config.json)."""
        model_type = hf.get("model_type")
        if model_type == "gpt2":
            n_embd = hf["n_embd"]
            cfg = cls(
                arch="gpt2",
                vocab_size=hf["vocab_size"],
                n_layer=hf["n_layer"],
                n_head=hf["n_head"],
                n_kv_head=hf["n_head"],
                n_embd=n_embd,
                intermediate_size=hf.get("n_inner") or 4 * n_embd,
                max_seq_len=hf["n_positions"],
                positional_encoding="learned",
                norm="layernorm",
                norm_eps=hf.get("layer_norm_epsilon", 1e-5),
                mlp="gelu",
                hidden_act=hf.get("activation_function", "gelu_new"),
                bias=True,
                tie_word_embeddings=hf.get("tie_word_embeddings", True),
                bos_token_id=hf.get("bos_token_id"),
                eos_token_id=hf.get("eos_token_id"),
            )
        elif model_type in ("llama", "mistral", "qwen2") or "LlamaForCausalLM" in hf.get("architectures", []):
            rope_theta = hf.get("rope_theta") or (hf.get("rope_parameters") or {}).get("rope_theta", 10000.0)
            cfg = cls(
                arch="qwen2" if model_type == "qwen2" else "llama",
                qkv_bias=model_type == "qwen2",  # Qwen2 always has q/k/v biases (no config switch)
                vocab_size=hf["vocab_size"],
                n_layer=hf["num_hidden_layers"],
                n_head=hf["num_attention_heads"],
                n_kv_head=hf.get("num_key_value_heads") or hf["num_attention_heads"],
                n_embd=hf["hidden_size"],
                intermediate_size=hf["intermediate_size"],
                max_seq_len=hf.get("max_position_embeddings", 2048),
                rope_theta=rope_theta,
                norm_eps=hf.get("rms_norm_eps", 1e-6),
                hidden_act=hf.get("hidden_act", "silu"),
                bias=bool(hf.get("attention_bias", False)),
                tie_word_embeddings=hf.get("tie_word_embeddings", False),
                bos_token_id=hf.get("bos_token_id"),
                eos_token_id=hf.get("eos_token_id"),
            )
        else:
            raise ValueError(
                f"Unsupported decoder model_type {model_type!r}. The runtime reads 'llama' and 'gpt2' configs."
            )
        for key, value in overrides.items():
            setattr(cfg, key, value)
        return cfg

    @classmethod
    def from_gguf(cls, meta: dict, **overrides) -> "DecoderConfig":
        """Read llama.cpp metadata (`llama.block_count`, `qwen2.rope.freq_base`, ...) from a GGUF file.

        A Qwen2 is a Llama with biases on q/k/v and a large RoPE base (1e6 for Qwen2.5);
        llama.cpp keys every hyperparameter by the architecture's name.
        """
        arch = meta["general.architecture"]
        if arch not in GGUF_ARCHITECTURES:
            raise ValueError(f"Unsupported GGUF architecture {arch!r}; the runtime reads {', '.join(GGUF_ARCHITECTURES)} GGUF files.")
        n_head = meta[f"{arch}.attention.head_count"]
        cfg = cls(
            arch=arch,
            qkv_bias=arch == "qwen2",
            vocab_size=meta.get(f"{arch}.vocab_size") or len(meta["tokenizer.ggml.tokens"]),
            n_layer=meta[f"{arch}.block_count"],
            n_head=n_head,
            n_kv_head=meta.get(f"{arch}.attention.head_count_kv", n_head),
            n_embd=meta[f"{arch}.embedding_length"],
            intermediate_size=meta[f"{arch}.feed_forward_length"],
            max_seq_len=meta.get(f"{arch}.context_length", 2048),
            rope_theta=float(meta.get(f"{arch}.rope.freq_base", 10000.0)),
            norm_eps=float(meta.get(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)),
            bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
            eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        )
        for key, value in overrides.items():
            setattr(cfg, key, value)
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)
