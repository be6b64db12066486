"""The parts of a transformer, in the order data meets them.

    token ids ─► TokenEmbedding ─► + positions ─► [ norm, attention, + residual,
                                                    norm, MLP,       + residual ] x n_layer ─► norm ─► logits

Shape letters used in the comments:
    B batch, T query positions, S key positions (T + what the KV cache holds),
    C n_embd, nh query heads, nkv key/value heads, hs head size (C // nh), I MLP width.

Every module here is small and does one thing. The attention module has two
paths that compute the same numbers: a fused `scaled_dot_product_attention`
(fast) and the explicit softmax(q·kᵀ/√hs)·v (readable, and the one that can
hand its attention pattern to a capture).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ─── embeddings and positions ──────────────────────────────────────────────────


class TokenEmbedding(nn.Module):
    """A lookup table: token id -> a learned vector of width C."""

    def __init__(self, vocab_size: int, n_embd: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(vocab_size, n_embd))  # (vocab, C)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.weight)  # (B, T) -> (B, T, C)


class LearnedPositionalEmbedding(nn.Module):
    """BERT and GPT-2: one learned vector per absolute position, added to the token vector."""

    def __init__(self, max_positions: int, n_embd: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(max_positions, n_embd))  # (max_pos, C)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return F.embedding(positions, self.weight)  # (T,) -> (T, C)


class SinusoidalPositionalEncoding(nn.Module):
    """The original paper's fixed encoding (Vaswani et al. 2017, section 3.5):

        PE[pos, 2i]   = sin(pos / 10000^(2i / C))
        PE[pos, 2i+1] = cos(pos / 10000^(2i / C))

    No parameters: nearby positions get similar vectors and any offset is a
    linear function of the encoding, which lets attention learn relative position.
    """

    def __init__(self, max_positions: int, n_embd: int, base: float = 10000.0):
        super().__init__()
        position = torch.arange(max_positions, dtype=torch.float32)[:, None]  # (max_pos, 1)
        inv_freq = base ** (-torch.arange(0, n_embd, 2, dtype=torch.float32) / n_embd)  # (C/2,)
        table = torch.zeros(max_positions, n_embd)
        table[:, 0::2] = torch.sin(position * inv_freq)  # even channels
        table[:, 1::2] = torch.cos(position * inv_freq)  # odd channels
        self.register_buffer("weight", table, persistent=False)  # (max_pos, C)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.weight[positions]  # (T,) -> (T, C)


class RotaryEmbedding(nn.Module):
    """Llama's rotary position embedding (RoPE, Su et al. 2021).

    Instead of adding a vector to the residual stream, each query and key is
    rotated by an angle proportional to its position: channel pairs (j, j+hs/2)
    turn by pos * theta^(-2j/hs). The dot product q·k then depends only on the
    distance between the two positions. This is the "rotate_half" layout that
    Hugging Face checkpoints use (GGUF files store q/k rows permuted for
    llama.cpp's interleaved layout; weights.py undoes that).
    """

    def __init__(self, head_dim: int, max_positions: int, base: float):
        super().__init__()
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim)  # (hs/2,)
        angles = torch.outer(torch.arange(max_positions).float(), inv_freq)  # (max_pos, hs/2)
        angles = torch.cat((angles, angles), dim=-1)  # (max_pos, hs): pair j with j + hs/2
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, start_pos: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin for positions start_pos .. start_pos+length-1, each (T, hs): they broadcast over (B, heads, T, hs)."""
        cos = self.cos[start_pos : start_pos + length]  # (T, hs)
        sin = self.sin[start_pos : start_pos + length]
        return cos, sin


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (j, j + hs/2) channel pair of x (B, heads, T, hs) by the position's angle."""
    if cos.dtype != x.dtype:  # bf16 models keep float32 tables (see quantize.py)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)  # (..., hs/2) each
    rotated_half = torch.cat((-x2, x1), dim=-1)  # (x1, x2) -> (-x2, x1)
    return x * cos + rotated_half * sin


# ─── normalisation ────────────────────────────────────────────────────────────


class LayerNorm(nn.Module):
    """(x - mean) / sqrt(var + eps) * weight + bias, over the last dimension (BERT, GPT-2)."""

    def __init__(self, n_embd: int, eps: float, bias: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_embd))
        self.bias = nn.Parameter(torch.zeros(n_embd)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) * weight (Llama): LayerNorm without centring or bias.

    Computed in float32 even for bfloat16 models, as the reference does.
    """

    def __init__(self, n_embd: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_embd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)  # (B, T, C); one fused kernel, no copy for float32
        return self.weight * normed.to(x.dtype)


# ─── attention ────────────────────────────────────────────────────────────────


class SingleHeadSelfAttention(nn.Module):
    """One attention head, written out in full. The multi-head module below runs
    n_head of these side by side (and then mixes their outputs with one matrix).

        q = x Wq    (T, C) @ (C, hs) -> (T, hs)   what each token is looking for
        k = x Wk    (T, C) @ (C, hs) -> (T, hs)   what each token offers
        v = x Wv    (T, C) @ (C, hs) -> (T, hs)   what each token passes on if chosen
        pattern = softmax(q kᵀ / √hs)  (T, T)      row t: how much token t takes from each token
        out = pattern v                (T, hs)
    """

    def __init__(self, n_embd: int, head_size: int, causal: bool = False, bias: bool = True):
        super().__init__()
        self.causal = causal
        self.query = nn.Linear(n_embd, head_size, bias=bias)
        self.key = nn.Linear(n_embd, head_size, bias=bias)
        self.value = nn.Linear(n_embd, head_size, bias=bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, C) -> (output (B, T, hs), pattern (B, T, T))."""
        q, k, v = self.query(x), self.key(x), self.value(x)  # each (B, T, hs)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, T, T)
        if self.causal:
            T = x.shape[1]
            scores = scores.masked_fill(~causal_mask(T, T, x.device), float("-inf"))
        pattern = scores.softmax(dim=-1)  # (B, T, T), rows sum to 1
        return pattern @ v, pattern  # (B, T, hs)


