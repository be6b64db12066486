"""Parameter counts and memory for decoder-only transformers (``%llm size``).

For a GPT-style model with L layers, model width d = heads × head_dim, feed-forward width
f (4d by default), vocabulary V and context T:

- attention per layer: Q, K, V and output projections, 4·d·d weights (+ 4·d biases)
- MLP per layer: two matrices d·f and f·d (+ f + d biases); SwiGLU has three
- two LayerNorms per layer: 2 · 2d
- token embeddings V·d, learned positions T·d, a final LayerNorm 2d
- the output head shares the token embedding (tied) unless told otherwise

GPT-3 175B: 96 layers, 96 heads × 128 = 12288 wide, V = 50257, T = 2048 → 174.6B
parameters, 698 GB in fp32 (4 bytes each), 349 GB in fp16.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError

BYTES_PER_PARAM = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "int4": 0.5}


@dataclass(frozen=True)
class Architecture:
    n_layer: int
    n_head: int
    head_dim: int
    vocab_size: int = 50257
    n_ctx: int = 2048
    d_ff: int | None = None  # default 4·d
    n_kv_head: int | None = None  # grouped-query attention; default n_head
    gated_mlp: bool = False  # SwiGLU (Llama) has three MLP matrices
    learned_positions: bool = True
    tied_embeddings: bool = True
    biases: bool = True

    @property
    def d_model(self) -> int:
        return self.n_head * self.head_dim


PRESETS = {
    "gpt2": Architecture(12, 12, 64, 50257, 1024),
    "gpt2-medium": Architecture(24, 16, 64, 50257, 1024),
    "gpt2-large": Architecture(36, 20, 64, 50257, 1024),
    "gpt2-xl": Architecture(48, 25, 64, 50257, 1024),
    "gpt3": Architecture(96, 96, 128, 50257, 2048),
    "gpt3-175b": Architecture(96, 96, 128, 50257, 2048),
    "llama2-7b": Architecture(32, 32, 128, 32000, 4096, d_ff=11008, gated_mlp=True, learned_positions=False, tied_embeddings=False, biases=False),
    "smollm2-135m": Architecture(30, 9, 64, 49152, 8192, d_ff=1536, n_kv_head=3, gated_mlp=True, learned_positions=False, biases=False),
}


@dataclass(frozen=True)
class SizeReport:
    arch: Architecture
    breakdown: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.breakdown.values())

    def bytes(self, dtype: str = "fp32") -> float:
        return self.total * BYTES_PER_PARAM[dtype]

    def kv_cache_bytes(self, tokens: int | None = None, dtype: str = "fp16", batch: int = 1) -> float:
        """K and V for every layer: 2 · L · T · n_kv_head · head_dim values."""
        a = self.arch
        t = tokens or a.n_ctx
        return 2 * a.n_layer * t * (a.n_kv_head or a.n_head) * a.head_dim * BYTES_PER_PARAM[dtype] * batch

    def table(self) -> str:
        rows = [f"{'part':<22}{'parameters':>20}"]
        rows += [f"{k:<22}{v:>20,}" for k, v in self.breakdown.items()]
        rows.append(f"{'total':<22}{self.total:>20,}  ({human(self.total)})")
        rows.append("")
        rows += [f"{dtype:<6} weights {gb(self.bytes(dtype)):>12}" for dtype in BYTES_PER_PARAM]
        rows.append(f"KV cache at {self.arch.n_ctx} tokens, fp16: {gb(self.kv_cache_bytes())}")
        return "\n".join(rows)

    def _repr_pretty_(self, p, cycle):  # IPython display
        p.text(self.table())


def count(arch: Architecture) -> SizeReport:
    d, L = arch.d_model, arch.n_layer
    kv = (arch.n_kv_head or arch.n_head) * arch.head_dim
    f = arch.d_ff or 4 * d
    b = 1 if arch.biases else 0
    attn = d * d + 2 * d * kv + d * d + b * (d + 2 * kv + d)  # W_Q, W_K, W_V, W_O (+ biases)
    mlp = (3 if arch.gated_mlp else 2) * d * f + b * (f + d)
    norms = 2 * (2 * d if arch.biases else d)  # LayerNorm has a weight and a bias, RMSNorm a weight
    parts = {
        "token embeddings": arch.vocab_size * d,
        "positions": arch.n_ctx * d if arch.learned_positions else 0,
        "attention (all layers)": L * attn,
        "mlp (all layers)": L * mlp,
        "norms": L * norms + (2 * d if arch.biases else d),
        "output head": 0 if arch.tied_embeddings else arch.vocab_size * d,
    }
    return SizeReport(arch, parts)


def size(spec: str | None = None, **dims) -> SizeReport:
    """``size("gpt3")`` or ``size(n_layer=96, n_head=96, head_dim=128)``."""
    if spec:
        key = spec.lower()
        if key not in PRESETS:
            raise UsageError(f"No preset {spec!r}. Known: {', '.join(PRESETS)}. Or pass --layers, --heads and --head-dim.")
        arch = PRESETS[key]
        if dims:
            from dataclasses import replace

            arch = replace(arch, **dims)
        return count(arch)
    missing = [k for k in ("n_layer", "n_head", "head_dim") if not dims.get(k)]
    if missing:
        raise UsageError("Give a preset (gpt2, gpt3, llama2-7b, ...) or --layers, --heads and --head-dim.")
    return count(Architecture(**{k: v for k, v in dims.items() if v is not None}))


def human(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(int(n))


def gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"
