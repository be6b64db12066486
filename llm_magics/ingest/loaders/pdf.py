"""PDF through pypdf: one document per page, ``page`` 1-based."""

from __future__ import annotations

import io
import logging
from typing import Iterator

from pydantic import Field

from ..documents import Document
from ...extension import Options
from .base import Loader, SkipSource, check_regular_file, file_metadata, read_bytes, title_from_path


class PDFOptions(Options):
    password: str = Field("", description="Password of an encrypted PDF ('' tries the empty user password).")
    layout: bool = Field(False, description="Use pypdf's layout mode (keeps columns apart; slower).")


class PDFLoader(Loader):
    """PDF files, one document per page with its 1-based ``page`` number."""

    name = "pdf"
    extensions = (".pdf",)
    magic = (b"%PDF-",)
    binary = True
    Options = PDFOptions

    def load(self, source: str) -> Iterator[Document]:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError

        st = check_regular_file(source)
        data = read_bytes(source)
        if not data.strip():
            raise SkipSource("empty file")
        if not data.lstrip()[:1024].startswith(b"%PDF-") and b"%PDF-" not in data[:1024]:
            raise SkipSource("not a PDF (no %PDF- header)")
        quiet = logging.getLogger("pypdf")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            try:
                reader = PdfReader(io.BytesIO(data))
                if reader.is_encrypted and not reader.decrypt(self.options.password):
                    raise SkipSource("encrypted PDF (pass password=... to read it)")
                pages = reader.pages
                n = len(pages)
                title = _title(reader) or title_from_path(source)
            except SkipSource:
                raise
            except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as e:
                raise SkipSource(f"corrupt PDF ({type(e).__name__}: {_short(e)})") from None
            except Exception as e:  # noqa: BLE001 - e.g. a missing crypto dependency
                raise SkipSource(f"unreadable PDF ({type(e).__name__}: {_short(e)})") from None
            found = 0
            for i in range(n):
                try:
                    text = pages[i].extract_text(extraction_mode="layout" if self.options.layout else "plain")
                except Exception:  # noqa: BLE001 - one bad page must not lose the others
                    continue
                text = (text or "").replace("\x00", "")
                if text.strip():
                    found += 1
                    yield Document(text, file_metadata(source, st, title=title, page=i + 1, pages=n))
            if not found:
                raise SkipSource(f"no extractable text in {n} page(s) (scanned? try OCR first)")
        finally:
            quiet.setLevel(level)


def _title(reader) -> str:
    try:
        meta = reader.metadata
        return str(meta.title).strip() if meta and meta.title else ""
    except Exception:  # noqa: BLE001
        return ""


def _short(e: Exception) -> str:
    text = " ".join(str(e).split())
    return text[:120] or "no detail"
