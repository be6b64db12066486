"""Tables and records: CSV/TSV rows, JSON/JSONL records. A row (or a group of rows) is a document.

A row becomes ``column: value`` lines, which embed better than a bare comma-separated
line because each value keeps its column name beside it.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterable, Iterator

from pydantic import Field

from ..documents import Document
from ...errors import UsageError
from ...extension import Options
from .base import Loader, SkipSource, check_regular_file, decode_text, file_metadata, read_bytes, title_from_path


class RowOptions(Options):
    rows_per_document: int = Field(1, ge=1, description="Rows grouped into one document (1: each row is a document).")
    columns: list[str] | None = Field(None, description="Columns whose values form the text (default: all).")
    metadata_columns: list[str] = Field(default_factory=list, description="Columns copied into each document's metadata.")


TEXT_KEY = "__text__"  # a row holding a bare text (JSON text_field) rather than columns


def row_text(row: dict, columns: list[str] | None) -> str:
    if TEXT_KEY in row:
        return str(row[TEXT_KEY] or "")
    keys = columns or list(row)
    return "\n".join(f"{k}: {_cell(row.get(k))}" for k in keys if row.get(k) not in (None, ""))


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return " ".join(str(value).split())


def scalar(value: Any) -> str | int | float | bool | None:
    """A metadata-safe value (vector stores keep only scalars)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return _cell(value)


def group_rows(rows: Iterable[dict], options: RowOptions, base: dict) -> Iterator[Document]:
    """Documents of ``rows_per_document`` rows each; ``row`` is the first row's 1-based number."""
    size = options.rows_per_document
    batch: list[tuple[int, dict]] = []

    def emit() -> Document | None:
        texts = [row_text(r, options.columns) for _, r in batch]
        text = "\n\n".join(t for t in texts if t)
        if not text.strip():
            return None
        meta = dict(base, row=batch[0][0])
        if size > 1:
            meta["row_end"] = batch[-1][0]
        for col in options.metadata_columns:
            meta[col] = scalar(batch[0][1].get(col))
        return Document(text, meta)

    for number, row in enumerate(rows, start=1):
        batch.append((number, row))
        if len(batch) == size:
            if (doc := emit()) is not None:
                yield doc
            batch = []
    if batch and (doc := emit()) is not None:
        yield doc


def _check_columns(options: RowOptions, header: list[str], source: str) -> None:
    wanted = [*(options.columns or []), *options.metadata_columns]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise UsageError(f"{source} has no column(s) {', '.join(missing)}. Its columns: {', '.join(header)}.")


class CSVLoader(Loader):
    """CSV and TSV files: each row (or ``rows_per_document`` rows) becomes a document."""

    name = "csv"
    extensions = (".csv", ".tsv", ".tab")
    Options = RowOptions

    def load(self, source: str) -> Iterator[Document]:
        st = check_regular_file(source)
        text = decode_text(read_bytes(source))
        if source.lower().endswith((".tsv", ".tab")):
            dialect: Any = csv.excel_tab
        else:
            try:
                dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
            except csv.Error:
                dialect = csv.excel
        reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
        try:
            header = [h for h in (reader.fieldnames or []) if h is not None]
            if not header:
                raise SkipSource("no header row")
            _check_columns(self.options, header, source)
            rows = [{k: v for k, v in row.items() if k is not None} for row in reader]
        except csv.Error as e:
            raise SkipSource(f"malformed CSV ({e})") from None
        if not rows:
            raise SkipSource("no data rows")
        yield from group_rows(rows, self.options, file_metadata(source, st, title=title_from_path(source)))


class JSONOptions(RowOptions):
    text_field: str | None = Field(None, description="Dotted path of the field that holds the text (default: the whole record as 'key: value' lines).")
    records: str | None = Field(None, description="Dotted path to the list of records inside a JSON document (e.g. 'data.items').")


def dig(obj: Any, path: str | None) -> Any:
    for part in (path or "").split(".") if path else ():
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return None
    return obj


class JSONLoader(Loader):
    """JSON (a list of records, or ``records=PATH``) and JSON Lines; ``text_field`` picks the text."""

    name = "json"
    extensions = (".json", ".jsonl", ".ndjson", ".geojson")
    Options = JSONOptions

    def load(self, source: str) -> Iterator[Document]:
        st = check_regular_file(source)
        text = decode_text(read_bytes(source))
        base = file_metadata(source, st, title=title_from_path(source))
        lines = source.lower().endswith((".jsonl", ".ndjson"))
        if lines:
            records = list(self._lines(text))
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise SkipSource(f"invalid JSON (line {e.lineno}: {e.msg})") from None
            data = dig(data, self.options.records) if self.options.records else data
            if data is None:
                raise UsageError(f"{source} has nothing at records={self.options.records!r}. Check the dotted path.")
            records = data if isinstance(data, list) else [data]
        yield from group_rows((self._as_row(r) for r in records), self.options, base)

    def _lines(self, text: str) -> Iterator[Any]:
        bad = 0
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                bad += 1
        # A few broken lines are tolerated; a file of them is not JSON Lines at all.
        if bad > len(text.splitlines()) // 2:
            raise SkipSource(f"invalid JSON Lines ({bad} lines do not parse)")

    def _as_row(self, record: Any) -> dict:
        field = self.options.text_field
        if field is not None:
            value = dig(record, field)
            row = {TEXT_KEY: value if isinstance(value, str) else (_cell(value) if value is not None else "")}
            row.update({c: dig(record, c) for c in self.options.metadata_columns})
            return row
        if isinstance(record, dict):
            return record
        return {"value": record}
