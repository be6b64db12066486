"""Retrieval beyond one dense query: BM25 fused with dense search, small-to-big, a token budget.

``Index.search`` uses these pieces; each one can be switched off, so the answer benchmark
(``bench/bench_answers.py``) can show what each is worth:

- **hybrid** search: the dense (cosine) ranking and a lexical BM25 ranking (the ``bm25s``
  library) are fused. BM25 finds the exact identifiers (``sqlite3_busy_timeout``,
  ``core.hooksPath``) that a small embedder blurs. The default fusion is a convex
  combination of the two scores with equal weights (Bruch et al. 2023, "An Analysis of
  Fusion Functions for Hybrid Retrieval"): cosine min-max normalised over its candidates,
  BM25 divided by its best (its least is 0, no match, so a few lexical candidates are not
  stretched to 0..1): a chunk that one ranking scores far above the rest stays near the
  top. Reciprocal rank fusion (RRF, Cormack et al. 2009; ``fusion="rrf"``) uses ranks
  only, so a chunk that one ranking finds, however clearly, falls below chunks both rank
  middling (bench/results_retrieval_tuning.md).
- **small-to-big**: a matched chunk is handed on with its neighbours in the same document
  (``expand`` chunks each side, joined exactly by ``start_index``), and a chunk that is
  already inside an earlier window is not handed on twice.
- **distinct texts**: a chunk whose text (spaces aside) an earlier hit holds is dropped, and
  one that holds an earlier hit's text takes its place: the same paragraph in two files (a
  manual and its tutorial, a page saved twice) is handed on once.
- **budget**: instead of a fixed ``k``, hits are taken best first until ``budget`` tokens
  (counted by the caller's tokenizer) are used; the last one is cut to fit, never over.

The lexical index is derived data: it is rebuilt from the vector store's visible chunks
whenever the store's manifest changes (an add, a delete, an interrupted write), so it can
never disagree with the store, survives any crash, and needs no protocol of its own.

The module is over 400 lines because it is one recipe read top to bottom: the lexical index,
the two fusions, small-to-big and packing each feed the next, and ``search`` at the end runs
them in that order.
"""

from __future__ import annotations

import hashlib
import json
import re
import functools
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Sequence

from .documents import Hit
from .manifest import KEY, VERSION

if TYPE_CHECKING:
    import numpy as np

#: RRF's constant: 60 in the paper and in most libraries; larger flattens the fusion.
RRF_K = 60
#: The dense score's weight in the convex fusion (the lexical one has ``1 - DENSE_WEIGHT``):
#: equal weights, not tuned (0.4 and 0.6 were measured, bench/results_retrieval_tuning.md).
DENSE_WEIGHT = 0.5
#: How hybrid search fuses its two rankings: "convex" (normalised scores) or "rrf" (ranks).
FUSIONS = ("convex", "rrf")
#: Tokens a hit costs beyond its text in a prompt ("[3] " and the blank line after it).
PER_HIT_TOKENS = 4
#: A last hit cut to fewer tokens than this is dropped instead (a stub helps nobody).
MIN_CUT_TOKENS = 24

_WORD = re.compile(r"\w+")


def and_filters(*filters: dict | None) -> dict | None:
    """Store ``where`` filters combined with ``$and`` (None when there are none)."""
    parts = [f for f in filters if f]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


# ---------------------------------------------------------------------------
# Lexical search
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def lexical_tokens(text: str) -> list[str]:
    """Lower-cased words without English stopwords; identifiers also split at ``_``, kept whole too."""
    stop = _stopwords()
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word in stop:
            continue
        out.append(word)
        if "_" in word:
            out.extend(p for p in word.split("_") if len(p) > 1)
    return out


class LexicalIndex:
    """BM25 (``bm25s``) over a list of chunk records ``{"id", "text", "metadata"}``."""

    def __init__(self, records: Sequence[dict]):
        import bm25s

        self.records = list(records)
        self.ids = [r["id"] for r in self.records]
        self.retriever = bm25s.BM25()
        corpus = [lexical_tokens(r["text"]) or ["\0"] for r in self.records]
        if corpus:
            self.retriever.index(corpus, show_progress=False)

    @functools.cached_property
    def versions(self) -> dict[tuple, list[dict]]:
        """The records of each (source key, version): what small-to-big reads a hit's neighbours from."""
        out: dict[tuple, list[dict]] = {}
        for r in self.records:
            out.setdefault((r["metadata"].get(KEY), r["metadata"].get(VERSION)), []).append(r)
        return out

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """``(id, bm25 score)`` of the ``k`` best chunks with a positive score, best first."""
        terms = lexical_tokens(query)
        if not self.records or not terms:
            return []
        k = min(k, len(self.records))
        docs, scores = self.retriever.retrieve([terms], k=k, show_progress=False, n_threads=1)
        return [(self.ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]


_cache: dict[tuple, tuple[str, LexicalIndex]] = {}
_lock = threading.Lock()


def _signature(store) -> str:
    """Changes whenever a version of any source is committed, hidden or removed."""
    manifest = store.manifest()
    h = hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode())
    h.update(str(store.count()).encode())
    return h.hexdigest()


