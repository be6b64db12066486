"""Jupyter notebooks: one document per cell, with ``cell`` (0-based index) and ``cell_type``."""

from __future__ import annotations

import json
from typing import Iterator

from pydantic import Field

from ..documents import Document
from ...extension import Options
from .base import Loader, SkipSource, check_regular_file, decode_text, file_metadata, read_bytes, title_from_path
from .text import _ATX


class NotebookOptions(Options):
    cell_types: list[str] = Field(default_factory=lambda: ["markdown", "code"], description="Cell types to read (markdown, code, raw).")
    include_outputs: bool = Field(False, description="Append the text outputs of code cells.")


class NotebookLoader(Loader):
    """Jupyter notebooks (.ipynb): each cell is a document, tagged with its index and type."""

    name = "ipynb"
    extensions = (".ipynb",)
    Options = NotebookOptions

    def load(self, source: str) -> Iterator[Document]:
        st = check_regular_file(source)
        try:
            nb = json.loads(decode_text(read_bytes(source)))
        except json.JSONDecodeError as e:
            raise SkipSource(f"invalid notebook JSON (line {e.lineno}: {e.msg})") from None
        cells = nb.get("cells") if isinstance(nb, dict) else None
        if not isinstance(cells, list):
            # nbformat 3 kept cells under worksheets
            sheets = nb.get("worksheets") if isinstance(nb, dict) else None
            cells = [c for ws in sheets or [] for c in ws.get("cells", [])] if isinstance(sheets, list) else None
        if cells is None:
            raise SkipSource("not a Jupyter notebook (no cells)")
        title = _notebook_title(cells) or title_from_path(source)
        language = ((nb.get("metadata") or {}).get("kernelspec") or {}).get("language") or (
            (nb.get("metadata") or {}).get("language_info") or {}
        ).get("name")
        found = 0
        for index, cell in enumerate(cells):
            if not isinstance(cell, dict):
                continue
            cell_type = cell.get("cell_type", "code")
            if cell_type not in self.options.cell_types:
                continue
            text = _joined(cell.get("source", cell.get("input", "")))
            if self.options.include_outputs and cell_type == "code":
                outputs = [_output_text(o) for o in cell.get("outputs", [])]
                outputs = [o for o in outputs if o.strip()]
                if outputs:
                    text += "\n\n# Output:\n" + "\n".join(outputs)
            if not text.strip():
                continue
            found += 1
            meta = file_metadata(source, st, title=title, cell=index, cell_type=cell_type)
            if cell_type == "code" and language:
                meta["language"] = language
            yield Document(text, meta)
        if not found:
            raise SkipSource("notebook has no non-empty cells")


def _joined(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _output_text(output: dict) -> str:
    if "text" in output:
        return _joined(output["text"])
    data = output.get("data") or {}
    return _joined(data.get("text/plain", ""))


def _notebook_title(cells: list) -> str:
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            m = _ATX.search(_joined(cell.get("source", "")))
            if m:
                return m.group(1).strip()
    return ""
