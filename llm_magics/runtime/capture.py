"""Looking inside: activations under TransformerLens names.

A forward pass given a `capture` takes the explicit attention path, and every
module records what it computed. The names mean what they mean in TransformerLens
(T: positions of this pass, S: positions attended to, C: d_model, nh: query heads,
nkv: key/value heads (nkv < nh for grouped-query attention), hs: d_head):

    name                                  shape           what
    hook_embed                            (T, C)          token embeddings (encoder: before the embedding LayerNorm)
    hook_pos_embed                        (T, C)          learned position embeddings (GPT-2, BERT; none with rotary)
    hook_token_type_embed                 (T, C)          segment A/B embeddings (BERT only)
    embed.ln.hook_normalized              (T, C)          the encoder's LayerNorm of their sum (BERT only)
    blocks.{L}.hook_resid_pre             (T, C)          the residual stream into block L
    blocks.{L}.hook_resid_mid             (T, C)          ... after attention, before the MLP
    blocks.{L}.hook_resid_post            (T, C)          ... out of block L
    blocks.{L}.attn.hook_q                (T, nh, hs)     queries = ln1(resid_pre) @ W_Q + b_Q, before rotary
    blocks.{L}.attn.hook_k                (T, nkv, hs)    keys, before rotary; kv heads NOT repeated for GQA
    blocks.{L}.attn.hook_v                (T, nkv, hs)    values; kv heads not repeated
    blocks.{L}.attn.hook_rot_q            (T, nh, hs)     queries after rotary (rotary models only)
    blocks.{L}.attn.hook_rot_k            (T, nkv, hs)    keys after rotary (rotary models only)
    blocks.{L}.attn.hook_attn_scores      (nh, T, S)      rot_q · rot_kᵀ / √hs (key head h // (nh/nkv)), masked = -inf
    blocks.{L}.attn.hook_pattern          (nh, T, S)      softmax of the scores: the attention
    ln_final.hook_normalized              (T, C)          the decoder's final norm

(`run_with_cache` drops the batch dimension for one text, as shown; a batched capture
keeps it first.) Query head h reads key/value head h // (nh // nkv): repeat
``hook_k``/``hook_v`` along dim 1 with ``repeat_interleave`` to get one per query head.

`GenerationAttention` is the capture used during generation: for each generated
token it keeps the attention row of the query that produced it, over the whole
context, in every layer and head, so an answer can be traced back to prompt spans.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

_PATTERN = re.compile(r"blocks\.(\d+)\.attn\.hook_pattern")


class ActivationCache(Mapping):
    """name -> tensor, recorded during one forward pass.

    names: which hooks to keep (an iterable of names or a predicate); None keeps all.
    """

    def __init__(self, names=None, *, squeeze_batch: bool = False):
        if names is None:
            self._wanted = lambda name: True
        elif callable(names):
            self._wanted = names
        else:
            wanted = set(names)
            self._wanted = wanted.__contains__
        self.squeeze_batch = squeeze_batch
        self.store: dict[str, torch.Tensor] = {}
        self.tokens: list[str] = []  # token strings, set by run_with_cache, for display

    def record(self, name: str, tensor: torch.Tensor) -> None:
        if self._wanted(name):
            tensor = tensor.detach()
            self.store[name] = tensor[0] if self.squeeze_batch else tensor

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.store[name]

    def __iter__(self):
        return iter(self.store)

    def __len__(self) -> int:
        return len(self.store)

    def patterns(self) -> torch.Tensor:
        """All attention patterns stacked: (n_layer, nh, T, S)."""
        layers = sorted((int(m.group(1)), name) for name in self.store if (m := _PATTERN.fullmatch(name)))
        return torch.stack([self.store[name] for _, name in layers])

    def __repr__(self) -> str:
        return f"ActivationCache({len(self.store)} tensors, {len(self.tokens)} tokens)"


@dataclass
class GenerationAttention:
    """What each generated token attended to.

    rows[i] is (n_layer, nh, S_i) float16: the attention of the query that produced
    generated token i over the S_i = prompt_len + i positions before it. (The first
    generated token is produced by the last prompt position, so rows[0] spans the prompt.)
    """

    prompt_len: int
    layers: list[int]
    rows: list[torch.Tensor] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)  # the generated tokens, one per row
    prompt_ids: list[int] = field(default_factory=list)  # the prompt, so spans can be found in it

    def matrix(self) -> np.ndarray:
        """(n_generated, n_layer, nh, prompt_len + n_generated) float32, zero where a token could not look."""
        if not self.rows:
            return np.zeros((0, len(self.layers), 0, self.prompt_len), dtype=np.float32)
        width = self.rows[-1].shape[-1]
        out = np.zeros((len(self.rows), *self.rows[0].shape[:2], width), dtype=np.float32)
        for i, row in enumerate(self.rows):
            out[i, :, :, : row.shape[-1]] = row.float().numpy()
        return out

    def attribute(self, spans: Iterable[tuple[int, int]], layers=None, heads=None) -> np.ndarray:
        """(n_generated, n_spans): attention each generated token paid to each token span [start, end),
        summed over the span's tokens and averaged over the chosen layers and heads."""
        spans = list(spans)
        picked_layers = [self.layers.index(layer) for layer in layers] if layers is not None else slice(None)
        out = np.zeros((len(self.rows), len(spans)), dtype=np.float32)
        for i, row in enumerate(self.rows):
            r = row.float()[picked_layers]  # (L', nh, S_i)
            if heads is not None:
                r = r[:, list(heads)]
            mean = r.mean(dim=(0, 1)).numpy()  # (S_i,)
            for j, (start, end) in enumerate(spans):
                out[i, j] = mean[start:end].sum()
        return out


class GenerationRecorder:
    """The capture handed to each forward pass during generation; fills a GenerationAttention."""

    def __init__(self, n_layer: int, prompt_ids: list[int], layers=None):
        self.layers = list(range(n_layer)) if layers is None else sorted(layers)
        self.result = GenerationAttention(prompt_len=len(prompt_ids), layers=self.layers, prompt_ids=list(prompt_ids))
        self._step: dict[int, torch.Tensor] = {}

    def record(self, name: str, tensor: torch.Tensor) -> None:
        m = _PATTERN.fullmatch(name)
        if m and int(m.group(1)) in self.layers:
            self._step[int(m.group(1))] = tensor[0, :, -1, :].to(torch.float16)  # (nh, S): the last query's row

    def end_step(self, token_id: int) -> None:
        """Called once the step's token is chosen: file the rows that produced it."""
        self.result.rows.append(torch.stack([self._step[layer] for layer in self.layers]))  # (L, nh, S)
        self.result.token_ids.append(token_id)
        self._step = {}


def token_spans(offsets: list[tuple[int, int]], char_spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Character spans of the prompt -> token index spans [start, end), from the tokenizer's offsets."""
    out = []
    for c_start, c_end in char_spans:
        inside = [i for i, (a, b) in enumerate(offsets) if b > c_start and a < c_end]
        out.append((inside[0], inside[-1] + 1) if inside else (0, 0))
    return out
