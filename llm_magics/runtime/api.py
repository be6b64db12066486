"""What users script: `load(path_or_spec)` and the two model objects it returns.

The runtime knows files, not names: `load` takes a local path (a .gguf file or an HF-style
folder) or a resolved spec. Registered names ("smollm2", "minilm") are resolved above it,
by `llm_magics.models` (`models.load(name)` = `runtime.load(models.resolve(name))`).

    >>> from llm_magics import models, runtime
    >>> lm = runtime.load(models.resolve("smollm2"))   # a LanguageModel; or models.load("smollm2")
    >>> lm.generate("The capital of France is", max_new_tokens=8)
    >>> for piece in lm.chat("Hi!", stream=True): print(piece, end="")
    >>> logits, cache = lm.run_with_cache("Hello world")
    >>> cache["blocks.3.attn.hook_pattern"].shape      # (heads, T, T)

    >>> enc = models.load("minilm")                    # an EmbeddingModel
    >>> enc.embed(["a sentence", "another"]).shape     # (2, 384), unit rows
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from . import quantize, weights
from .capture import ActivationCache
from .config import DecoderConfig, EncoderConfig
from .generate import Generation, GenerationSettings
from .model import empty_model
from .tokenizer import Tokenizer

log = logging.getLogger(__name__)


# ─── loading ──────────────────────────────────────────────────────────────────


def _locate(path_or_spec) -> tuple[str, Path, str]:
    """(name, path, format) of a local path, or of a resolved spec (anything with ``.path``)."""
    if hasattr(path_or_spec, "path"):  # e.g. llm_magics.models.ModelSpec
        path = Path(path_or_spec.path)
        name = getattr(path_or_spec, "name", None) or path.name
        fmt = getattr(path_or_spec, "format", None) or _format_of(path)
    else:
        path = Path(path_or_spec).expanduser()
        name, fmt = path.name, _format_of(path)
        if not path.exists():
            raise FileNotFoundError(
                f"No file or folder {str(path_or_spec)!r}. runtime.load takes a path or a resolved spec; "
                f"for a registered name use llm_magics.models.load({str(path_or_spec)!r}) "
                f"or runtime.load(llm_magics.models.resolve({str(path_or_spec)!r}))."
            )
    if fmt not in ("gguf", "hf"):
        raise ValueError(f"{path} is neither a .gguf file nor a folder with config.json (an HF-style checkpoint).")
    return name, path, fmt


def _format_of(path: Path) -> str | None:
    if path.is_file() and path.suffix.lower() == ".gguf":
        return "gguf"
    if path.is_dir() and (path / "config.json").is_file():
        return "hf"
    return None


def load(path_or_spec, *, dtype: str = "float32", use_cache: bool = True, compile: bool = False):
    """Load a model from a local path (a .gguf file or HF folder) or a resolved spec.

    A spec is any object with ``.path`` (and optionally ``.name`` and ``.format``), such as
    ``llm_magics.models.resolve("smollm2")``; names are resolved there, not here.

    dtype: "float32" (default), "bfloat16", "int8" (weight-only, per-row scales) or "q4" (the fastest
        decode: llama.cpp's 4-bit/8-bit blocks in a C kernel, float32 activations; see quantize.py).
    use_cache: reuse (and write) the converted-weights cache for GGUF files.
    compile: apply torch.compile (dynamic shapes) to the forward pass from outside. Off by default:
        on the 2-core CPU this was measured on, inductor took minutes to compile and decoded
        slower than eager (bench/results_runtime.md).
    Returns a LanguageModel (decoders) or an EmbeddingModel (encoders).
    """
    started = time.perf_counter()
    name, path, fmt = _locate(path_or_spec)
    if fmt == "gguf":
        config, state_dict, tokenizer = _load_gguf(path, use_cache)
    else:
        config, state_dict = weights.load_hf_folder(path)
        tokenizer = Tokenizer.from_folder(path)

    module = empty_model(config)  # parameters on the meta device until the checkpoint's tensors are assigned
    missing, unexpected = module.load_state_dict(state_dict, strict=False, assign=True)
    missing = [m for m in missing if not (m == "unembed.weight" and config.kind == "decoder" and config.tie_word_embeddings)]
    missing += [n for n, t in module.named_buffers() if t.is_meta]
    if missing or unexpected:
        raise ValueError(f"Checkpoint {path} does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if config.kind == "decoder" and config.tie_word_embeddings:
        module.unembed.weight = module.embed.weight  # assign=True replaced the embedding; re-tie
    del state_dict  # the module holds the tensors now; let prepare() free each one it replaces
    quantize.prepare(module, dtype)
    if compile:
        module.forward = torch.compile(module.forward, dynamic=True)
    else:
        log.info("Running %s eagerly: torch.compile measured slower for CPU decode (see bench/results_runtime.md).", name)

    cls = EmbeddingModel if config.kind == "encoder" else LanguageModel
    model = cls(module, tokenizer, name=name, path=path, dtype=dtype)
    model.load_seconds = time.perf_counter() - started
    return model


def _load_gguf(path: Path, use_cache: bool):
    """GGUF -> (config, state dict, tokenizer), through the converted-weights cache."""
    folder = weights.cache_dir_for(path)
    cached = weights.read_cache(folder) if use_cache else None
    if cached is not None:
        state_dict, meta, tokenizer_json = cached
        config = DecoderConfig(**{k: v for k, v in meta["config"].items() if k != "kind"})
        return config, state_dict, Tokenizer.from_json(tokenizer_json, meta["tokenizer"])
    config, state_dict, gguf_meta = weights.convert_gguf(path)
    tokenizer = Tokenizer.from_gguf_metadata(gguf_meta)
    if use_cache:
        meta = {"config": config.to_dict(), "tokenizer": tokenizer.to_dict(), "source": str(path)}
        weights.write_cache(folder, state_dict, meta, tokenizer.backend.to_str())
    return config, state_dict, tokenizer


# ─── the model objects ─────────────────────────────────────────────────────────


class _RuntimeModel:
    def __init__(self, module, tokenizer: Tokenizer, *, name: str, path: Path, dtype: str):
        self.module, self.tokenizer = module, tokenizer
        self.name, self.path, self.dtype = name, path, dtype
        self.load_seconds = 0.0

    @property
    def config(self) -> EncoderConfig | DecoderConfig:
        return self.module.config

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids)

    def tokenize(self, text: str) -> list[str]:
        """The text as the model sees it: one string per token."""
        return self.tokenizer.token_strings(self.encode(text))

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def __repr__(self) -> str:
        c = self.config
        return f"<{type(self).__name__} {self.name!r} {c.n_layer} layers, d={c.n_embd}, {c.n_head} heads, {self.dtype}>"


class LanguageModel(_RuntimeModel):
    """A decoder with its tokenizer: generate(), chat(), run_with_cache()."""

    @property
    def context_window(self) -> int:
        return self.config.max_seq_len

    def generate(self, prompt, max_new_tokens: int = 256, temperature: float = 0.0, top_k=None,
                 top_p=None, seed=None, stop=None, stream: bool = False, capture_attention: bool = False,
                 capture_layers=None, stop_token_ids=None, repetition_penalty: float = 1.0,
                 stop_on_loop: bool = False, logits_processor=None, threads="auto"):  # fmt: skip
        """Continue raw text (no chat template) or a list of token ids.

        Faithful by default: greedy, no repetition penalty, no loop guard, so the continuation is
        the model's own (as transformers' generate gives it). The local backend adds its policy.
        Returns the continuation, or a Generation (an iterator of text pieces, with .text,
        .token_ids, .finish_reason, .timings, .attention) when stream=True.
        stop: stop strings; stop_token_ids: replaces the tokenizer's EOS set ([] = never stop early).
        capture_attention: record what each generated token attended to (see capture.GenerationAttention).
        repetition_penalty: > 1 makes tokens the continuation already used less likely (prompt tokens are free).
        stop_on_loop: stop (finish_reason "repetition") when the last tokens repeat one block three times.
        logits_processor: called each step as f(generated ids, logits (V,)) -> logits (V,), e.g. a
            grammar.GrammarConstraint that masks every token the grammar does not allow.
        threads: "auto" (default) uses the cores other processes leave free, re-checked while
            decoding (runtime/threads.py); an int fixes the count; None keeps torch's setting.
        """
        settings = GenerationSettings(
            max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
            stop=[stop] if isinstance(stop, str) else list(stop or []),
            capture_attention=capture_attention, capture_layers=capture_layers,
            stop_token_ids=None if stop_token_ids is None else set(stop_token_ids),
            repetition_penalty=repetition_penalty, stop_on_loop=stop_on_loop, logits_processor=logits_processor,
            threads=threads,
        )  # fmt: skip
        ids = self.encode(prompt) if isinstance(prompt, str) else [int(i) for i in prompt]
        generation = Generation(self.module, self.tokenizer, ids, settings)
        return generation if stream else generation.read()

    def chat(self, messages, **kwargs):
        """Like generate(), on messages rendered with the model's chat template.

        messages: a string (one user turn) or [{"role": ..., "content": ...}, ...].
        """
        return self.generate(self.chat_prompt(messages), **kwargs)

    def chat_prompt(self, messages) -> str:
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True)

    @torch.inference_mode()
    def logits(self, text_or_ids) -> torch.Tensor:
        """Next-token logits at every position, fast path: (T, vocab)."""
        ids = self.encode(text_or_ids) if isinstance(text_or_ids, str) else list(text_or_ids)
        return self.module(torch.tensor([ids]))[0].float()

    @torch.inference_mode()
    def run_with_cache(self, text_or_ids, names=None) -> tuple[torch.Tensor, ActivationCache]:
        """Forward through the explicit path, recording activations.

        Returns (logits (T, vocab), cache) with cache["blocks.L.attn.hook_pattern"] of shape (heads, T, T).
        names: which hooks to keep (default all).
        """
        ids = self.encode(text_or_ids) if isinstance(text_or_ids, str) else list(text_or_ids)
        cache = ActivationCache(names, squeeze_batch=True)
        cache.tokens = self.tokenizer.token_strings(ids)
        logits = self.module(torch.tensor([ids]), capture=cache)[0].float()
        return logits, cache


class EmbeddingModel(_RuntimeModel):
    """An encoder with its tokenizer: embed(), run_with_cache()."""

    def __init__(self, module, tokenizer, **kw):
        super().__init__(module, tokenizer, **kw)
        # A second handle on the same vocabulary that truncates to the model's window.
        from tokenizers import Tokenizer as Backend

        self._batch_tokenizer = Backend.from_str(tokenizer.backend.to_str())
        self._batch_tokenizer.enable_truncation(self.max_tokens)
        self._batch_tokenizer.no_padding()

    @property
    def dimension(self) -> int:
        return self.config.n_embd

    @property
    def max_tokens(self) -> int:
        """Longest input in word pieces (special tokens included); longer text is truncated."""
        return self.config.max_seq_length

    @torch.inference_mode()
    def embed(self, texts, batch_size: int = 32) -> np.ndarray:
        """Sentence embeddings, (n, d) float32, unit length: mean of token vectors over the padding mask.

        Texts are sorted by length and batched with their neighbours (length bucketing),
        so a batch pads only to its own longest text.
        """
        if isinstance(texts, str):
            texts = [texts]
        encodings = self._batch_tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        pad = self.config.pad_token_id
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)  # (B, T)
            mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T), 1 = real token
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = torch.tensor(encodings[i].ids)
                mask[row, :n] = 1
            hidden = self.module(ids, mask)  # (B, T, C)
            out[batch] = self.module.pool(hidden.float(), mask).numpy()  # (B, C); mean and norm in float32 whatever the weights
        return out

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each word piece of text, special tokens excluded."""
        encoding = self.tokenizer.backend.encode(text, add_special_tokens=False)
        return [tuple(o) for o in encoding.offsets]

    @torch.inference_mode()
    def run_with_cache(self, text: str, text_pair: str | None = None, names=None):
        """Encode one text, or a sentence pair (A, B) with token types 0 and 1, through the explicit path.

        Returns (hidden states (T, C), cache); cache["blocks.L.attn.hook_pattern"] is (heads, T, T),
        cache.tokens the token strings and cache.token_type_ids which sentence each token is in.
        """
        encoding = self._batch_tokenizer.encode(text, text_pair) if text_pair is not None else self._batch_tokenizer.encode(text)
        ids = torch.tensor([encoding.ids])  # (1, T)
        types = torch.tensor([encoding.type_ids])  # (1, T)
        cache = ActivationCache(names, squeeze_batch=True)
        cache.tokens = list(encoding.tokens)
        cache.token_type_ids = list(encoding.type_ids)
        hidden = self.module(ids, torch.ones_like(ids), types, capture=cache)[0]  # (T, C)
        return hidden.float(), cache
