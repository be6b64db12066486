"""Weight formats for speed, applied from outside the model (like torch.compile).

Decoding one token multiplies a single row vector by every weight matrix, so
its speed is set by how fast the weights stream from memory. Measured on the
2-core AMD EPYC this was written on (bench/bench_runtime.py reports it again):

* float32: F.linear streams a weight at ~11 GB/s for a single row (one thread
  does the whole matrix-vector product). `SplitLinear` cuts W into row blocks
  that torch.bmm gives one thread each: ~31-40 GB/s on every matrix of SmolLM2,
  in nn.Linear's own (out, in) layout, so nothing is copied and tied embeddings
  stay tied. (Storing Wᵀ instead reached ~20 GB/s, and doubled the tied matrix.)
* bfloat16: half the bytes (the whole model runs in bf16, as transformers' bf16 does).
* int8 weight-only, one scale per output row, through `torch._weight_int8pack_mm`
  (bf16 activations): a quarter of the bytes.
* q4: llama.cpp's own block formats, run by a small C kernel (kernels/blockq.c):
  4-bit codes with a scale and minimum per 32 weights (Q4_1), 5-bit codes
  likewise (Q5_1's layout; no minimum for Q5_0's, which is -16 times the scale)
  for a matrix 4 bits cannot hold exactly, or 8-bit codes
  with a scale (Q8_0) for one that 5 bits cannot hold either. Scales are float16, as
  llama.cpp's, where that holds a matrix's exactly, else float32. A GGUF's Q4_0/Q4_1/Q4_K,
  Q5_0/Q5_1 and Q8_0 tensors fit these exactly (kernels.pack_exact finds each block's
  step), so the weights are the float32 path's weights (Q6_K's are rounded to 8 bits:
  its blocks of 16 have two scales per 32 weights); activations stay float32, so greedy decoding follows the
  float32 path (tests/runtime/test_fast_decode.py measures how closely).
  About a fifth of the float32 bytes. Prefills (several rows) dequantize each
  matrix and run one matmul: in bfloat16 where the CPU multiplies bf16 in
  hardware (AMX, AVX512-BF16: 4-9x float32's matmul speed on one machine) and
  that is faster here (`native_bf16` times it), else in float32. A bf16 prefill rounds the prompt's activations and weights to 8
  bits of mantissa, so its KV cache differs slightly from float32's and greedy
  tokens can part on a near tie; `set_prefill(model, "float32")` keeps the
  prefill exact (bench_runtime.py --fast reports the agreement).
  `set_decode(model, "int8")` makes the decode products round x to int8 blocks
  and multiply integers, as llama.cpp does: 1.04-1.24x faster per SmolLM2 step
  on the machines measured, but greedy tokens can part from float32's, so
  float32 activations stay the default (docs/runtime_speed.md has the measurements).
  A q4 model's decode steps run as one C call each (fused.py), not module by module.

`prepare(model, dtype)` rewrites a Decoder or Encoder in place for one of
"float32", "bfloat16", "int8" or "q4". The model's own code is unchanged: these
modules compute what nn.Linear computes, from a different storage or schedule.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

DTYPES = ("float32", "bfloat16", "int8", "q4")


class SplitLinear(nn.Linear):
    """nn.Linear (same weight, same product) with a faster schedule for one row (a decode step).

    For a single row x, F.linear is a matrix-vector product that one thread runs
    alone, streaming W at ~11 GB/s here. Viewed as `splits` blocks of rows, W
    becomes a batch for torch.bmm, whose kernel streams a block at ~20 GB/s on one
    thread and gives each thread its own block:

        W (out, in) -> (splits, out/splits, in)     a view: no copy
        x (1, in)   -> xᵀ (in, 1), broadcast to (splits, in, 1)
        bmm         -> (splits, out/splits, 1) -> (1, out)

    Measured on SmolLM2's matrices: ~31-40 GB/s with 2 threads (one decode step
    ~22 ms instead of ~39), and still ~1.8x F.linear with one thread. xᵀ must be
    the transposed view of the row (strides (1, in)): the same shape built with
    .view() takes a slower BLAS path (7 GB/s). Several rows (a prefill, a batch
    of sentences) go through F.linear: matrix-matrix products are threaded already.

    That was the AMD EPYC this was written on. On an Intel CPU with MKL (2026-12-01)
    F.linear's own matrix-vector product is threaded and the bmm schedule halved
    decode speed (SmolLM2: 14.8 against 33.6 tok/s). So the schedule is measured,
    once per process and thread count, on weights too large for the caches
    (`split_wins`), and a single row takes whichever is faster here.
    """

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "SplitLinear":
        new = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, device="meta")
        new.weight, new.bias = linear.weight, linear.bias  # the same Parameters: ties survive
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        splits = max(2, torch.get_num_threads())  # one block per thread (with one thread, bmm still beats F.linear)
        if x.numel() != self.in_features or self.out_features % splits or not self.weight.is_contiguous():
            return F.linear(x, self.weight, self.bias)
        if not split_wins(torch.get_num_threads()):
            return F.linear(x, self.weight, self.bias)
        y = split_matvec(self.weight, x, splits)
        return y + self.bias if self.bias is not None else y


def split_matvec(weight: torch.Tensor, x: torch.Tensor, splits: int) -> torch.Tensor:
    """x (..., in) holding one row, times Wᵀ, as a bmm over `splits` row blocks of W (see SplitLinear)."""
    out, inp = weight.shape
    blocks = weight.view(splits, out // splits, inp)  # (splits, out/splits, in)
    column = x.reshape(1, inp).mT.expand(splits, -1, -1)  # (splits, in, 1), strides (0, 1, in)
    return torch.bmm(blocks, column).view(*x.shape[:-1], out)  # (..., out)


@functools.cache
def split_wins(threads: int) -> bool:
    """True when SplitLinear's bmm schedule beats F.linear for one row on this machine at `threads`.

    Measured once per process and thread count (~0.2 s): 24 matrices of SmolLM2's gate/up
    shape (85 MB, more than the caches hold, as decoding streams its weights from memory),
    each schedule over all of them, the best of 3 passes.
    """
    import time

    weights = [torch.full((1536, 576), 0.01) for _ in range(24)]
    x = torch.full((1, 1, 576), 0.5)
    splits = max(2, threads)

    def best(product) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            for w in weights:
                product(w)
            times.append(time.perf_counter() - t0)
        return min(times)

    with torch.no_grad():
        split = best(lambda w: split_matvec(w, x, splits))
        plain = best(lambda w: F.linear(x, w))
    return split < plain


class Int8Linear(nn.Module):
    """Weight-only int8: W ≈ scale[:, None] * W_int8, one bfloat16 scale per output row."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float()  # (out, in)
        scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127.0  # (out,): the row's largest weight maps to ±127
        self.register_buffer("weight_int8", (w / scale[:, None]).round().clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features).to(torch.bfloat16)  # (N, in)
        y = torch._weight_int8pack_mm(x2, self.weight_int8, self.scale)  # (N, out), dequantized on the fly
        y = y.to(x.dtype).reshape(*lead, self.out_features)
        return y + self.bias if self.bias is not None else y