def causal_mask(T: int, S: int, device=None) -> torch.Tensor:
    """Boolean (T, S) mask, True where query t may see key s.

    The T queries are the last T of the S positions, so with a KV cache holding
    S - T earlier tokens, query t sees keys 0 .. S - T + t.
    """
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, S) 1/0 mask of real tokens -> boolean (B, 1, 1, S), broadcast over heads and queries."""
    return attention_mask.bool()[:, None, None, :]


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention, with grouped-query attention and a KV cache.

    Projections, for C = n_embd, hs = C / nh:
        q: C -> nh  * hs    one query per head
        k: C -> nkv * hs    keys and values have nkv <= nh heads; with nkv < nh
        v: C -> nkv * hs    (grouped-query attention) nh / nkv query heads share one
                            key/value head, which shrinks the KV cache by that factor
        out: nh * hs -> C   mixes the heads' outputs back into the residual stream
    The three input projections are stored as one matrix `qkv`, (nh + 2 nkv) * hs rows,
    so one matrix multiply computes them all (nanoGPT's `c_attn` does the same).
    `bias` puts biases on every projection (GPT-2, BERT); `qkv_bias` on q/k/v only (Qwen2).
    """

    def __init__(self, n_embd, n_head, n_kv_head, *, causal, bias, qkv_bias=False, layer_idx=0, max_positions=0):
        super().__init__()
        assert n_embd % n_head == 0 and n_head % n_kv_head == 0
        self.n_head, self.n_kv_head, self.head_dim = n_head, n_kv_head, n_embd // n_head
        self.causal = causal
        self.layer_idx = layer_idx
        self.name = f"blocks.{layer_idx}.attn"  # prefix of this layer's capture names
        self.qkv = nn.Linear(n_embd, (n_head + 2 * n_kv_head) * self.head_dim, bias=bias or qkv_bias)
        self.out = nn.Linear(n_head * self.head_dim, n_embd, bias=bias)
        self.use_sdpa = True  # False: always take the explicit path

    def forward(self, x, *, rope=None, start_pos=0, kv_cache=None, attn_mask=None, capture=None):
        """x (B, T, C) -> (B, T, C).

        rope: (cos, sin) for these T positions, or None.
        kv_cache: holds keys and values of earlier positions; this call appends T more.
        attn_mask: boolean (B, 1, 1, S) padding mask, True = attend.
        capture: an ActivationCache; when given, the explicit path records q, k, v and the pattern.
        """
        B, T, C = x.shape
        nh, nkv, hs = self.n_head, self.n_kv_head, self.head_dim

        qkv = self.qkv(x).view(B, T, nh + 2 * nkv, hs).transpose(1, 2)  # (B, nh + 2 nkv, T, hs): heads first
        if capture is not None:  # TransformerLens's names and layout: (B, pos, head, d_head), before rotary
            capture.record(f"{self.name}.hook_q", qkv[:, :nh].transpose(1, 2))  # (B, T, nh, hs)
            capture.record(f"{self.name}.hook_k", qkv[:, nh : nh + nkv].transpose(1, 2))  # (B, T, nkv, hs): kv heads, not repeated
            capture.record(f"{self.name}.hook_v", qkv[:, nh + nkv :].transpose(1, 2))  # (B, T, nkv, hs)
        qk, v = qkv.split([nh + nkv, nkv], dim=1)  # (B, nh + nkv, T, hs), (B, nkv, T, hs)
        if rope is not None:  # rotate queries and keys together: they share positions
            qk = apply_rotary(qk, *rope)
            if capture is not None:
                capture.record(f"{self.name}.hook_rot_q", qk[:, :nh].transpose(1, 2))  # (B, T, nh, hs), after rotary
                capture.record(f"{self.name}.hook_rot_k", qk[:, nh:].transpose(1, 2))  # (B, T, nkv, hs), after rotary
        q, k = qk.split([nh, nkv], dim=1)  # (B, nh, T, hs), (B, nkv, T, hs); split, not slices: its backward is one cat

        if kv_cache is not None:  # append, then attend over everything cached so far
            k, v = kv_cache.update(self.layer_idx, start_pos, k, v)  # (B, nkv, S, hs)
        S = k.shape[2]

        if capture is None and self.use_sdpa:
            # Fast path: one fused kernel computes softmax(q kᵀ/√hs + mask) v. Over a whole
            # unpadded sequence (training, a first prefill) the mask is the plain causal
            # triangle: the kernel's own is_causal skips it, and no (T, S) mask is built.
            if self.causal and T > 1 and S == T and attn_mask is None:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=nkv != nh)  # (B, nh, T, hs)
            else:
                mask = self.visible(attn_mask, T, S, x.device)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=nkv != nh)  # (B, nh, T, hs)
        else:
            y = self.explicit_attention(q, k, v, self.visible(attn_mask, T, S, x.device), capture)  # (B, nh, T, hs)

        y = y.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, nh * hs): heads side by side
        return self.out(y)  # (B, T, C)

    def visible(self, attn_mask, T, S, device):
        """Which keys each query may see: boolean, broadcastable to (B, nh, T, S), or None for all.

        The padding mask, and for a causal model the triangle. One query at the end of
        the sequence (a decode step) may see everything, so it needs no triangle.
        """
        if not self.causal or T == 1:
            return attn_mask
        causal = causal_mask(T, S, device)  # (T, S)
        return causal if attn_mask is None else attn_mask & causal

    def explicit_attention(self, q, k, v, mask, capture):
        """softmax(q kᵀ / √hs) v, one step at a time, recording what a capture asks for."""
        group = self.n_head // self.n_kv_head
        k = k.repeat_interleave(group, dim=1)  # (B, nh, S, hs): each kv head serves `group` query heads
        v = v.repeat_interleave(group, dim=1)  # (B, nh, S, hs)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, nh, T, S)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        pattern = scores.float().softmax(dim=-1).to(q.dtype)  # (B, nh, T, S), each row sums to 1
        if capture is not None:  # (hook_q/k/v were recorded in forward, before rotary and before repeating)
            capture.record(f"{self.name}.hook_attn_scores", scores)  # (B, nh, T, S), masked = -inf
            capture.record(f"{self.name}.hook_pattern", pattern)  # (B, nh, T, S)
        return pattern @ v  # (B, nh, T, hs)


# ─── MLPs ─────────────────────────────────────────────────────────────────────


class GELUMLP(nn.Module):
    """BERT and GPT-2: widen to I, GELU, narrow back to C."""

    def __init__(self, n_embd: int, hidden: int, bias: bool = True, act: str = "gelu"):
        super().__init__()
        self.up = nn.Linear(n_embd, hidden, bias=bias)
        self.down = nn.Linear(hidden, n_embd, bias=bias)
        # "gelu_new" (GPT-2) is the tanh approximation; "gelu" (BERT) the exact erf form.
        self.approximate = "tanh" if act in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast") else "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.up(x), approximate=self.approximate)  # (B, T, I)
        return self.down(h)  # (B, T, C)


class SwiGLUMLP(nn.Module):
    """Llama: a gated MLP. down(silu(gate(x)) * up(x)).

    `gate_up` stores the gate and up projections as one (2I, C) matrix.
    """

    def __init__(self, n_embd: int, hidden: int, bias: bool = False):
        super().__init__()
        self.gate_up = nn.Linear(n_embd, 2 * hidden, bias=bias)
        self.down = nn.Linear(hidden, n_embd, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)  # (B, T, I) each
        return self.down(F.silu(gate) * up)  # (B, T, C)
