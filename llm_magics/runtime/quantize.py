"""Weight formats for speed, applied from outside the model (like torch.compile).

Decoding one token multiplies a single row vector by every weight matrix, so
its speed is set by how fast the weights stream from memory. Measured on the
2-core AMD EPYC this was written on (bench/bench_runtime.py reports it again):

* float32, weight stored (out, in) as nn.Linear keeps it: ~11 GB/s;
  the same product with the weight stored (in, out): ~19 GB/s for wide layers.
  `TransposedLinear` keeps that layout -- same numbers, fewer milliseconds.
* bfloat16: half the bytes (the whole model runs in bf16, as transformers' bf16 does).
* int8 weight-only, one scale per output row, through `torch._weight_int8pack_mm`
  (bf16 activations): a quarter of the bytes.

`prepare(model, dtype)` rewrites a Decoder or Encoder in place for one of
"float32", "bfloat16" or "int8". The model's own code is unchanged: these
modules compute what nn.Linear computes, from a different storage.
"""

from __future__ import annotations

import torch
from torch import nn

DTYPES = ("float32", "bfloat16", "int8")


class TransposedLinear(nn.Module):
    """y = x Wᵀ + b, with Wᵀ stored contiguously as (in, out)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight_t = nn.Parameter(linear.weight.detach().t().contiguous(), requires_grad=False)  # (in, out)
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.weight_t  # (..., in) @ (in, out) -> (..., out)
        return y + self.bias if self.bias is not None else y


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


def _replace_linears(module: nn.Module, make) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            replacement = make(child)
            if replacement is not None:
                setattr(module, name, replacement)
        else:
            _replace_linears(child, make)


def prepare(model: nn.Module, dtype: str = "float32") -> nn.Module:
    """Rewrite the model's linear layers for fast inference in `dtype` (in place; returns the model)."""
    if dtype not in DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}. Choose one of: {', '.join(DTYPES)}.")
    model.eval().requires_grad_(False)
    if dtype == "float32":
        # Wide layers (out >= in) stream faster transposed; narrow ones are fastest as they are.
        _replace_linears(model, lambda lin: TransposedLinear(lin) if lin.out_features >= lin.in_features else None)
    elif dtype == "bfloat16":
        model.to(torch.bfloat16)
        rotary = getattr(model, "rotary", None)
        if rotary is not None:  # keep the rotation tables exact: bf16 angles drift at long positions
            rotary.cos, rotary.sin = rotary.cos.float(), rotary.sin.float()
    elif dtype == "int8":
        _replace_linears(model, Int8Linear)
    return model
