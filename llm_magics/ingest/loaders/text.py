"""Plain text, Markdown and source code: one document per file, encoding detected."""

from __future__ import annotations

import os
import re
from typing import ClassVar, Iterator

from pydantic import Field

from ..documents import Document
from ...extension import Options
from .base import MAX_LINE_CHARS, Loader, check_regular_file, decode_text, file_metadata, read_bytes, title_from_path


class TextOptions(Options):
    max_line_chars: int = Field(MAX_LINE_CHARS, gt=0, description="Skip files with a longer line (minified or encoded data).")


class TextLoader(Loader):
    """Plain text in any common encoding (UTF-8, UTF-8 BOM, UTF-16, cp1252/latin-1)."""

    name = "text"
    extensions = (".txt", ".text", ".log", ".rst", ".cfg", ".ini", ".conf", ".toml", ".yaml", ".yml", ".tex", ".srt", ".org", ".adoc")
    Options = TextOptions

    def read(self, source: str) -> tuple[str, os.stat_result]:
        st = check_regular_file(source)
        return decode_text(read_bytes(source), self.options.max_line_chars), st

    def load(self, source: str) -> Iterator[Document]:
        text, st = self.read(source)
        yield Document(text, file_metadata(source, st, title=title_from_path(source)))


_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


class MarkdownLoader(TextLoader):
    """Markdown, kept as written so the ``markdown`` splitter can follow its headers."""

    name = "markdown"
    extensions = (".md", ".markdown", ".mdown", ".mkd", ".qmd", ".rmd")

    def load(self, source: str) -> Iterator[Document]:
        text, st = self.read(source)
        text = _strip_front_matter(text)
        m = _ATX.search(text)
        yield Document(text, file_metadata(source, st, title=m.group(1).strip() if m else title_from_path(source)))


def _strip_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end > 0:
            return text[end + 5 :]
    return text


LANGUAGES = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "typescript", ".java": "java", ".kt": "kotlin", ".scala": "scala",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".cs": "csharp", ".go": "go",
    ".rs": "rust", ".rb": "ruby", ".php": "php", ".swift": "swift", ".m": "objective-c", ".r": "r",
    ".jl": "julia", ".lua": "lua", ".pl": "perl", ".sh": "shell", ".bash": "shell", ".zsh": "shell",
    ".sql": "sql", ".hs": "haskell", ".ex": "elixir", ".erl": "erlang", ".clj": "clojure",
    ".css": "css", ".scss": "css", ".vue": "vue", ".dart": "dart", ".f90": "fortran", ".ps1": "powershell",
}


class CodeLoader(TextLoader):
    """Python and other source files; ``language`` in the metadata guides the splitter."""

    name = "code"
    extensions: ClassVar[tuple[str, ...]] = tuple(LANGUAGES)

    def load(self, source: str) -> Iterator[Document]:
        text, st = self.read(source)
        language = LANGUAGES.get(os.path.splitext(source)[1].lower(), "text")
        yield Document(text, file_metadata(source, st, title=os.path.basename(source), language=language))
