"""A q4 model's decode step in one C call (kernels/step.c), applied from outside like quantize.py.

Decoding one token through Decoder.forward dispatches ~150 small torch operations per
layer (norms, views, rotary, the cache write, attention, residual adds) from Python. On
SmolLM2 that was about half of a step: 13 of 23-26 ms, with the weight products, the part
that has to stream memory, taking the rest. `FusedDecodeStep` runs the same arithmetic
(step.c lists it, layer by layer) in C over the same tensors: the q4/q8 codes of each
BlockQuantLinear, the norms' weights, the rotary tables and the generation's KV cache,
which the prefill (still Decoder.forward) has filled.

It applies to the models it can compute exactly as Decoder.forward does: q4-prepared,
pre-norm RMSNorm + rotary + SwiGLU, no biases except on q/k/v (Llama, SmolLM2, Qwen2), in
float32. Anything else, and any step that records activations, keeps the module path.
`model.fused_decode = False` switches it off for a model (quantize.prepare sets it True).
"""

from __future__ import annotations

import ctypes

import torch

from . import kernels
from .quantize import BlockQuantLinear

P, I = ctypes.c_void_p, ctypes.c_int


class _QLinear(ctypes.Structure):
    _fields_ = [("kind", I), ("int8_x", I), ("half", I), ("n", I), ("k", I), ("codes", P), ("d", P), ("m", P), ("bias", P)]


class _QLayer(ctypes.Structure):
    _fields_ = [("ln1", P), ("ln2", P), ("qkv", _QLinear), ("out", _QLinear), ("gate_up", _QLinear), ("down", _QLinear)]


class _QModel(ctypes.Structure):
    _fields_ = [
        ("n_layer", I), ("n_embd", I), ("n_head", I), ("n_kv_head", I), ("head_dim", I), ("hidden", I),
        ("eps", ctypes.c_float), ("layers", ctypes.POINTER(_QLayer)), ("cos", P), ("sin", P),
        ("ln_final", P), ("unembed", _QLinear),
    ]  # fmt: skip


def _ptr(tensor: torch.Tensor | None, dtype: torch.dtype = torch.float32) -> int | None:
    if tensor is None:
        return None
    assert tensor.dtype == dtype and tensor.is_contiguous()
    return tensor.data_ptr()


def _qlinear(layer: BlockQuantLinear) -> _QLinear:
    scale_dtype = layer.scales.dtype  # float16 where that holds the matrix's scales and mins, else float32
    return _QLinear(
        kind={"q4": 0, "q8": 1, "q5": 2}[layer.kind],
        int8_x=int(layer.decode_int8),
        half=int(scale_dtype == torch.float16),
        n=layer.out_features,
        k=layer.in_features,
        codes=layer.codes.data_ptr(),
        d=_ptr(layer.scales, scale_dtype),
        m=_ptr(layer.mins, scale_dtype) if layer.mins.numel() else None,  # none: q8, or Q5_0's (-16 * d)
        bias=_ptr(layer.bias),
    )


def supported(model) -> str | None:
    """None when `FusedDecodeStep` computes this model's decode step, else why not."""
    cfg = getattr(model, "config", None)
    if cfg is None or not hasattr(model, "blocks") or getattr(model, "rotary", None) is None:
        return "not a rotary decoder"
    if cfg.norm != "rmsnorm" or cfg.mlp != "swiglu" or cfg.bias or model.pos_embed is not None:
        return "not a Llama-style decoder (RMSNorm, rotary, SwiGLU, no biases but q/k/v)"
    if model.embed.weight.dtype != torch.float32:
        return "not float32 activations"
    if not kernels.available():
        return "no C kernels"
    for block in model.blocks:
        parts = (block.attn.qkv, block.attn.out, block.mlp.gate_up, block.mlp.down)
        if not all(isinstance(p, BlockQuantLinear) for p in parts) or block.attn.out.bias is not None:
            return "not q4-prepared"
    if not isinstance(model.unembed, BlockQuantLinear):
        return "not q4-prepared"
    return None


class FusedDecodeStep:
    """step(token, pos, cache, threads) -> logits (V,), as model(ids=[[token]], start_pos=pos, kv_cache=cache)[0, -1].

    Reads the layers' settings (set_decode's int8 or float32 activations) when built; build a
    new one after changing them (`for_model` does, since quantize clears the model's).
    """

    def __init__(self, model):
        why = supported(model)
        if why is not None:
            raise ValueError(f"No fused decode step for this model: {why}.")
        cfg = model.config
        self.model = model
        self.vocab = model.unembed.out_features
        layers = (_QLayer * cfg.n_layer)()
        for layer, block in zip(layers, model.blocks):
            layer.ln1, layer.ln2 = _ptr(block.ln1.weight), _ptr(block.ln2.weight)
            layer.qkv, layer.out = _qlinear(block.attn.qkv), _qlinear(block.attn.out)
            layer.gate_up, layer.down = _qlinear(block.mlp.gate_up), _qlinear(block.mlp.down)
        self._layers = layers  # keep the array alive: the model struct points into it
        self._model = _QModel(
            n_layer=cfg.n_layer,
            n_embd=cfg.n_embd,
            n_head=cfg.n_head,
            n_kv_head=cfg.n_kv_head,
            head_dim=cfg.head_dim,
            hidden=cfg.intermediate_size,
            eps=model.blocks[0].ln1.eps,
            layers=layers,
            cos=_ptr(model.rotary.cos),
            sin=_ptr(model.rotary.sin),
            ln_final=_ptr(model.ln_final.weight),
            unembed=_qlinear(model.unembed),
        )
        self._max_positions = model.rotary.cos.shape[0]

    def __call__(self, token: int, pos: int, cache, threads: int | None = None) -> torch.Tensor:
        """The next token's logits (V,) after `token` at position `pos`; writes that position into `cache`."""
        k, v = cache.k, cache.v  # (n_layer, 1, nkv, max_len, hs)
        if k.shape[1] != 1 or k.dtype != torch.float32 or not (k.is_contiguous() and v.is_contiguous()):
            raise ValueError("The fused step takes one sequence's float32 KV cache.")
        if not 0 <= pos < min(cache.max_len, self._max_positions):
            raise ValueError(f"Position {pos} is outside the KV cache ({cache.max_len} positions).")
        x = self.model.embed.weight[token].clone()  # (C,): the step writes the residual stream into it
        logits = torch.empty(self.vocab)
        kernels.decode_step(ctypes.addressof(self._model), x, logits, k, v, pos, cache.max_len,
                            threads or torch.get_num_threads())  # fmt: skip
        return logits


def for_model(model) -> FusedDecodeStep | None:
    """The model's fused step, built once and kept on it; None where it does not apply or is switched off."""
    if not getattr(model, "fused_decode", False):
        return None
    step = getattr(model, "_fused_step", None)
    if step is None:
        if supported(model) is not None:
            return None
        step = FusedDecodeStep(model)
        model._fused_step = step
    return step
