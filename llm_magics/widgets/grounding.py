"""Grounding: which retrieved sources each generated token attended to.

During generation the runtime keeps, for every generated token, the attention row of the
query that produced it (``runtime.capture.GenerationAttention``: per step an array
(layers, heads, S_i) over the S_i positions before it). The prompt holds the sources at
known token spans, so

    weight[token, source] = mean over chosen layers and heads of
                            sum over the source's tokens of attention[token -> that token]

is how much of its attention the token spent reading that source. Everything here is
plain numpy over those arrays, so it can be tested without a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import UsageError
from . import _codec

Span = tuple[int, int]  # [start, end) token positions in the prompt

_SENTENCE_END = re.compile(r"[.!?](\s|$)|\n")


def mean_rows(rows: Sequence[Any], prompt_len: int, layers: Sequence[int] | None = None, heads: Sequence[int] | None = None) -> np.ndarray:
    """(n_generated, prompt_len): each step's attention over the prompt, averaged over layers and heads.

    ``rows[i]`` is (n_layers, n_heads, S_i) with S_i ≥ prompt_len; ``layers`` and ``heads``
    index into those axes (None = all).
    """
    out = np.zeros((len(rows), prompt_len), dtype=np.float32)
    for i, row in enumerate(rows):
        r = _codec.to_numpy(row)
        if r.ndim != 3 or r.shape[-1] < prompt_len:
            raise UsageError(f"Attention row {i} has shape {r.shape}; expected (layers, heads, ≥{prompt_len}).")
        if layers is not None:
            r = r[list(layers)]
        if heads is not None:
            r = r[:, list(heads)]
        out[i] = r[..., :prompt_len].mean(axis=(0, 1))
    return out


def attribute(rows: Sequence[Any], spans: Sequence[Span], prompt_len: int | None = None, layers=None, heads=None) -> np.ndarray:
    """(n_generated, n_sources): attention each generated token paid to each source span."""
    spans = [(int(a), int(b)) for a, b in spans]
    if prompt_len is None:
        prompt_len = max((b for _, b in spans), default=0)
    weights = mean_rows(rows, prompt_len, layers, heads)
    return span_sums(weights, spans)


def span_sums(weights: np.ndarray, spans: Sequence[Span]) -> np.ndarray:
    """Sum (n, prompt_len) weights over each [start, end) span -> (n, n_spans)."""
    out = np.zeros((weights.shape[0], len(spans)), dtype=np.float32)
    for j, (start, end) in enumerate(spans):
        if not 0 <= start <= end <= weights.shape[1]:
            raise UsageError(f"Source span {(start, end)} lies outside the {weights.shape[1]} prompt tokens.")
        out[:, j] = weights[:, start:end].sum(axis=1)
    return out


def source_spans(prompt: str, offsets: Sequence[Span], texts: Sequence[str]) -> list[Span | None]:
    """Token span of each source text inside ``prompt``, from per-token character ``offsets``.

    A source is found by its text (the first 200 characters if the whole is not there,
    since a chain may truncate a chunk); one that is not in the prompt gets None.
    """
    spans: list[Span | None] = []
    searched_from = 0
    for text in texts:
        text = text.strip()
        at = prompt.find(text, searched_from) if text else -1
        length = len(text)
        if at < 0 and text:
            at = prompt.find(text[:200], searched_from)
            length = min(len(text), 200)
            if at >= 0:  # extend while the prompt keeps matching the source
                while at + length < len(prompt) and length < len(text) and prompt[at + length] == text[length]:
                    length += 1
        if at < 0:
            spans.append(None)
            continue
        searched_from = at + length
        start = next((i for i, (a, b) in enumerate(offsets) if b > at), len(offsets))
        end = next((i for i, (a, b) in enumerate(offsets) if a >= at + length), len(offsets))
        spans.append((start, end))
    return spans


def sentences(pieces: Sequence[str]) -> list[Span]:
    """Group generated token strings into sentences: [start, end) token ranges."""
    out, start, text = [], 0, ""
    for i, piece in enumerate(pieces):
        text += piece
        if _SENTENCE_END.search(piece) or (piece.strip() and piece.strip()[-1:] in ".!?"):
            if text.strip():
                out.append((start, i + 1))
            start, text = i + 1, ""
    if start < len(pieces) and "".join(pieces[start:]).strip():
        out.append((start, len(pieces)))
    return out


@dataclass
class Grounding:
    """Everything the grounding view shows, computed from one generation."""

    answer_tokens: list[str]
    sources: list[dict]  # {"label", "number"} per source
    matrix: np.ndarray  # (n_answer_tokens, n_sources)
    source_tokens: list[list[str]]  # each source's prompt tokens
    token_weights: np.ndarray  # (n_answer_tokens, total source tokens): attention to each
    sentences: list[Span] = field(default_factory=list)
    layers: list[int] = field(default_factory=list)

    @classmethod
    def build(cls, rows, prompt_len: int, prompt_tokens: Sequence[str], spans: Sequence[Span | None], answer_tokens: Sequence[str],
              sources: Sequence[dict], layers=None, heads=None, all_layers: Sequence[int] | None = None) -> "Grounding":  # fmt: skip
        """From raw rows: ``spans[j]`` is source j's token span (None: not in the prompt, dropped)."""
        keep = [j for j, s in enumerate(spans) if s is not None]
        if not keep:
            raise UsageError("None of the answer's sources appear in the prompt the model saw, so there is nothing to attribute.")
        kept_spans = [spans[j] for j in keep]
        weights = mean_rows(rows, prompt_len, layers, heads)
        matrix = span_sums(weights, kept_spans)
        token_weights = np.concatenate([weights[:, a:b] for a, b in kept_spans], axis=1)
        numbers = list(all_layers) if all_layers is not None else list(range(_codec.to_numpy(rows[0]).shape[0]))
        chosen = numbers if layers is None else [numbers[i] for i in layers]  # model layer numbers, for labels
        return cls(
            answer_tokens=[str(t) for t in answer_tokens],
            sources=[dict(sources[j]) for j in keep],
            matrix=matrix,
            source_tokens=[[str(t) for t in prompt_tokens[a:b]] for a, b in kept_spans],
            token_weights=token_weights,
            sentences=sentences([str(t) for t in answer_tokens]),
            layers=chosen,
        )

    def sentence_sources(self) -> np.ndarray:
        """(n_sentences, n_sources): mean attention to each source over a sentence's tokens."""
        return np.stack([self.matrix[a:b].mean(axis=0) for a, b in self.sentences]) if self.sentences else np.zeros((0, len(self.sources)))
