"""Generation: prefill the prompt once, then decode one token at a time.

    prompt ids ──prefill──► KV cache filled for positions 0..P-1, logits for position P-1
    loop:  pick a token (greedy or sampled) ─► stop? ─► forward that one token at position p,
           reading keys/values of 0..p-1 from the cache and appending its own

The KV cache is allocated once for prompt + max_new_tokens positions (gpt-fast
style), so decoding never reallocates. Text comes out as an iterator of pieces:
a piece is released only once it decodes to whole UTF-8 characters and cannot
be the start of a stop string.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch

from . import fused
from .capture import GenerationRecorder
from .threads import ThreadGovernor

log = logging.getLogger(__name__)


class KVCache:
    """Keys and values of every layer for positions 0 .. max_len-1: (n_layer, B, nkv, max_len, hs) each."""

    def __init__(self, n_layer, batch, n_kv_head, max_len, head_dim, dtype=torch.float32):
        shape = (n_layer, batch, n_kv_head, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype)
        self.v = torch.zeros(shape, dtype=dtype)
        self.max_len = max_len
        self.k_layers, self.v_layers = self.k.unbind(0), self.v.unbind(0)  # per-layer views, (B, nkv, max_len, hs)

    def update(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor):
        """Write k, v (B, nkv, T, hs) at positions start..start+T-1; return all keys/values so far (B, nkv, S, hs)."""
        T = k.shape[2]
        keys, values = self.k_layers[layer], self.v_layers[layer]
        keys.narrow(2, start, T).copy_(k)
        values.narrow(2, start, T).copy_(v)
        return keys.narrow(2, 0, start + T), values.narrow(2, 0, start + T)


# ─── choosing the next token ───────────────────────────────────────────────────


def penalize_repeats(logits: torch.Tensor, generated: list[int], penalty: float) -> torch.Tensor:
    """Make tokens this answer already produced less likely (CTRL's repetition penalty).

    Only the generated tokens count, not the prompt's, so copying a fact from the context
    stays free while a small model's loops (the same line again and again) are discouraged.
    logits (V,) -> logits (V,).
    """
    if penalty == 1.0 or not generated:
        return logits
    ids = torch.tensor(sorted(set(generated)))
    seen = logits[ids]
    logits = logits.clone()
    logits[ids] = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits


def repeating_tail(tokens: list[int], min_period: int = 2, max_period: int = 48, times: int = 3) -> bool:
    """True when the last ``times`` blocks of ``period`` tokens are identical (a generation loop)."""
    for period in range(min_period, min(max_period, len(tokens) // times) + 1):
        tail = tokens[-period:]
        if all(tokens[-(i + 1) * period : len(tokens) - i * period] == tail for i in range(1, times)):
            return True
    return False


def sample(logits: torch.Tensor, temperature=0.0, top_k=None, top_p=None, generator=None) -> int:
    """logits (V,) -> a token id. temperature 0 is greedy (argmax)."""
    if not temperature:
        return int(logits.argmax())
    logits = logits.float() / temperature
    if top_k:  # keep the k most likely tokens
        kth_best = torch.topk(logits, min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    if top_p is not None and top_p < 1.0:  # keep the smallest set whose probability reaches top_p
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) >= top_p  # mass before this token already reached top_p
        logits = logits.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    probs = logits.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=generator))


@dataclass
class GenerationSettings:
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)  # stop strings, not included in the output
    capture_attention: bool = False  # record GenerationAttention (explicit attention path; slower)
    capture_layers: list[int] | None = None  # which layers to record; None = all
    stop_token_ids: set[int] | None = None  # None: the tokenizer's EOS set
    repetition_penalty: float = 1.0  # > 1 discourages tokens the answer already used (1 = off)
    stop_on_loop: bool = False  # stop when the last tokens repeat one block three times ("repetition"); a caller's policy
    logits_processor: object = None  # called per step as (generated ids, logits (V,)) -> logits (V,): a grammar mask (grammar.py)
    threads: int | str | None = "auto"  # "auto": the free cores, re-checked while decoding (threads.py); an int: fixed; None: torch's setting


class Generation:
    """An iterator of text pieces. When it ends it also holds:

    text, token_ids, finish_reason ("stop", "length" or "interrupted"),
    prompt_tokens, timings (prefill_s, decode_s, decode_tokens_per_s), attention (if captured).
    A KeyboardInterrupt during generation ends it cleanly with what was produced so far.
    """

    def __init__(self, model, tokenizer, prompt_ids: list[int], settings: GenerationSettings):
        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self.prompt_ids = list(prompt_ids)
        self.text = ""
        self.token_ids: list[int] = []
        self.finish_reason: str | None = None
        self.timings: dict[str, float] = {}
        self.attention = None
        self._iterator = self._pieces()

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        return next(self._iterator)

    def read(self) -> str:
        """Run to the end and return the whole text."""
        for _ in self:
            pass
        return self.text

    # ── tokens ──

    def _tokens(self):
        """Yield generated token ids, stopping at a stop token or max_new_tokens."""
        model, s = self.model, self.settings
        cfg = model.config
        P = len(self.prompt_ids)
        if P == 0:
            raise ValueError("Empty prompt: give the model at least one token.")
        max_new = min(s.max_new_tokens, cfg.max_seq_len - P)
        if max_new <= 0:
            raise ValueError(f"The prompt is {P} tokens; the context window is {cfg.max_seq_len}. Shorten the prompt.")
        stop_ids = self.tokenizer.stop_token_ids if s.stop_token_ids is None else s.stop_token_ids
        generator = torch.Generator().manual_seed(s.seed) if s.seed is not None else None
        dtype = model.embed.weight.dtype  # the activations' dtype: float32, or bfloat16 for a bf16 model
        cache = KVCache(cfg.n_layer, 1, cfg.n_kv_head, P + max_new, cfg.head_dim, dtype=dtype)
        recorder = GenerationRecorder(cfg.n_layer, self.prompt_ids, s.capture_layers) if s.capture_attention else None
        if recorder is not None:
            self.attention = recorder.result

        # No autograd bookkeeping in the forward passes. (Not a `with` block around the loop:
        # that would leave inference mode switched on in the caller's code at every yield.)
        run = torch.inference_mode()(model)
        governor = ThreadGovernor(s.threads) if s.threads is not None else None

        def forward(*args, **kwargs):
            """One forward pass on the threads the governor allows now (restored afterwards)."""
            if governor is None:
                return run(*args, **kwargs)
            before = torch.get_num_threads()
            torch.set_num_threads(governor.threads())
            try:
                return run(*args, **kwargs)
            finally:
                torch.set_num_threads(before)

        # A q4 model's decode steps run in one C call each (fused.py), unless attention is recorded.
        fused_step = fused.for_model(model) if recorder is None else None
        self.timings["fused_decode"] = fused_step is not None

        def decode(token: int, pos: int) -> torch.Tensor:
            """The logits (V,) after `token` at position `pos`, which joins the KV cache."""
            if fused_step is not None:
                return fused_step(token, pos, cache, governor.threads() if governor is not None else None)
            return forward(torch.tensor([[token]]), start_pos=pos, kv_cache=cache, capture=recorder)[0, -1]

        t0 = time.perf_counter()
        logits = forward(torch.tensor([self.prompt_ids]), kv_cache=cache, capture=recorder, last_only=True)[0, -1]  # (V,)
        self.timings["prefill_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        pos = P
        for step in range(max_new):
            scores = penalize_repeats(logits, self.token_ids, s.repetition_penalty)
            if s.logits_processor is not None:
                scores = s.logits_processor(self.token_ids, scores)
            token = sample(scores, s.temperature, s.top_k, s.top_p, generator)
            if token in stop_ids:
                self.finish_reason = "stop"
                break
            if s.stop_on_loop and repeating_tail(self.token_ids + [token]):
                self.finish_reason = "repetition"
                break
            if recorder is not None:
                recorder.end_step(token)  # file the attention rows that chose this token
            self.token_ids.append(token)
            yield token
            if step == max_new - 1:
                break
            logits = decode(token, pos)  # (V,)
            pos += 1
        if self.finish_reason is None:
            self.finish_reason = "length"
        decode_s = time.perf_counter() - t1
        self.timings["decode_s"] = decode_s
        self.timings["decode_tokens_per_s"] = len(self.token_ids) / decode_s if decode_s > 0 else 0.0
        if governor is not None:
            self.timings["threads"] = list(governor.history)  # each thread count it chose, in order

    # ── text ──

    def _pieces(self):
        """Turn the token stream into text pieces: whole UTF-8 characters, stop strings held back and cut."""
        stops = [x for x in self.settings.stop if x]
        longest_stop = max((len(x) for x in stops), default=0)
        decode = self.tokenizer.decode
        tokens: list[int] = []
        prefix_offset = read_offset = 0  # decode tokens[prefix_offset:] and diff against tokens[prefix_offset:read_offset]
        pending = ""  # decoded text not yet released (it may begin a stop string)
        try:
            for token in self._tokens():
                tokens.append(token)
                before = decode(tokens[prefix_offset:read_offset])
                after = decode(tokens[prefix_offset:])
                if len(after) <= len(before) or after.endswith("\ufffd"):
                    continue  # an incomplete UTF-8 sequence: wait for the next token
                pending += after[len(before) :]
                prefix_offset, read_offset = read_offset, len(tokens)

                if stops:
                    # Search the tail that could contain a stop string that just completed.
                    window_start = max(0, len(self.text) - longest_stop)
                    window = self.text[window_start:] + pending
                    hits = [i for i in (window.find(x) for x in stops) if i >= 0]
                    if hits:
                        cut = window_start + min(hits) - len(self.text)  # index into pending (may be <= 0)
                        piece = pending[: max(cut, 0)]
                        if piece:
                            self.text += piece
                            yield piece
                        self.finish_reason = "stop"
                        return
                    held = _longest_stop_prefix(self.text + pending, stops)
                    piece, pending = pending[: len(pending) - held], pending[len(pending) - held :]
                else:
                    piece, pending = pending, ""
                if piece:
                    self.text += piece
                    yield piece
        except KeyboardInterrupt:
            self.finish_reason = "interrupted"
            log.info("Generation interrupted after %d tokens", len(self.token_ids))
        # The stream ended: what is left is released (a stop string that never completed is plain text).
        # A character cut off by max_new_tokens or an interrupt decodes to U+FFFD: drop it.
        tail = decode(tokens[prefix_offset:])[len(decode(tokens[prefix_offset:read_offset])) :] if tokens else ""
        pending += tail.rstrip("\ufffd")
        if pending:
            self.text += pending
            yield pending


def _longest_stop_prefix(text: str, stops: list[str]) -> int:
    """Length of the longest suffix of text that is a proper prefix of some stop string."""
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:n]):
                best = n
                break
    return best
