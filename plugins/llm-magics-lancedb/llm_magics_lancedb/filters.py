"""Chroma-style ``where`` filters as LanceDB SQL predicates on the ``metadata`` JSON column.

``metadata`` is a ``lance.json`` column (JSONB); Lance's JSON functions read one key:
``json_extract(metadata, '$["page"]')`` gives the value as JSON text (``1``, ``"a.pdf"``,
``true``; NULL when the key is missing). Equality compares that text, so types stay apart as
in Chroma (``"1"`` is not ``1``); numbers compare numerically through ``TRY_CAST(... AS
DOUBLE)`` of the text (``2`` equals ``2.0``; a string or bool casts to NULL, never to a
number; Lance's ``json_get_float`` would coerce ``"1"`` and raise on ``"abc"``). Ranges apply
to numbers, and to strings against a string bound. Every literal goes through ``quote``:
keys and values may hold quotes.
"""

from __future__ import annotations

import json

from llm_magics.errors import UsageError
from llm_magics.ingest.stores import Where

OPERATORS = "$eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $and, $or"
_SIGNS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def quote(value: str) -> str:
    """A SQL string literal: single quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _literal(x) -> str:
    if isinstance(x, bool):
        return "TRUE" if x else "FALSE"
    if _number(x):
        return repr(float(x)) if isinstance(x, float) else str(int(x))
    return quote(x)


def _json(key: str) -> str:
    """The value under ``key`` as JSON text, NULL if absent."""
    return f"json_extract(metadata, {quote('$[' + json.dumps(key, ensure_ascii=False) + ']')})"


def _as_number(key: str) -> str:
    return f"TRY_CAST({_json(key)} AS DOUBLE)"


def _is_string(key: str) -> str:
    return f"{_json(key)} LIKE '\"%'"


def _scalar(key: str, op: str, arg) -> None:
    if not (isinstance(arg, (str, bool)) or _number(arg)):
        raise UsageError(f"Filter {key!r} {op}: compare with a string, number or bool, not {type(arg).__name__} ({arg!r}).")


def _eq(key: str, arg) -> str:
    """TRUE when the key holds ``arg`` (never NULL)."""
    _scalar(key, "$eq", arg)
    if _number(arg):
        return f"COALESCE({_as_number(key)} = {_literal(arg)}, FALSE)"
    return f"COALESCE({_json(key)} = {quote(json.dumps(arg, ensure_ascii=False))}, FALSE)"


def _range(key: str, op: str, arg) -> str:
    _scalar(key, op, arg)
    sign = _SIGNS[op]
    if _number(arg):
        return f"COALESCE({_as_number(key)} {sign} {_literal(arg)}, FALSE)"
    if isinstance(arg, str):
        return f"COALESCE({_is_string(key)} AND json_get_string(metadata, {quote(key)}) {sign} {quote(arg)}, FALSE)"
    raise UsageError(f"Filter {key!r} {op}: ranges compare numbers or strings, not {arg!r}.")


def to_sql(where: Where | None) -> str | None:
    """Chroma-style ``where`` (``{"source": "a.pdf"}``, ``{"page": {"$gte": 2}}``, ``$and``/``$or``,
    ``$in``/``$nin``, ``$ne``) as a LanceDB SQL predicate; None for no filter."""
    if not where:
        return None
    if not isinstance(where, dict):
        raise UsageError(f"A filter is a dict such as {{'source': 'a.pdf'}} or {{'page': {{'$gte': 2}}}}, not {where!r}.")
    return _predicate(where)


def _predicate(where: Where) -> str:
    parts = []
    for key, cond in where.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, (list, tuple)):
                raise UsageError(f"{key} takes a list of filters, e.g. {{'{key}': [{{'source': 'a.pdf'}}, {{'page': 2}}]}}.")
            inner = [_predicate(w) for w in cond]
            if not inner:
                parts.append("TRUE" if key == "$and" else "FALSE")
            else:
                parts.append("(" + (" AND " if key == "$and" else " OR ").join(inner) + ")")
            continue
        if key.startswith("$"):
            raise UsageError(f"Unknown filter operator {key!r}. Use {OPERATORS}.")
        for op, arg in (cond if isinstance(cond, dict) else {"$eq": cond}).items():
            if op == "$eq":
                parts.append(_eq(key, arg))
            elif op == "$ne":
                parts.append(f"NOT {_eq(key, arg)}")
            elif op in ("$in", "$nin"):
                if not isinstance(arg, (list, tuple, set)):
                    raise UsageError(f"Filter {key!r} {op} takes a list, e.g. {{'{key}': {{'{op}': ['a.pdf', 'b.md']}}}}.")
                any_ = "(" + " OR ".join(_eq(key, a) for a in arg) + ")" if arg else "FALSE"
                parts.append(any_ if op == "$in" else f"NOT {any_}")
            elif op in _SIGNS:
                parts.append(_range(key, op, arg))
            else:
                raise UsageError(f"Unknown filter operator {op!r}. Use {OPERATORS}.")
    return "(" + " AND ".join(parts) + ")" if parts else "TRUE"
