"""Building the widgets from a model: run text through the runtime with capture, or read an answer's.

``attention_widget(text, model="minilm")`` runs one forward pass through the runtime's
explicit path and builds an ``AttentionWidget``; ``grounding_widget(answer)`` turns the
attention an answer's generation recorded into a ``GroundingWidget``. Models come from
the one loaded-model cache (``llm_magics.models.cache``) that the local backend and the
embedder use too, so ``%attnviz`` after ``%%ask`` does not load SmolLM2 again.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import UsageError
from . import grounding as grounding_mod

def load_model(name: str):
    """A runtime model by name or path, from the shared loaded-model cache (float32)."""
    from ..models.cache import load_runtime_model  # imports torch on the first load

    return load_runtime_model(name, "float32")


def capture(text: str, model: str = "minilm", pair: str | None = None) -> dict:
    """One forward pass with capture: attention (L, H, T, T), q and k (L, H, T, d_head), tokens."""
    if not text or not text.strip():
        raise UsageError("Give %attnviz some text: %attnviz \"The cat sat on the mat\" (or the name of a string variable).")
    lm = load_model(model)
    encoder = lm.config.kind == "encoder"
    if pair is not None and not encoder:
        raise UsageError(f"--pair needs an encoder such as minilm; {lm.name} is a causal decoder. Drop --pair or use --model minilm.")
    _, cache = lm.run_with_cache(text, pair) if encoder else lm.run_with_cache(text)
    n_layers = lm.config.n_layer
    attention = cache.patterns().float().numpy()  # (L, nh, T, T)
    q = np.stack([_per_head(cache, layer, "q") for layer in range(n_layers)])  # (L, nh, T, hs)
    k = np.stack([_per_head(cache, layer, "k") for layer in range(n_layers)])  # (L, nh, T, hs)
    types = list(getattr(cache, "token_type_ids", []) or [])
    b_start = types.index(1) if pair is not None and 1 in types else None
    return {
        "attention": attention,
        "tokens": list(cache.tokens),
        "q": q,
        "k": k,
        "causal": not encoder,
        "sentence_b_start": b_start,
        "model_name": lm.name,
    }


def _per_head(cache, layer: int, which: str) -> np.ndarray:
    """Queries or keys as the neuron view multiplies them: (nh, T, hs), after rotary, one per query head.

    The capture records TransformerLens's layout (runtime/capture.py): ``hook_q`` (T, nh, hs) and
    ``hook_k`` (T, nkv, hs) before rotary, ``hook_rot_q``/``hook_rot_k`` after it (rotary models).
    """
    name = f"blocks.{layer}.attn.hook_rot_{which}"
    x = cache[name] if name in cache else cache[f"blocks.{layer}.attn.hook_{which}"]
    x = x.float().numpy().transpose(1, 0, 2)  # (heads, T, hs)
    n_head = cache[f"blocks.{layer}.attn.hook_pattern"].shape[0]
    return np.repeat(x, n_head // x.shape[0], axis=0)  # kv heads expanded: query head h reads kv head h // group


def attention_widget(text: str, model: str = "minilm", pair: str | None = None, **view):
    """``AttentionWidget`` for ``text`` (and sentence B ``pair``) run through ``model``."""
    from .attention import AttentionWidget

    data = capture(text, model, pair)
    if view.get("top_k") is None:
        view["top_k"] = 8 if len(data["tokens"]) <= 128 else 3
    title = f"Attention in {data['model_name']}" + (" for a sentence pair A → B" if pair is not None else "")
    return AttentionWidget(**data, title=title, **{k: v for k, v in view.items() if v is not None})


# ─── grounding: the last answer ───────────────────────────────────────────────


def find_attention(answer) -> Any:
    """The generation attention an ``Answer`` carries, wherever the pipeline put it."""
    extras = getattr(answer, "extras", None) or {}
    if extras.get("attention") is not None:
        return extras["attention"]
    for record in reversed(getattr(answer, "prompts", None) or []):
        if isinstance(record, dict) and record.get("attention") is not None:
            return record["attention"]
    usage_extra = getattr(getattr(answer, "usage", None), "extra", None) or {}
    return usage_extra.get("attention")


def grounding_of(attention, tokenizer, sources: Sequence[Any], prompt_ids: Sequence[int] | None = None,
                 layers: Sequence[int] | None = None, heads: Sequence[int] | None = None) -> grounding_mod.Grounding:  # fmt: skip
    """A ``Grounding`` from a ``GenerationAttention``-like object (``rows``, ``prompt_len``,
    ``layers``, ``token_ids``, optionally ``prompt_ids``), the model's tokenizer and the sources."""
    prompt_ids = list(prompt_ids if prompt_ids is not None else getattr(attention, "prompt_ids", None) or [])
    if len(prompt_ids) != attention.prompt_len:
        raise UsageError(
            f"The captured attention covers {attention.prompt_len} prompt tokens but {len(prompt_ids)} prompt ids came with it; "
            "re-run %%ask with the local model so both come from the same generation."
        )
    decode = tokenizer.decode
    pieces = [decode([i]) for i in prompt_ids]  # one string per prompt token
    offsets, at = [], 0
    for p in pieces:
        offsets.append((at, at + len(p)))
        at += len(p)
    texts = [_get(s, "text", "") for s in sources]
    spans = grounding_mod.source_spans("".join(pieces), offsets, texts)
    recorded = list(getattr(attention, "layers", []) or range(_np(attention.rows[0]).shape[0]))
    index = None
    if layers is not None:
        missing = [layer for layer in layers if layer not in recorded]
        if missing:
            raise UsageError(f"Layer {missing[0]} was not recorded; the capture holds layers {recorded[0]}-{recorded[-1]}.")
        index = [recorded.index(layer) for layer in layers]
    labels = [{"number": int(_get(s, "number", j + 1) or j + 1), "label": str(_get(s, "label", None) or _get(s, "source", "") or f"source {j + 1}")} for j, s in enumerate(sources)]
    answer_tokens = [decode([i]) for i in attention.token_ids]
    return grounding_mod.Grounding.build(
        [_np(r) for r in attention.rows], attention.prompt_len, pieces, spans, answer_tokens, labels, layers=index, heads=heads, all_layers=recorded
    )


