"""HTML: the visible text only (no scripts, styles or hidden elements), plus the title.

The standard library's tolerant ``HTMLParser`` streams through the page once; block
elements become paragraph breaks and headings become Markdown headers, so the
``markdown`` splitter can follow the page's structure.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Iterator

from pydantic import Field

from ..documents import Document
from ...extension import Options
from .base import Loader, SkipSource, check_regular_file, decode_text, file_metadata, read_bytes, title_from_path

SKIP = {"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas", "select", "button"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
PARAGRAPH = {
    "p", "div", "section", "article", "header", "footer", "nav", "aside", "main", "table", "ul", "ol", "dl",
    "pre", "blockquote", "figure", "figcaption", "form", "fieldset", "address", "details", "summary", "caption", "body",
}
LINE = {"li", "tr", "dt", "dd", "br", "hr", "option"}
CELL = {"td", "th"}
HEADING = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class _Extractor(HTMLParser):
    def __init__(self, markdown_headings: bool):
        super().__init__(convert_charrefs=True)
        self.markdown_headings = markdown_headings
        self.parts: list[str] = []
        self.skip: list[str] = []  # open elements whose content is not visible
        self.pre = 0
        self.title: list[str] = []
        self.in_title = False
        self.first_h1: list[str] | None = None
        self.in_h1 = False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
            return
        if self.skip:
            if tag == self.skip[-1] and tag not in VOID:
                self.skip.append(tag)
            return
        hidden = any(k == "hidden" or (k == "aria-hidden" and v == "true") or (k == "style" and v and re.search(r"display\s*:\s*none", v)) for k, v in attrs)
        if (tag in SKIP or hidden) and tag not in VOID:
            self.skip.append(tag)
            return
        if tag == "pre":
            self.pre += 1
        if tag in HEADING:
            self.parts.append("\n\n" + ("#" * HEADING[tag] + " " if self.markdown_headings else ""))
            if tag == "h1" and self.first_h1 is None:
                self.first_h1, self.in_h1 = [], True
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f" {alt} ")
        else:
            self._block_break(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
            return
        if self.skip:
            if tag in self.skip:
                while self.skip and self.skip.pop() != tag:
                    pass
            return
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in HEADING:
            self.parts.append("\n\n")
            if tag == "h1":
                self.in_h1 = False
        else:
            self._block_break(tag)

    def _block_break(self, tag):
        """The whitespace a paragraph, line or cell tag stands for, where it opens and where it closes."""
        if tag in PARAGRAPH:
            self.parts.append("\n\n")
        elif tag in LINE:
            self.parts.append("\n")
        elif tag in CELL:
            self.parts.append(" ")

    def handle_data(self, data):
        if self.in_title:
            self.title.append(data)
            return
        if self.skip:
            return
        if self.in_h1:
            self.first_h1.append(data)
        if self.pre:
            self.parts.append(data)
            return
        data = _SPACES.sub(" ", data)
        if not self.parts or self.parts[-1].endswith("\n"):
            data = data.lstrip(" ")
        if data:
            self.parts.append(data)


_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANKS = re.compile(r"\n{3,}")


def html_to_text(html: str, markdown_headings: bool = True) -> tuple[str, str]:
    """``(visible_text, title)`` of an HTML page."""
    parser = _Extractor(markdown_headings)
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    text = _TRAILING.sub("\n", text)
    text = _BLANKS.sub("\n\n", text).strip()
    title = " ".join("".join(parser.title).split()) or " ".join("".join(parser.first_h1 or []).split())
    return text, title


class HTMLOptions(Options):
    markdown_headings: bool = Field(True, description="Write h1-h6 as Markdown headers (# ...) so the markdown splitter can use them.")


class HTMLLoader(Loader):
    """Web pages: visible text only, no scripts or styles, with the page title."""

    name = "html"
    extensions = (".html", ".htm", ".xhtml", ".shtml")
    Options = HTMLOptions

    def load(self, source: str) -> Iterator[Document]:
        st = check_regular_file(source)
        text, title = html_to_text(decode_text(read_bytes(source)), self.options.markdown_headings)
        if not text.strip():
            raise SkipSource("no visible text")
        yield Document(text, file_metadata(source, st, title=title or title_from_path(source)))