def lexical_index(store, hidden: Sequence[str] = ()) -> LexicalIndex:
    """The BM25 index of ``store``'s visible chunks, rebuilt only when the store changed."""
    key = (store.name, getattr(store, "path", None), store.collection)
    sig = _signature(store)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == sig:
            return cached[1]
    hide = set(hidden)
    records = [r for r in store.get() if r["metadata"].get(VERSION) not in hide]
    index = LexicalIndex(records)
    with _lock:
        _cache[key] = (sig, index)
    return index


def forget(store) -> None:
    """Drop the cached lexical index of ``store`` (after ``drop()``)."""
    with _lock:
        _cache.pop((store.name, getattr(store, "path", None), store.collection), None)


# ---------------------------------------------------------------------------
# Fusion
# ---------------------------------------------------------------------------


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ``sum(1 / (k + rank))`` over the rankings, best first."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, id_ in enumerate(ranking, 1):
            scores[id_] = scores.get(id_, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def _scale(scored: Sequence[tuple[str, float]], floor: float | None = None) -> dict[str, float]:
    """Scores rescaled so the best is 1.0 and ``floor`` (default: the list's least) is 0.0
    (all 1.0 when they are equal)."""
    if not scored:
        return {}
    values = [s for _, s in scored]
    lo, hi = (min(values) if floor is None else floor), max(values)
    return {i: (s - lo) / (hi - lo) if hi > lo else 1.0 for i, s in scored}


def convex(rankings: Sequence[Sequence[tuple[str, float]]], weights: Sequence[float], floors: Sequence[float | None] | None = None) -> list[tuple[str, float]]:
    """Convex combination fusion: ``sum(w * scaled score)`` over the rankings, best first.

    Each ranking's scores are rescaled to 0..1 over its own candidates (from ``floors[i]``,
    a score's least possible value, or else the candidates' least, to their best), so cosine
    and BM25 are on one scale; a chunk missing from a ranking gets 0 from it. Ties keep the
    order of first appearance (the first ranking's first).
    """
    scores: dict[str, float] = {}
    for scored, w, floor in zip(rankings, weights, floors or [None] * len(rankings)):
        for id_, s in _scale(scored, floor).items():
            scores[id_] = scores.get(id_, 0.0) + w * s
        for id_, _ in scored:
            scores.setdefault(id_, 0.0)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def hybrid(dense: list[Hit], lexical: list[tuple[str, float]], records: dict[str, dict], query_vector: "np.ndarray", vectors: Callable[[list[str]], dict[str, "np.ndarray"]], k: int, fusion: str = "convex") -> list[Hit]:
    """Fuse a dense ranking (``Hit``s with ids and cosine scores) and a lexical one (``(id, bm25)``) into ``k`` hits.

    Every hit keeps a cosine ``score`` (lexical-only hits get theirs from their stored
    vector), so a score threshold means the same in both modes; the order is the fusion's
    (``"convex"``: normalised scores, equal weights; ``"rrf"``: reciprocal ranks).
    """
    import numpy as np

    by_id = {h.id: h for h in dense}
    if fusion == "convex":
        # cosine: min-max over its candidates; BM25: from 0 (no match), its least possible score
        fused = convex([[(h.id, h.score) for h in dense], lexical], (DENSE_WEIGHT, 1.0 - DENSE_WEIGHT), (None, 0.0))[:k]
    elif fusion == "rrf":
        fused = rrf([[h.id for h in dense], [i for i, _ in lexical]])[:k]
    else:
        raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, not {fusion!r}")
    missing = [i for i, _ in fused if i not in by_id]
    if missing:
        found = vectors(missing)
        q = np.asarray(query_vector, dtype=np.float32).ravel()
        qn = q / (np.linalg.norm(q) or 1.0)
        for id_ in missing:
            rec = records[id_]
            v = np.asarray(found[id_], dtype=np.float32).ravel() if id_ in found else None
            cos = float(v @ qn / (np.linalg.norm(v) or 1.0)) if v is not None else 0.0
            by_id[id_] = Hit(rec["text"], cos, rec["metadata"], id_)
    return [by_id[i] for i, _ in fused]


# ---------------------------------------------------------------------------
# Small-to-big
# ---------------------------------------------------------------------------


def _span(meta: dict, text: str) -> tuple[int, int] | None:
    start = meta.get("start_index")
    return (int(start), int(start) + len(text)) if isinstance(start, int) else None


def _join(chunks: list[dict]) -> str:
    """Neighbouring chunks of one document, in order, their overlaps written once."""
    text, end = "", None
    for c in chunks:
        s, e = _span(c["metadata"], c["text"])
        if end is None:
            text = c["text"]
        elif s < end:
            text += c["text"][end - s:]
        else:
            text += "\n" + c["text"]
        end = max(end or e, e)
    return text


#: Metadata that tells one document of a source from another (loaders set them: PDF pages,
#: table rows, notebook cells); small-to-big windows never cross them.
DOCUMENT_FIELDS = ("page", "row", "cell")
#: Private metadata the ingest pipeline sets: the document's place among its source's
#: documents. Where present it alone tells documents apart (indexes written before it
#: fall back to DOCUMENT_FIELDS).
DOC = "_doc"


def distinct(hits: list[Hit]) -> list[Hit]:
    """The hits, best first, each text handed on once (whitespace collapsed when comparing).

    A hit whose text an earlier hit already contains is dropped; a hit that contains an
    earlier one's text takes that one's place (and score), so nothing is lost and nothing
    is read twice: the same paragraph chunked with or without its heading in two files.
    """
    out: list[Hit] = []
    keys: list[str] = []
    for hit in hits:
        key = " ".join(hit.text.split())
        if any(key in k for k in keys):
            continue
        inside = [i for i, k in enumerate(keys) if k in key]
        if not inside:
            out.append(hit)
            keys.append(key)
            continue
        first = inside[0]
        out[first], keys[first] = replace(hit, score=out[first].score), key
        for i in reversed(inside[1:]):
            del out[i], keys[i]
    return out


def expand(hits: list[Hit], siblings: Callable[[Hit], list[dict]], neighbours: int) -> list[Hit]:
    """Each hit widened to ``neighbours`` chunks each side in its document (same source, page, row, cell).

    ``siblings(hit)`` returns the chunk records of the hit's document (any order). A hit
    whose chunk is already inside an earlier hit's window is dropped (deduplicated).
    """
    if neighbours <= 0:
        return hits
    out: list[Hit] = []
    covered: set[str] = set()
    for hit in hits:
        if hit.id in covered:
            continue
        group = [r for r in siblings(hit) if _span(r["metadata"], r["text"]) is not None]
        group.sort(key=lambda r: r["metadata"]["start_index"])
        pos = next((i for i, r in enumerate(group) if r["id"] == hit.id), None)
        if pos is None or _span(hit.metadata, hit.text) is None:
            covered.add(hit.id)
            out.append(hit)
            continue
        window = [r for r in group[max(0, pos - neighbours): pos + neighbours + 1] if r["id"] not in covered]
        if not any(r["id"] == hit.id for r in window):
            continue
        # keep the window contiguous around the hit
        ids = [r["id"] for r in window]
        i = ids.index(hit.id)
        lo = i
        while lo > 0 and group.index(window[lo - 1]) == group.index(window[lo]) - 1:
            lo -= 1
        hi = i
        while hi < len(window) - 1 and group.index(window[hi + 1]) == group.index(window[hi]) + 1:
            hi += 1
        window = window[lo: hi + 1]
        covered.update(r["id"] for r in window)
        meta = {**hit.metadata, "start_index": window[0]["metadata"]["start_index"], "matched_start_index": hit.metadata.get("start_index"), "chunks": len(window)}
        out.append(Hit(_join(window), hit.score, meta, hit.id))
    return out


# ---------------------------------------------------------------------------
# Budget
# ---------------------------------------------------------------------------


def truncate(text: str, tokens: int, count: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` (cut at a space when one is near) with at most ``tokens`` tokens."""
    if count(text) <= tokens:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[:mid]) <= tokens:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo]
    space = cut.rfind(" ")
    return cut[:space] if space > lo * 0.8 else cut


def pack(hits: Sequence[Hit], budget: int, count: Callable[[str], int], per_hit: int = PER_HIT_TOKENS, min_cut: int = MIN_CUT_TOKENS) -> list[Hit]:
    """Hits, best first, while their tokens (``count``) fit in ``budget``; the last one cut to fit.

    The total of ``count(h.text) + per_hit`` over the result never exceeds ``budget``.
    """
    out: list[Hit] = []
    left = budget
    for hit in hits:
        need = count(hit.text) + per_hit
        if need <= left:
            out.append(hit)
            left -= need
            continue
        room = left - per_hit
        if room >= min_cut:
            text = truncate(hit.text, room, count)
            if text.strip():
                out.append(replace(hit, text=text, metadata={**hit.metadata, "truncated": True}))
        break
    return out


# ---------------------------------------------------------------------------
# All together, on an Index
# ---------------------------------------------------------------------------


@dataclass
class RetrievalSettings:
    """How ``Index.search`` finds and hands on chunks (each part can be switched off)."""

    mode: str = "hybrid"  # "dense" (cosine only) or "hybrid" (cosine + BM25, fused)
    fusion: str = "convex"  # hybrid's fusion: "convex" (normalised scores, equal weights) or "rrf"
    candidates: int = 40  # hits each ranking contributes before fusion and packing
    expand: int = 0  # neighbouring chunks added on each side of a hit (small-to-big)
    budget: int | None = None  # tokens to fill (needs count_tokens); None: a fixed k


def _matches(meta: dict, where: dict | None) -> bool:
    """Chroma-style equality filters (``{"source": x}``, ``{"$and": [...]}``) on metadata."""
    if not where:
        return True
    if "$and" in where:
        return all(_matches(meta, w) for w in where["$and"])
    for key, cond in where.items():
        if isinstance(cond, dict):
            if "$eq" in cond and meta.get(key) != cond["$eq"]:
                return False
            if "$nin" in cond and meta.get(key) in cond["$nin"]:
                return False
            if "$in" in cond and meta.get(key) not in cond["$in"]:
                return False
            if set(cond) - {"$eq", "$nin", "$in"}:
                raise ValueError(f"unsupported filter {cond}")
        elif meta.get(key) != cond:
            return False
    return True


def search(index, query: str, k: int, where: dict | None, settings: RetrievalSettings, count_tokens: Callable[[str], int] | None = None) -> list[Hit]:
    """The hits ``Index.search`` returns (private metadata still on; the caller strips it)."""
    store = index.store
    vector = index.embedder.embed_query(query)
    index._check_dimension(vector.reshape(1, -1))
    hidden = index._hidden_versions()
    flt = and_filters(where, {VERSION: {"$nin": hidden}} if hidden else None)
    n = max(k, settings.candidates) if (settings.budget or settings.mode == "hybrid") else 2 * k  # spares for `distinct`
    hits = store.query(vector, n, flt)
    lex = None
    if settings.mode == "hybrid":
        lex = lexical_index(store, hidden)
        records = {r["id"]: r for r in lex.records}
        try:
            found = [(i, s) for i, s in lex.search(query, n * 3 if where else n) if _matches(records[i]["metadata"], where)][:n]
        except ValueError:  # a filter BM25 cannot apply: dense only
            found = []

        def vectors(ids: list[str]) -> dict:
            return {r["id"]: r["vector"] for r in store.get(ids=ids, vectors=True)}

        hits = hybrid(hits, found, records, vector, vectors, n, settings.fusion)
    elif settings.mode != "dense":
        raise ValueError(f"retrieval mode must be 'dense' or 'hybrid', not {settings.mode!r}")
    hits = distinct(hits)
    if settings.expand > 0:
        groups: dict[tuple, list[dict]] = {}

        def siblings(hit: Hit) -> list[dict]:
            key = (hit.metadata.get(KEY), hit.metadata.get(VERSION))
            if key not in groups:  # hybrid: the BM25 index already holds every visible record; dense asks the store
                if not key[0]:
                    groups[key] = []
                elif lex is not None:
                    groups[key] = lex.versions.get(key, [])
                else:
                    groups[key] = store.get(where={"$and": [{KEY: key[0]}, {VERSION: key[1]}]})
            # one document of the source: a PDF page, a table row, a notebook cell
            fields = (DOC,) if DOC in hit.metadata else DOCUMENT_FIELDS
            doc = tuple(hit.metadata.get(f) for f in fields)
            return [r for r in groups[key] if tuple(r["metadata"].get(f) for f in fields) == doc]

        hits = expand(hits, siblings, settings.expand)
    if settings.budget and count_tokens is not None:
        return pack(hits, settings.budget, count_tokens)
    return hits[:k]
