"""Block, Encoder and Decoder: one forward pass, readable top to bottom.

    Decoder (Llama, GPT-2)                     Encoder (BERT, MiniLM)
    ids (B, T)                                 ids (B, T), token types, padding mask
    embed ─► (+ learned positions)             embed + positions + token types ─► LayerNorm
    n_layer x Block(pre-norm, causal)          n_layer x Block(post-norm, padding-masked)
    ln_final ─► unembed ─► logits (B, T, V)    hidden states (B, T, C) ─► mean pool ─► L2 normalise

Module names follow TransformerLens (`embed`, `blocks.3.attn`, `ln_final`,
`unembed`), so the capture names (`blocks.3.attn.hook_pattern`) are also the
paths of the modules that produce them. weights.py maps checkpoint names onto these.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import DecoderConfig, EncoderConfig
from .layers import (
    GELUMLP,
    LayerNorm,
    LearnedPositionalEmbedding,
    MultiHeadSelfAttention,
    RMSNorm,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    SwiGLUMLP,
    TokenEmbedding,
    padding_mask,
)


def make_norm(kind: str, n_embd: int, eps: float) -> nn.Module:
    return RMSNorm(n_embd, eps) if kind == "rmsnorm" else LayerNorm(n_embd, eps)


def make_positions(kind: str, max_positions: int, n_embd: int) -> nn.Module | None:
    """The additive position module, or None for rotary (which acts inside attention)."""
    if kind == "learned":
        return LearnedPositionalEmbedding(max_positions, n_embd)
    if kind == "sinusoidal":
        return SinusoidalPositionalEncoding(max_positions, n_embd)
    return None


class Block(nn.Module):
    """Attention then MLP, each wrapped in a norm and a residual add.

    pre-norm (GPT-2, Llama):  x = x + attn(ln1(x));  x = x + mlp(ln2(x))
    post-norm (BERT):         x = ln1(x + attn(x));  x = ln2(x + mlp(x))

    The residual stream x is the model's working memory: every block reads it
    and adds its contribution back.
    """

    def __init__(self, *, layer_idx, n_embd, n_head, n_kv_head, hidden, norm, eps, mlp, act, bias, causal, pre_norm,
                 qkv_bias=False):  # fmt: skip
        super().__init__()
        self.name = f"blocks.{layer_idx}"
        self.pre_norm = pre_norm
        self.ln1 = make_norm(norm, n_embd, eps)
        self.attn = MultiHeadSelfAttention(
            n_embd, n_head, n_kv_head, causal=causal, bias=bias, qkv_bias=qkv_bias, layer_idx=layer_idx
        )
        self.ln2 = make_norm(norm, n_embd, eps)
        self.mlp = SwiGLUMLP(n_embd, hidden, bias) if mlp == "swiglu" else GELUMLP(n_embd, hidden, bias, act)

    def forward(self, x, *, rope=None, start_pos=0, kv_cache=None, attn_mask=None, capture=None):
        """x (B, T, C) -> (B, T, C)."""
        attn_args = dict(rope=rope, start_pos=start_pos, kv_cache=kv_cache, attn_mask=attn_mask, capture=capture)
        if capture is not None:
            capture.record(f"{self.name}.hook_resid_pre", x)
        if self.pre_norm:
            x = x + self.attn(self.ln1(x), **attn_args)
            if capture is not None:
                capture.record(f"{self.name}.hook_resid_mid", x)
            x = x + self.mlp(self.ln2(x))
        else:
            x = self.ln1(x + self.attn(x, **attn_args))
            if capture is not None:
                capture.record(f"{self.name}.hook_resid_mid", x)
            x = self.ln2(x + self.mlp(x))
        if capture is not None:
            capture.record(f"{self.name}.hook_resid_post", x)
        return x


class Decoder(nn.Module):
    """A causal language model: ids -> next-token logits."""

    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.config = cfg = config
        self.embed = TokenEmbedding(cfg.vocab_size, cfg.n_embd)
        self.pos_embed = make_positions(cfg.positional_encoding, cfg.max_seq_len, cfg.n_embd)
        self.rotary = (
            RotaryEmbedding(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
            if cfg.positional_encoding == "rotary"
            else None
        )
        self.blocks = nn.ModuleList(
            Block(
                layer_idx=i,
                n_embd=cfg.n_embd,
                n_head=cfg.n_head,
                n_kv_head=cfg.n_kv_head,
                hidden=cfg.intermediate_size,
                norm=cfg.norm,
                eps=cfg.norm_eps,
                mlp=cfg.mlp,
                act=cfg.hidden_act,
                bias=cfg.bias,
                qkv_bias=cfg.qkv_bias,
                causal=True,
                pre_norm=True,
            )
            for i in range(cfg.n_layer)
        )
        self.ln_final = make_norm(cfg.norm, cfg.n_embd, cfg.norm_eps)
        self.unembed = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)  # (V, C): residual -> logits
        if cfg.tie_word_embeddings:
            self.unembed.weight = self.embed.weight  # one matrix reads tokens in and writes them out

    def forward(self, idx, *, start_pos=0, kv_cache=None, capture=None, last_only=False):
        """idx (B, T) token ids at positions start_pos .. start_pos+T-1 -> logits (B, T, V).

        kv_cache: keys/values of positions < start_pos, extended in place.
        capture: an ActivationCache to record activations into (forces the explicit path).
        last_only: compute logits only for the last position (all generation needs).
        """
        B, T = idx.shape
        x = self.embed(idx)  # (B, T, C)
        if capture is not None:
            capture.record("hook_embed", x)
        if self.pos_embed is not None:
            positions = torch.arange(start_pos, start_pos + T, device=idx.device)  # (T,)
            pos = self.pos_embed(positions)  # (T, C)
            if capture is not None:
                capture.record("hook_pos_embed", pos[None])
            x = x + pos  # (B, T, C)
        rope = self.rotary(start_pos, T) if self.rotary is not None else None  # (T, hs) each

        for block in self.blocks:
            x = block(x, rope=rope, start_pos=start_pos, kv_cache=kv_cache, capture=capture)  # (B, T, C)

        if last_only:
            x = x[:, -1:, :]  # (B, 1, C)
        x = self.ln_final(x)
        if capture is not None:
            capture.record("ln_final.hook_normalized", x)
        return self.unembed(x)  # (B, T, V)


class Encoder(nn.Module):
    """A bidirectional encoder: ids -> one contextual vector per token, and pooled sentence vectors."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = cfg = config
        self.embed = TokenEmbedding(cfg.vocab_size, cfg.n_embd)
        self.pos_embed = make_positions(cfg.positional_encoding, cfg.max_position_embeddings, cfg.n_embd)
        self.token_type_embed = TokenEmbedding(cfg.type_vocab_size, cfg.n_embd)  # sentence A / B
        self.ln_embed = LayerNorm(cfg.n_embd, cfg.layer_norm_eps)
        self.blocks = nn.ModuleList(
            Block(
                layer_idx=i,
                n_embd=cfg.n_embd,
                n_head=cfg.n_head,
                n_kv_head=cfg.n_head,
                hidden=cfg.intermediate_size,
                norm="layernorm",
                eps=cfg.layer_norm_eps,
                mlp="gelu",
                act=cfg.hidden_act,
                bias=True,
                causal=False,
                pre_norm=False,
            )
            for i in range(cfg.n_layer)
        )

    def forward(self, idx, attention_mask=None, token_type_ids=None, *, capture=None):
        """idx (B, T), attention_mask (B, T) of 1 for real tokens -> hidden states (B, T, C)."""
        B, T = idx.shape
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(idx)
        positions = torch.arange(T, device=idx.device)  # (T,)
        tok, pos, typ = self.embed(idx), self.pos_embed(positions), self.token_type_embed(token_type_ids)  # (B, T, C), (T, C), (B, T, C)
        if capture is not None:  # each part on its own, before the embedding LayerNorm (as TransformerLens)
            capture.record("hook_embed", tok)
            capture.record("hook_pos_embed", pos[None].expand_as(tok))
            capture.record("hook_token_type_embed", typ)
        x = self.ln_embed(tok + pos + typ)  # (B, T, C)
        if capture is not None:
            capture.record("embed.ln.hook_normalized", x)
        mask = padding_mask(attention_mask) if attention_mask is not None else None  # (B, 1, 1, T)
        for block in self.blocks:
            x = block(x, attn_mask=mask, capture=capture)  # (B, T, C)
        return x

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One vector per text, (B, T, C) -> (B, C): the mean of the real tokens' vectors (padding
        excluded), or the [CLS] vector for pooling="cls"; then L2-normalised."""
        if self.config.pooling == "cls":
            pooled = hidden[:, 0]  # (B, C)
        else:
            weights = attention_mask.to(hidden.dtype)[:, :, None]  # (B, T, 1)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)  # (B, C)
        return F.normalize(pooled, p=2, dim=-1) if self.config.normalize else pooled


def empty_model(config: DecoderConfig | EncoderConfig) -> Decoder | Encoder:
    """The model with its parameters on the meta device, for a checkpoint to fill (load_state_dict, assign=True).

    Building it for real would allocate and randomly initialise every weight only for the
    checkpoint to replace it: for a 0.5B model, 2.5 GB and seconds spent on nothing. The
    position tables are not in checkpoints, so they are computed for real.
    """
    with torch.device("meta"):
        module = Decoder(config) if isinstance(config, DecoderConfig) else Encoder(config)
    if getattr(module, "rotary", None) is not None:
        module.rotary = RotaryEmbedding(config.head_dim, config.max_seq_len, config.rope_theta)
    if isinstance(module.pos_embed, SinusoidalPositionalEncoding):
        module.pos_embed = SinusoidalPositionalEncoding(*module.pos_embed.weight.shape)
    return module
