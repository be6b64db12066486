"""Chroma-style ``where`` filters as Qdrant Filters, for both engines (their models share names)."""

from __future__ import annotations

from llm_magics.errors import UsageError
from llm_magics.ingest.stores import Where


def to_filter(where: Where | None, models):
    """Chroma-style ``where`` (``{"source": "a.pdf"}``, ``{"page": {"$gte": 2}}``, ``$and``/``$or``)
    as a Filter of ``models`` (``qdrant_edge`` or ``qdrant_client.models``: same names but Range)."""
    if not where:
        return None
    range_ = getattr(models, "RangeFloat", None) or models.Range
    must, should, must_not = [], [], []
    for key, cond in where.items():
        if key in ("$and", "$or"):
            parts = [to_filter(w, models) for w in cond]
            (must if key == "$and" else should).extend(p for p in parts if p is not None)
            continue
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        for op, arg in ops.items():
            if op in ("$eq", "$ne"):
                (must if op == "$eq" else must_not).append(models.FieldCondition(key=key, match=models.MatchValue(value=arg)))
            elif op in ("$in", "$nin"):
                (must if op == "$in" else must_not).append(models.FieldCondition(key=key, match=models.MatchAny(any=list(arg))))
            elif op in ("$gt", "$gte", "$lt", "$lte"):
                must.append(models.FieldCondition(key=key, range=range_(**{op[1:]: arg})))
            else:
                raise UsageError(f"Unknown filter operator {op!r}. Use $eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $and, $or.")
    return models.Filter(must=must or None, should=should or None, must_not=must_not or None)
