"""The built-in tools, a plugin like any other: ``calculator``, ``sql`` and ``search``.

- ``calculator`` evaluates arithmetic by walking its ``ast`` (numbers, + - * / // % **,
  parentheses and a few math functions); nothing is ever ``eval``-ed.
- ``sql`` runs one query over any SQLAlchemy URL (``--db``) on a connection that refuses
  writes: SQLite opens the file read-only (``mode=ro``) with ``PRAGMA query_only``; other
  databases run every transaction as ``SET TRANSACTION READ ONLY``.
- ``search`` searches a collection (``--collection``, an ``Index``) and returns numbered
  passages with their sources, which the agent's answer cites.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass, replace

from pydantic import BaseModel, Field

from ..errors import UsageError
from ..hookspecs import hookimpl
from .tools import Tool, ToolResult, session_tools

# ─── calculator ────────────────────────────────────────────────────────────────

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}  # fmt: skip
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {"sqrt": math.sqrt, "log": math.log, "log10": math.log10, "exp": math.exp, "sin": math.sin, "cos": math.cos,
              "tan": math.tan, "abs": abs, "round": round, "min": min, "max": max, "floor": math.floor, "ceil": math.ceil}  # fmt: skip
_CONSTANTS = {"pi": math.pi, "e": math.e}


def calculate(expression: str) -> float | int:
    """The value of an arithmetic expression, or ValueError naming what is not allowed."""
    expression = re.sub(r"(?<=\d),(?=\d{3}\b)", "", expression)  # 1,000,000 -> 1000000
    expression = expression.replace("^", "**").replace("×", "*").replace("÷", "/")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from None
    return _value(tree.body)


def _value(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 1000:
            raise ValueError("exponent too large (at most 1000)")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        return _FUNCTIONS[node.func.id](*[_value(a) for a in node.args])
    allowed = "numbers, + - * / // % ** ( ), pi, e, " + ", ".join(_FUNCTIONS)
    raise ValueError(f"{ast.unparse(node)!r} is not allowed; use {allowed}")


def _calculator(expression: str) -> str:
    value = calculate(expression)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    elif isinstance(value, float):
        value = round(value, 6)
    return str(value)


class CalculatorArgs(BaseModel):
    expression: str = Field(description="An arithmetic expression such as (12 + 30) * 2 / 7 or sqrt(2)")


calculator = Tool(
    "calculator",
    "Evaluate an arithmetic expression (+ - * / ** parentheses, sqrt, log, round) and return the number.",
    {"type": "object", "properties": {"expression": {"type": "string", "description": CalculatorArgs.model_fields["expression"].description}},
     "required": ["expression"]},  # fmt: skip
    _calculator,
    CalculatorArgs,
)


# ─── sql ───────────────────────────────────────────────────────────────────────


def read_only_engine(url: str):
    """A SQLAlchemy engine whose connections refuse writes."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        database = u.database or ""
        if database in ("", ":memory:"):
            raise UsageError("--db sqlite needs a file: sqlite:///path/to/file.db (an in-memory database has nothing to read).")
        import os

        if not database.startswith("file:") and not os.path.exists(database):
            raise UsageError(f"No SQLite database at {database!r}. Pass --db sqlite:///PATH to an existing file.")
        path = database if database.startswith("file:") else f"file:{os.path.abspath(database)}"
        engine = create_engine(f"sqlite:///{path}?mode=ro&uri=true")

        @event.listens_for(engine, "connect")
        def _query_only(dbapi_connection, _record):  # refuses writes even where mode=ro is ignored
            dbapi_connection.execute("PRAGMA query_only = ON")

        return engine
    engine = create_engine(url)

    @event.listens_for(engine, "begin")
    def _read_only(connection):
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")

    return engine


@dataclass
class SqlTool(Tool):
    """Runs one SQL query, read-only; the description lists the tables and their columns."""

    max_rows: int = 20

    def bind(self, db: str | None = None, **context) -> "SqlTool":
        if not db:
            if self.context.get("engine") is not None:
                return self
            raise UsageError("The sql tool needs a database: --db URL (any SQLAlchemy URL, e.g. sqlite:///data.db).")
        from sqlalchemy import inspect

        engine = read_only_engine(db)
        try:
            inspector = inspect(engine)
            tables = [f"{t}({', '.join(c['name'] for c in inspector.get_columns(t))})" for t in inspector.get_table_names()]
        except Exception as e:  # noqa: BLE001 - any driver error, said plainly
            raise UsageError(f"Could not open the database {db!r}: {type(e).__name__}: {e}. Check --db.") from None
        description = f"Run one read-only SQL SELECT query on the database and return the rows. Tables: {'; '.join(tables)}."
        bound = replace(self, description=description, context={"db": db, "engine": engine})
        bound.func = bound._query
        return bound

    def _query(self, query: str) -> str:
        from sqlalchemy import text

        engine = self.context["engine"]
        try:
            with engine.connect() as connection:
                result = connection.execute(text(query))
                if not result.returns_rows:
                    return "The query returned no rows."
                columns = list(result.keys())
                rows = result.fetchmany(self.max_rows + 1)
        except Exception as e:  # noqa: BLE001 - the error goes back to the model
            message = str(getattr(e, "orig", None) or e).split("\n")[0]
            raise RuntimeError(f"SQL error: {message}") from None
        lines = [" | ".join(columns)] + [" | ".join(_cell(v) for v in row) for row in rows[: self.max_rows]]
        if len(rows) > self.max_rows:
            lines.append(f"... (more than {self.max_rows} rows; add a LIMIT or a WHERE)")
        return "\n".join(lines) if rows else " | ".join(columns) + "\n(no rows)"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


sql = SqlTool(
    "sql",
    "Run one read-only SQL SELECT query on the database (--db) and return the rows.",
    {"type": "object", "properties": {"query": {"type": "string", "description": "One SQL SELECT statement"}}, "required": ["query"]},
)


# ─── search ────────────────────────────────────────────────────────────────────


@dataclass
class SearchTool(Tool):
    """Searches a collection; returns numbered passages with their sources."""

    k: int = 3

    def bind(self, index=None, collection: str | None = None, **context) -> "SearchTool":
        if index is None and self.context.get("index") is not None:
            return self
        from ..ingest.index import Index

        index = index if index is not None else Index(collection=collection)
        description = f"Search the documents of collection '{index.collection}' and return passages with their sources."
        bound = replace(self, context={"index": index}, description=description)
        bound.func = bound._search
        return bound

    def _search(self, query: str) -> ToolResult:
        hits = self.context["index"].search(query, k=self.k)
        if not hits:
            return ToolResult("No passages found.")
        lines = [f"[{i}] {h.text.strip()} (source: {h.metadata.get('source', '?')})" for i, h in enumerate(hits, 1)]
        return ToolResult("\n".join(lines), list(hits))


search = SearchTool(
    "search",
    "Search the ingested documents (--collection) and return passages with their sources.",
    {"type": "object", "properties": {"query": {"type": "string", "description": "What to look for"}}, "required": ["query"]},
)


@hookimpl
def register_tools(register):
    register(calculator)
    register(sql)
    register(search)
    for t in list(session_tools.values()):  # @tool functions from the notebook
        register(t)