class BlockQuantLinear(nn.Module):
    """nn.Linear on block-quantized weights: q4 or q5 where that is exact, q8 otherwise (see kernels/).

    One to `MAX_KERNEL_ROWS` rows (decoding) go through the C kernel, which reads the codes
    directly; more rows (a prefill) dequantize W and run one matmul in `prefill_dtype`
    (bfloat16 where the CPU multiplies it natively, else float32; see `set_prefill`).
    """

    MAX_KERNEL_ROWS = 4

    def __init__(self, linear: nn.Linear):
        super().__init__()
        from . import kernels

        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float()  # (out, in)
        codes, scales, mins = kernels.pack_q4(w)
        rebuilt = kernels.q4_dequantize(codes, scales, mins, torch.get_num_threads())
        self.kind = "q4"
        if (rebuilt - w).abs().max() > 1e-5 * w.abs().max():  # not Q4_1-like: blocks whose codes skip 0 or 15?
            # Q5_0 first: no mins to store (-16 * scales), and found in a tenth of pack_exact's time
            # (on Qwen2.5-0.5B's 60 such matrices, that search was half of the q4 preparation)
            q5_0 = kernels.pack_q5_0(w)
            exact = ("q5", *q5_0, torch.empty(0, dtype=torch.float16)) if q5_0 is not None else kernels.pack_exact(w)
            if exact is not None:
                self.kind, codes, scales, mins = exact
            else:
                self.kind = "q8"
                codes, scales = kernels.pack_q8(w)
                mins = torch.empty(0)
        self.register_buffer("codes", codes)
        self.register_buffer("scales", scales)
        self.register_buffer("mins", mins)
        self.half_scales = scales.dtype == torch.float16  # float16 holds every scale and min exactly
        self.bias = linear.bias
        self.prefill_dtype = _PREFILL["auto"]()
        self.decode_int8 = _DECODE[DEFAULT_DECODE]()

    @property
    def decode_int8(self) -> bool:
        """Whether the decode products round x to int8 blocks (`set_decode`)."""
        return self._decode_int8

    @decode_int8.setter
    def decode_int8(self, value: bool) -> None:
        # The scales follow the products: the int8 ones read float16 scales at no cost, and the bytes
        # saved make them faster; the float32 ones convert each block's on the way and ran 15-22 %
        # slower with them on SmolLM2 (bench/results_fp16_scales.md), so they get float32 copies.
        # Either way the values are the same: float32 holds every float16.
        self._decode_int8 = bool(value)
        dtype = torch.float16 if self._decode_int8 and self.half_scales else torch.float32
        self.scales, self.mins = self.scales.to(dtype), self.mins.to(dtype)

    @classmethod
    def fits(cls, linear: nn.Linear) -> bool:
        return linear.in_features % 32 == 0

    def dequantize(self, threads: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        from . import kernels

        if self.kind == "q4":
            return kernels.q4_dequantize(self.codes, self.scales, self.mins, threads, dtype)
        if self.kind == "q5":
            return kernels.q5_dequantize(self.codes, self.scales, self.mins, threads, dtype)
        return kernels.q8_dequantize(self.codes, self.scales, threads, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from . import kernels

        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features).float().contiguous()  # (M, in)
        threads = torch.get_num_threads()
        if x2.shape[0] > self.MAX_KERNEL_ROWS:  # a prefill: one matmul, float32 out either way
            y = F.linear(x2.to(self.prefill_dtype), self.dequantize(threads, self.prefill_dtype)).float()
        elif self.kind == "q4":
            matmul = kernels.q4_matmul_q8x if self.decode_int8 else kernels.q4_matmul
            y = matmul(x2, self.codes, self.scales, self.mins, threads)
        elif self.kind == "q5":
            matmul = kernels.q5_matmul_q8x if self.decode_int8 else kernels.q5_matmul
            y = matmul(x2, self.codes, self.scales, self.mins, threads)
        else:
            matmul = kernels.q8_matmul_q8x if self.decode_int8 else kernels.q8_matmul
            y = matmul(x2, self.codes, self.scales, threads)
        y = y.view(*lead, self.out_features).to(x.dtype)
        return y + self.bias if self.bias is not None else y


def _replace_linears(module: nn.Module, make) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            replacement = make(child)
            if replacement is not None:
                setattr(module, name, replacement)
        else:
            _replace_linears(child, make)


@functools.cache
def native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware (Intel AMX or AVX512-BF16) and, measured
    here once per process, faster than float32.

    Where it is, a bf16 matmul runs 2-3x faster than float32 (MiniLM at ingest: 17,296 word pieces/s
    against 8,003, bench/results_ingest.md); elsewhere oneDNN emulates bf16 and it is slower. Having
    the units is not enough: on an Intel Xeon with AVX512-BF16 but no AMX (2026-12-02) a prefill-sized
    bf16 matmul took 12.9 ms against float32's 8.1, and a SmolLM2 q4 prefill ran at 0.65x
    transformers'. So both are timed (~50 ms, `bf16_matmul_wins`).
    """
    cpu = torch.cpu
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks) and bf16_matmul_wins()


def bf16_matmul_wins() -> bool:
    """Whether a prefill-sized matmul (256 x 576 times 576 x 1536) is faster in bfloat16 than in
    float32 here, at the current thread count: the best of 3 runs of each."""
    import time

    x, w = torch.full((256, 576), 0.5), torch.full((1536, 576), 0.01)

    def best(dtype) -> float:
        a, b = x.to(dtype), w.to(dtype)
        F.linear(a, b)  # warm-up: oneDNN picks its kernel on the first call
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            F.linear(a, b)
            times.append(time.perf_counter() - t0)
        return min(times)

    with torch.no_grad():
        return best(torch.bfloat16) < best(torch.float32)


#: A q4 prefill's matmul dtype by name; "auto" is bf16 where the CPU multiplies it natively.
_PREFILL = {
    "float32": lambda: torch.float32,
    "bfloat16": lambda: torch.bfloat16,
    "auto": lambda: torch.bfloat16 if native_bf16() else torch.float32,
}


def set_prefill(model: nn.Module, dtype: str = "auto") -> int:
    """The dtype of a q4 model's prefill matmuls: "float32" (exact), "bfloat16", or "auto" (bf16 where
    the CPU multiplies it natively). Returns how many layers it set (0: not a q4 model)."""
    return _set_layers(model, "prefill_dtype", _PREFILL, dtype, "prefill dtype")


def _set_layers(model: nn.Module, attribute: str, choices: dict, name: str, what: str) -> int:
    """Set ``attribute`` of every q4/q8 layer to ``choices[name]()``; how many layers it set."""
    if name not in choices:
        raise ValueError(f"Unknown {what} {name!r}. Choose one of: {', '.join(choices)}.")
    layers = [m for m in model.modules() if isinstance(m, BlockQuantLinear)]
    for m in layers:
        setattr(m, attribute, choices[name]())
    if hasattr(model, "_fused_step"):
        model._fused_step = None  # fused.py built its step with the old settings
    return len(layers)


def _int8_dot_native() -> bool:
    from . import kernels

    return kernels.int8_dot_native()


#: Whether a q4 model's decode products round x to int8 blocks (kernels/blockq.c), by name;
#: "auto" does where the CPU has AVX512-VNNI or AVX2 (elsewhere plain C computes the same sums, slower).
_DECODE = {"float32": lambda: False, "int8": lambda: True, "auto": _int8_dot_native}
DEFAULT_DECODE = "float32"


def set_decode(model: nn.Module, activations: str = DEFAULT_DECODE) -> int:
    """The activations of a q4 model's decode products: "float32" (exact), "int8" (x rounded to int8
    blocks of 32, integer dot products), or "auto" (int8 where the CPU has AVX512-VNNI or AVX2).
    Returns how many layers it set (0: not a q4 model)."""
    return _set_layers(model, "decode_int8", _DECODE, activations, "decode activations")


def prepare(model: nn.Module, dtype: str = "float32") -> nn.Module:
    """Rewrite the model's linear layers for fast inference in `dtype` (in place; returns the model)."""
    if dtype not in DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}. Choose one of: {', '.join(DTYPES)}.")
    model.eval().requires_grad_(False)
    if dtype == "float32":
        _replace_linears(model, SplitLinear.from_linear)
    elif dtype == "bfloat16":
        model.to(torch.bfloat16)
        rotary = getattr(model, "rotary", None)
        if rotary is not None:  # keep the rotation tables exact: bf16 angles drift at long positions
            rotary.cos, rotary.sin = rotary.cos.float(), rotary.sin.float()
    elif dtype == "int8":
        _replace_linears(model, Int8Linear)
    elif dtype == "q4":
        from . import kernels

        if not kernels.available():  # no C compiler: the closest torch path
            return prepare(model, "int8")
        _replace_linears(model, lambda linear: BlockQuantLinear(linear) if BlockQuantLinear.fits(linear) else None)
        model.fused_decode = True  # decode steps in one C call where fused.py supports the model
    return model
