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

Training arithmetic (Kaplan et al. 2020; the GPT-3 paper's appendix D):

- compute ≈ 6 · N · D FLOPs for N parameters and D training tokens (2·N·D for the forward
  pass, twice that for the backward): GPT-3, 174.6B × 300B tokens → 3.14e+23 FLOPs, 3,640
  petaflop/s-days (the paper: 3.14e23 and 3,640).
- memory to train with Adam, activations not counted: 16 bytes per parameter either way:
  fp32 = weights 4 + gradients 4 + two moments 8; mixed precision (ZeRO, Rajbhandari et al.
  2020) = fp16 weights 2 + fp16 gradients 2 + fp32 master weights 4 + moments 8.
- KV cache per generated token: 2 (K and V) · layers · kv heads · head_dim · bytes.
- time = compute / (GPUs · peak FLOP/s · utilisation), utilisation being the model FLOPs
  utilisation (MFU) a real run reaches: 30-50 % is typical.
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
    "llama2-70b": Architecture(80, 64, 128, 32000, 4096, d_ff=28672, n_kv_head=8, gated_mlp=True, learned_positions=False, tied_embeddings=False, biases=False),
    "llama3-8b": Architecture(32, 32, 128, 128256, 8192, d_ff=14336, n_kv_head=8, gated_mlp=True, learned_positions=False, tied_embeddings=False, biases=False),
}

# Training tokens each preset's authors published (GPT-3 paper, Llama 2 and Llama 3 papers,
# SmolLM2 model card). GPT-2's are not published as a token count: pass --tokens.
TRAINING_TOKENS = {
    "gpt3": 300e9,
    "gpt3-175b": 300e9,
    "llama2-7b": 2e12,
    "llama2-70b": 2e12,
    "llama3-8b": 15e12,
    "smollm2-135m": 2e12,
}

# Bytes per parameter to train with Adam (activations and temporary buffers not counted).
TRAINING_BYTES_PER_PARAM = {
    "fp32": {"weights": 4, "gradients": 4, "Adam moments": 8},
    "mixed": {"fp16 weights": 2, "fp16 gradients": 2, "fp32 master weights": 4, "Adam moments": 8},
}


@dataclass(frozen=True)
class Hardware:
    """Where the training FLOPs run: the defaults are 1,024 A100s (312 TFLOP/s dense bf16) at 40 % MFU."""

    gpus: int = 1024
    gpu_flops: float = 312e12  # peak FLOP/s of one GPU
    mfu: float = 0.4  # model FLOPs utilisation: the share of the peak a real run reaches


@dataclass(frozen=True)
class SizeReport:
    arch: Architecture
    breakdown: dict[str, int]
    tokens: float | None = None  # training tokens D, for the training arithmetic
    hardware: Hardware = Hardware()

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

    def kv_cache_per_token(self, dtype: str = "fp16") -> float:
        return self.kv_cache_bytes(tokens=1, dtype=dtype)

    def training_flops(self) -> float | None:
        """6 · N · D: forward (2·N·D) and backward (4·N·D) over D training tokens; None without tokens."""
        return 6.0 * self.total * self.tokens if self.tokens else None

    def petaflop_days(self) -> float | None:
        flops = self.training_flops()
        return flops / (1e15 * 86400) if flops else None

    def training_bytes(self, precision: str = "mixed") -> float:
        """Weights, gradients and Adam's two moments ("fp32" or "mixed"); activations not counted."""
        return self.total * sum(TRAINING_BYTES_PER_PARAM[precision].values())

    def training_seconds(self) -> float | None:
        """Wall-clock time on the report's hardware at its utilisation."""
        flops, hw = self.training_flops(), self.hardware
        return flops / (hw.gpus * hw.gpu_flops * hw.mfu) if flops else None

    def table(self) -> str:
        rows = [f"{'part':<22}{'parameters':>20}"]
        rows += [f"{k:<22}{v:>20,}" for k, v in self.breakdown.items()]
        rows.append(f"{'total':<22}{self.total:>20,}  ({human(self.total)})")
        rows.append("")
        rows += [f"{dtype:<6} weights {gb(self.bytes(dtype)):>12}" for dtype in BYTES_PER_PARAM]
        rows.append(f"KV cache at {self.arch.n_ctx} tokens, fp16: {gb(self.kv_cache_bytes())}")
        rows.append(f"KV cache per token, fp16: {self.kv_cache_per_token():,.0f} bytes ({gb(self.kv_cache_per_token())})")
        rows.append("")
        rows += self._training_rows()
        return "\n".join(rows)

    def _training_rows(self) -> list[str]:
        rows = ["Memory to train with Adam (activations not counted):"]
        for precision, parts in TRAINING_BYTES_PER_PARAM.items():
            detail = " + ".join(f"{name} {b}" for name, b in parts.items())
            rows.append(f"  {precision:<6} {sum(parts.values())} bytes/param ({detail}): {gb(self.training_bytes(precision))}")
        flops = self.training_flops()
        if flops is None:
            rows.append("Training compute: pass --tokens (e.g. --tokens 300B) to get 6 · N · D FLOPs and the time.")
            return rows
        hw = self.hardware
        rows.append(f"Training compute: 6 · N · D = 6 × {human(self.total)} params × {human(self.tokens)} tokens = {flops:.2e} FLOPs"
                    f" ({self.petaflop_days():,.0f} petaflop/s-days)")  # fmt: skip
        rows.append(f"Time on {hw.gpus:,} GPUs × {hw.gpu_flops / 1e12:,.0f} TFLOP/s at {hw.mfu:.0%} utilisation (MFU): "
                    f"{duration(self.training_seconds())} ({self.training_seconds() * hw.gpus / 3600:,.0f} GPU-hours)")  # fmt: skip
        return rows

    def _repr_pretty_(self, p, cycle):  # IPython display
        p.text(self.table())


