"""``RetrievalWidget``: what ``%%ask`` retrieved, what it sent, and what it cited."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

HERE = Path(__file__).parent
_MARK = re.compile(r"\[(\d+)\]")


def _get(obj, name, default=None):
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def _source(s, number: int) -> dict:
    """A source (``ask.Source``, ``documents.Hit`` or a dict) as plain JSON."""
    md = dict(_get(s, "metadata", None) or {})
    source = _get(s, "source", None) or md.get("source", "")
    page = _get(s, "page", None) if _get(s, "page", None) is not None else md.get("page")
    start = _get(s, "start_index", None) if _get(s, "start_index", None) is not None else md.get("start_index")
    label = ", ".join([source or "(unknown source)"] + ([f"p. {page}"] if page is not None else []) + ([f"chars {start}+"] if start is not None else []))
    return {
        "number": int(_get(s, "number", None) or number),
        "text": str(_get(s, "text", "")),
        "score": float(_get(s, "score", 0.0) or 0.0),
        "source": str(source),
        "page": page,
        "start_index": start,
        "label": label,
        "cited": bool(_get(s, "cited", False)),
    }


def _prompt(p) -> dict:
    messages = _get(p, "messages", None) or []
    return {
        "step": str(_get(p, "step", "")),
        "messages": [{"role": str(_get(m, "role", "")), "content": str(_get(m, "content", ""))} for m in messages],
        "reply": str(_get(p, "reply", "")),
    }


def _jsonable(d: dict) -> dict:
    return {str(k): (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in d.items()}


#: Entries of ``Answer.timings`` that are counts or rates, not seconds (the timing callback
#: counts model calls and generated tokens beside its clocks).
_COUNT_SUFFIXES = ("calls", "tokens", "count", "_n", "_per_s")


def split_timings(timings: dict) -> tuple[dict, dict]:
    """``Answer.timings`` -> (seconds, counts): ``llm_calls`` and ``completion_tokens`` are not durations."""
    seconds, counts = {}, {}
    for key, value in _jsonable(timings).items():
        is_count = key.endswith(_COUNT_SUFFIXES) or isinstance(value, bool) or not isinstance(value, (int, float))
        (counts if is_count else seconds)[key] = value
    return seconds, counts


class RetrievalWidget(anywidget.AnyWidget):
    """The retrieved chunks with scores, sources and pages; the final prompt; citations;
    timings and token counts. Clicking a chunk shows its full text inside the prompt.

    ``RetrievalWidget(answer)`` takes an ``Answer`` or anything shaped like one:
    ``.answer``, ``.sources`` (text, score, metadata), ``.prompts``, ``.timings``, ``.usage``.
    """

    _esm = HERE / "js" / "retrieval.js"
    _css = HERE / "js" / "retrieval.css"

    question = t.Unicode("").tag(sync=True)
    answer = t.Unicode("").tag(sync=True)
    model_name = t.Unicode("").tag(sync=True)
    chain_type = t.Unicode("").tag(sync=True)
    grounded = t.Bool(True).tag(sync=True)
    note = t.Unicode("").tag(sync=True)
    sources = t.List(t.Dict()).tag(sync=True)
    dropped = t.List(t.Dict()).tag(sync=True)
    prompts = t.List(t.Dict()).tag(sync=True)
    citations = t.List(t.Dict()).tag(sync=True)  # {"number", "start", "end"}: "[n]" marks in the answer
    timings = t.Dict().tag(sync=True)  # seconds only
    counts = t.Dict().tag(sync=True)  # counts and rates that came with the timings (llm_calls, completion_tokens, tokens_per_s)
    usage = t.Dict().tag(sync=True)
    chunk = t.Int(-1).tag(sync=True)  # index into sources of the chunk shown in full

    def __init__(self, answer: Any, *, chunk: int = -1):
        text = str(_get(answer, "answer", "") or "")
        sources = [_source(s, i) for i, s in enumerate(_get(answer, "sources", None) or [], 1)]
        numbers = {s["number"] for s in sources}
        citations = [{"number": int(m.group(1)), "start": m.start(), "end": m.end()} for m in _MARK.finditer(text) if int(m.group(1)) in numbers]
        for s in sources:  # a source is cited if the Answer says so or its mark is in the text
            s["cited"] = s["cited"] or any(c["number"] == s["number"] for c in citations)
        usage = _get(answer, "usage", None)
        usage_dict = {
            "prompt_tokens": _get(usage, "prompt_tokens", 0) or 0,
            "completion_tokens": _get(usage, "completion_tokens", 0) or 0,
            "finish_reason": _get(usage, "finish_reason", None),
            **{k: v for k, v in (_get(usage, "extra", None) or {}).items() if isinstance(v, (int, float, str))},
        } if usage is not None else {}
        seconds, counts = split_timings(dict(_get(answer, "timings", None) or {}))
        super().__init__(
            question=str(_get(answer, "question", "") or ""),
            answer=text,
            model_name=str(_get(answer, "model", "") or ""),
            chain_type=str(_get(answer, "chain_type", "") or ""),
            grounded=bool(_get(answer, "grounded", True)),
            note=str(_get(answer, "note", "") or ""),
            sources=sources,
            dropped=[_source(s, 0) for s in _get(answer, "dropped", None) or []],
            prompts=[_prompt(p) for p in _get(answer, "prompts", None) or []],
            citations=citations,
            timings=seconds,
            counts=counts,
            usage=_jsonable(usage_dict),
            chunk=chunk,
        )
