"""HTML: the visible text only (no scripts, styles or hidden elements), plus the title.

The standard library's tolerant ``HTMLParser`` streams through the page once; block
elements become paragraph breaks and headings become Markdown headers, so the
``markdown`` splitter can follow the page's structure. A line whose text is all link text
(a site menu, breadcrumbs, a table of contents) is navigation and is dropped, unless it
names code (``SQLITE_OPEN_WAL``, ``os.path.join()``): a list of identifiers is content.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import ClassVar, Iterator

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
    def __init__(self, markdown_headings: bool, drop_links: bool = True):
        super().__init__(convert_charrefs=True)
        self.markdown_headings = markdown_headings
        self.parts: list[str] = []
        self.skip: list[str] = []  # open elements whose content is not visible
        self.pre = 0
        self.title: list[str] = []
        self.in_title = False
        self.first_h1: list[str] | None = None
        self.in_h1 = False
        self.drop_links = drop_links
        self.in_link = False  # inside <a href>: until </a>, the next <a>, or the end of the paragraph (an unclosed link)
        self.line_start = 0  # index in parts where the current line began
        self.line_text = self.line_link = 0  # its visible characters, and how many of them are link text

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
        if tag == "a":
            self.in_link = bool(dict(attrs).get("href"))
        if tag in HEADING:
            self._end_line()
            self.parts.append("\n\n" + ("#" * HEADING[tag] + " " if self.markdown_headings else ""))
            if tag == "h1" and self.first_h1 is None:
                self.first_h1, self.in_h1 = [], True
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self._count(alt)
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
        if tag == "a":
            self.in_link = False
        if tag in HEADING:
            self.parts.append("\n\n")
            self.line_start, self.line_text, self.line_link = len(self.parts), 0, 0  # a heading is kept, links or not
            if tag == "h1":
                self.in_h1 = False
        else:
            self._block_break(tag)

    def _count(self, text: str) -> None:
        n = len(_WORD.findall(text))  # letters and digits: separators ("»", "|") between links are navigation too
        self.line_text += n
        if self.in_link:
            self.line_link += n

    def _end_line(self) -> None:
        """A line whose visible text is all link text (a menu item, a breadcrumb, a table of contents entry) is
        navigation, not content: it is dropped (``drop_links``), as boilerplate removers do (boilerpipe's link density)."""
        if self.drop_links and self.line_text and self.line_link == self.line_text:
            if not _CODE.search("".join(self.parts[self.line_start :])):  # a list of identifiers is reference content
                del self.parts[self.line_start :]
        self.line_start, self.line_text, self.line_link = len(self.parts), 0, 0

    def _block_break(self, tag):
        """The whitespace a paragraph, line or cell tag stands for, where it opens and where it closes."""
        if tag in PARAGRAPH or tag in LINE:
            self._end_line()
        if tag in PARAGRAPH:
            self.in_link = False  # a link left open ends here: one missing </a> must not make the rest of the page a link
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
        self._count(data)
        data = _SPACES.sub(" ", data)
        if not self.parts or self.parts[-1].endswith("\n"):
            data = data.lstrip(" ")
        if data:
            self.parts.append(data)


_WORD = re.compile(r"\w")
_CODE = re.compile(r"\w_\w|\w\(|\w\.\w|\w::\w")  # snake_case, a call, a dotted or C++ name
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANKS = re.compile(r"\n{3,}")


def html_to_text(html: str, markdown_headings: bool = True, drop_links: bool = True) -> tuple[str, str]:
    """``(visible_text, title)`` of an HTML page; ``drop_links``: without the lines that are only links."""
    parser = _Extractor(markdown_headings, drop_links)
    parser.feed(html)
    parser.close()
    parser._end_line()
    text = "".join(parser.parts)
    text = _TRAILING.sub("\n", text)
    text = _BLANKS.sub("\n\n", text).strip()
    title = " ".join("".join(parser.title).split()) or " ".join("".join(parser.first_h1 or []).split())
    return text, title


class HTMLOptions(Options):
    markdown_headings: bool = Field(True, description="Write h1-h6 as Markdown headers (# ...) so the markdown splitter can use them.")
    drop_links: bool = Field(True, description="Drop lines that are only link text (menus, breadcrumbs, tables of contents); lists of identifiers stay.")


class HTMLLoader(Loader):
    """Web pages: visible text only, no scripts or styles, with the page title."""

    name = "html"
    revision: ClassVar[int] = 2  # 2: lines of links dropped (2026-12-03); a new revision ingests unchanged pages again
    extensions = (".html", ".htm", ".xhtml", ".shtml")
    Options = HTMLOptions

    def load(self, source: str) -> Iterator[Document]:
        st = check_regular_file(source)
        text, title = html_to_text(decode_text(read_bytes(source)), self.options.markdown_headings, self.options.drop_links)
        if not text.strip():
            raise SkipSource("no visible text")
        yield Document(text, file_metadata(source, st, title=title or title_from_path(source)))