def grounding_widget(answer, layers: Sequence[int] | None = None, heads: Sequence[int] | None = None):
    """``GroundingWidget`` for an ``Answer`` made by the local model with attention capture."""
    from .grounding_view import GroundingWidget

    attention = find_attention(answer)
    if attention is None:
        raise UsageError(
            "This answer carries no captured attention, so there is nothing to show. %attnviz --last needs an answer "
            "from the local model (smollm2) generated with attention capture: run %%ask with the default local model, then %attnviz --last."
        )
    if not getattr(answer, "sources", None):
        raise UsageError("This answer used no retrieved sources (nothing relevant was found, or --no-retrieval), so there is no grounding to show.")
    name = str(getattr(answer, "model", "") or "smollm2").split(":", 1)[-1] or "smollm2"
    tokenizer = getattr(attention, "tokenizer", None) or load_model(name).tokenizer
    g = grounding_of(attention, tokenizer, answer.sources, prompt_ids=_prompt_ids(answer, attention, tokenizer), layers=layers, heads=heads)
    question = getattr(answer, "question", "")
    return GroundingWidget(g, title=f"Where the answer to “{question}” looked" if question else "Where the answer looked")


def _prompt_ids(answer, attention, tokenizer) -> list[int] | None:
    """The prompt's token ids: carried with the capture, or re-made from the final prompt's messages."""
    for holder in (attention, getattr(answer, "extras", None) or {}):
        ids = _get(holder, "prompt_ids", None)
        if ids is not None:
            return list(ids)
    records = [r for r in getattr(answer, "prompts", None) or [] if isinstance(r, dict) and r.get("messages")]
    if records and hasattr(tokenizer, "apply_chat_template"):
        text = tokenizer.apply_chat_template(records[-1]["messages"], add_generation_prompt=True)
        return list(tokenizer.encode(text))
    return None


def _get(obj, name, default=None):
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)