def count(arch: Architecture, tokens: float | None = None, hardware: Hardware = Hardware()) -> SizeReport:
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
    return SizeReport(arch, parts, tokens, hardware)


def size(spec: str | None = None, *, tokens=None, gpus: int | None = None, mfu: float | None = None,
         gpu_flops=None, **dims) -> SizeReport:  # fmt: skip
    """``size("gpt3")`` or ``size(n_layer=96, n_head=96, head_dim=128)``.

    tokens: training tokens (a number or "300B", "1.4T"); a preset's published count by default.
    gpus, mfu, gpu_flops: the hardware for the training time (defaults: see Hardware).
    """
    hardware = Hardware(
        gpus=gpus or Hardware.gpus,
        gpu_flops=parse_count(gpu_flops, "--gpu-flops") if gpu_flops else Hardware.gpu_flops,
        mfu=Hardware.mfu if mfu is None else mfu,
    )
    if hardware.gpus < 1 or not 0 < hardware.mfu <= 1:
        raise UsageError("--gpus must be at least 1 and --mfu a fraction in (0, 1], e.g. --mfu 0.4.")
    tokens = parse_count(tokens, "--tokens") if tokens else None
    if spec:
        key = spec.lower()
        if key not in PRESETS:
            raise UsageError(f"No preset {spec!r}. Known: {', '.join(PRESETS)}. Or pass --layers, --heads and --head-dim.")
        arch = PRESETS[key]
        if dims:
            from dataclasses import replace

            arch = replace(arch, **dims)
        return count(arch, tokens or TRAINING_TOKENS.get(key), hardware)
    missing = [k for k in ("n_layer", "n_head", "head_dim") if not dims.get(k)]
    if missing:
        raise UsageError("Give a preset (gpt2, gpt3, llama2-7b, ...) or --layers, --heads and --head-dim.")
    return count(Architecture(**{k: v for k, v in dims.items() if v is not None}), tokens, hardware)


_SUFFIX = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}


def parse_count(value, option: str = "--tokens") -> float:
    """300e9, "300B", "1.4T", "2e12", "312T" -> a float."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace(",", "").replace("_", "")
    try:
        if text and text[-1].upper() in _SUFFIX:
            return float(text[:-1]) * _SUFFIX[text[-1].upper()]
        return float(text)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a number: write e.g. 300B, 1.4T or 3e11.") from None


def duration(seconds: float) -> str:
    if seconds >= 86400 * 365:
        return f"{seconds / (86400 * 365):,.1f} years"
    if seconds >= 86400:
        return f"{seconds / 86400:,.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:,.1f} hours"
    return f"{seconds / 60:,.1f} minutes"


def human(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(int(n))


def gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"
