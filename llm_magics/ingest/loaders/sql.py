"""SQL: a query (or whole tables) over a SQLAlchemy URL; each row or group of rows is a document.

``sqlite:///shop.db`` works out of the box; other databases need their SQLAlchemy driver.
Passwords in the URL never reach the metadata.
"""

from __future__ import annotations

import os
from typing import Iterator

from pydantic import Field

from ..documents import Document
from ...errors import UsageError
from .base import Loader, SkipSource
from .tables import RowOptions, group_rows


class SQLOptions(RowOptions):
    query: str | None = Field(None, description="SELECT statement to run (default: every row of every table, or of `table`).")
    table: str | None = Field(None, description="Read this table instead of running a query.")


def redacted(url: str) -> str:
    """The URL with any password replaced by ***."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:  # noqa: BLE001
        return url
    return parsed.render_as_string(hide_password=True) if parsed.password else url


class SQLLoader(Loader):
    """Rows from a SQL database named by a SQLAlchemy URL (sqlite:///file.db out of the box)."""

    name = "sql"
    schemes = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle", "duckdb", "snowflake")
    Options = SQLOptions

    @classmethod
    def source_key(cls, source: str, options: dict) -> str:
        """The URL with its password masked (the key is stored and shown), plus the options."""
        return super().source_key(redacted(source), options)

    def load(self, source: str) -> Iterator[Document]:
        import sqlalchemy as sa
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

        try:
            url = sa.engine.make_url(source)
        except ArgumentError as e:
            raise UsageError(f"{source!r} is not a SQLAlchemy URL ({e}). Write e.g. sqlite:///path/to/file.db") from None
        if url.get_backend_name() == "sqlite":
            db = url.database
            if not db or db == ":memory:":
                raise UsageError("An in-memory sqlite database is empty. Name a file: sqlite:///path/to/file.db")
            if not os.path.isfile(db):
                raise SkipSource(f"no such database file {db!r}")
            # Read-only, so a mistyped path never creates a file and ingest never writes.
            url = url.set(database=f"file:{db}?mode=ro", query={"uri": "true"})
        try:
            engine = sa.create_engine(url)
        except NoSuchModuleError as e:
            raise UsageError(f"No SQLAlchemy driver for {url.drivername!r}: {e}. pip install the driver (e.g. psycopg for postgresql).") from None
        shown = redacted(source)
        try:
            with engine.connect() as conn:
                for label, result in self._results(sa, conn):
                    columns = list(result.keys())
                    missing = [c for c in [*(self.options.columns or []), *self.options.metadata_columns] if c not in columns]
                    if missing:
                        raise UsageError(f"{label} has no column(s) {', '.join(missing)}. Its columns: {', '.join(columns)}.")
                    rows = (dict(zip(columns, r)) for r in result)
                    base = {"source": shown, "title": label}
                    base["query" if self.options.query else "table"] = label
                    yield from group_rows(rows, self.options, base)
        except SQLAlchemyError as e:
            raise SkipSource(f"SQL error: {' '.join(str(e.orig if getattr(e, 'orig', None) else e).split())[:200]}") from None
        finally:
            engine.dispose()

    def _results(self, sa, conn):
        if self.options.query:
            yield self.options.query, conn.execute(sa.text(self.options.query))
            return
        tables = [self.options.table] if self.options.table else sa.inspect(conn).get_table_names()
        if not tables:
            raise SkipSource("database has no tables")
        meta = sa.MetaData()
        for name in tables:
            try:
                table = sa.Table(name, meta, autoload_with=conn)
            except sa.exc.NoSuchTableError:
                known = ", ".join(sa.inspect(conn).get_table_names())
                raise UsageError(f"No table {name!r}. Tables: {known}.") from None
            yield name, conn.execute(sa.select(table))
