"""HTML: the visible text only (no scripts, styles or hidden elements), plus the title.

The standard library's tolerant ``HTMLParser`` streams through the page once; block
elements become paragraph breaks, headings become Markdown headers and list items Markdown
items (``- ``, ``1. ``), so the ``markdown`` splitter can follow the page's structure and a
quote can take one item. A defined term (``<dt>``) ends with a colon before its definition,
as a plain-text glossary writes it. A line whose text is all link text (a site menu,
breadcrumbs, a table of contents) is navigation and is dropped, unless it names code
(``SQLITE_OPEN_WAL``, ``os.path.join()``): a list of identifiers is content. So are links with
no letters or digits (Sphinx's ``¶`` permalinks, ``↩``), and a header whose lines were all
dropped (a sidebar's "Navigation"). A line of preformatted code never reads as a header.
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
        self.link_start: int | None = None  # index in parts where the open link's text began
        self.term_end: int | None = None  # index in parts just after the last <dt>'s text, until its <dd>
        self.colon: tuple[int, int] | None = None  # (part given a colon, where its definition starts), until </dd>
        self.lists: list[int | None] = []  # open <ul> (None) and <ol> (the next item's number)
        self.at_marker = False  # a list item's marker was just written: its text follows on the same line
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
        if tag in ("ul", "ol"):
            start = dict(attrs).get("start") or "1"
            self.lists.append(int(start) if tag == "ol" and start.strip().isdigit() else None)
        if tag == "a":
            self.in_link = bool(dict(attrs).get("href"))
            self.link_start = len(self.parts) if self.in_link else None
        if tag in HEADING:
            self._end_line()
            self.parts.append("\n\n" + ("#" * HEADING[tag] + " " if self.markdown_headings else ""))
            if tag == "h1" and self.first_h1 is None:
                self.first_h1, self.in_h1 = [], True
        elif tag == "dd" and self.term_end is not None:
            self._introduce_definition()
            self._block_break(tag)
        elif tag == "li" and not self.pre:
            self._block_break(tag)
            n = self.lists[-1] if self.lists else None
            self.parts.append(f"{n}. " if n is not None else "- ")  # Markdown's list items: one quotable unit each
            self.at_marker = True
            if n is not None:
                self.lists[-1] = n + 1
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
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        if tag == "li" and self.at_marker:  # an item with no visible text: no marker either
            self.parts.pop()
            self.at_marker = False
        if tag == "a":
            if self.link_start is not None and not self.pre:
                text = "".join(self.parts[self.link_start :])
                if text.strip() and "\n" not in text and not _WORD.search(text):  # a permalink "¶", a "↩": a marker
                    del self.parts[self.link_start :]
            self.in_link, self.link_start = False, None
        if tag == "dd" and self.colon:
            self._end_line()
            self._end_definition()
        if tag == "dt" and not self.pre:
            self._end_line()
            self.term_end = len(self.parts) if self.parts and self.parts[-1].strip(_DROPPED + " \n") else None  # None: no term
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
                self.parts.append(_DROPPED)  # where text was: a header left over it heads nothing (drop_empty_headings)
        self.line_start, self.line_text, self.line_link = len(self.parts), 0, 0

    def _introduce_definition(self) -> None:
        """A term ends with a colon where its definition follows ("origin: The default upstream
        repository."), as a glossary in plain text writes it: a quote of the definition then names its term."""
        i, self.term_end = self.term_end, None
        if "".join(self.parts[i:]).replace(_DROPPED, "").strip():  # text came between the term and the definition
            return
        term = self.parts[i - 1].rstrip()
        if term and term[-1] not in ".:;,?!":
            self.parts[i - 1] = term + ":"
            self.colon = (i - 1, len(self.parts))

    def _end_definition(self) -> None:
        """No colon after a term whose definition left no text (a type name that was only a link)."""
        at, start = self.colon
        self.colon = None
        if not "".join(self.parts[start:]).replace(_DROPPED, "").strip():
            self.parts[at] = self.parts[at][:-1]

    def _block_break(self, tag):
        """The whitespace a paragraph, line or cell tag stands for, where it opens and where it closes."""
        if self.at_marker and tag not in ("li", "ul", "ol"):  # <li><p>text: the text stays on the marker's line
            return
        self.at_marker = False
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
        if self.pre:  # code: a line "# comment" must not become a Markdown header (4 spaces: code, not a header)
            at_line_start = not self.parts or self.parts[-1].endswith("\n")
            data = _PRE_HEADER.sub(r"\1    \2", data)
            if at_line_start:
                data = _PRE_HEADER_FIRST.sub(r"    \1", data)
            self.parts.append(data)
            return
        self._count(data)
        data = _SPACES.sub(" ", data)
        if not self.parts or self.parts[-1].endswith("\n") or self.at_marker:
            data = data.lstrip(" ")
        if data:
            self.parts.append(data)
            self.at_marker = False


_DROPPED = "\x00"  # marks where the extractor dropped a line; removed before the text is returned
_WORD = re.compile(r"\w")
_CODE = re.compile(r"\w_\w|\w\(|[A-Za-z_]\w*\.[A-Za-z_]|\w::\w")  # snake_case, a call, a dotted (not a version: 8.1.x) or C++ name
_PRE_HEADER = re.compile(r"(\n) {0,3}(#{1,6}[ \t])")  # a line of code that would read as a Markdown header
_PRE_HEADER_FIRST = re.compile(r"^ {0,3}(#{1,6}[ \t])")
_HEADER_LINE = re.compile(r"^(#{1,6}) .*$", re.M)
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
    if markdown_headings:
        text = drop_empty_headings(text)
    text = _BLANKS.sub("\n\n", _TRAILING.sub("\n", text.replace(_DROPPED, ""))).strip()
    title = " ".join("".join(parser.title).split()) or " ".join("".join(parser.first_h1 or []).split())
    return text, title


def drop_empty_headings(text: str) -> str:
    """Without the headers whose text was all dropped (``_DROPPED``): a sidebar's "### Navigation"
    once its links are gone, when one of the same or a higher rank or the end of the page follows.
    A header that had no text in the page ("## SQLite C Interface" above "## Set A Busy Timeout")
    stays, as does one above a deeper header that stays ("## Part", then "### Chapter").

    >>> drop_empty_headings("### Navigation\\n\\x00\\n# Options\\n\\nText.\\n\\n### Contents\\n\\x00\\n### Navigation\\n\\x00")
    '# Options\\n\\nText.\\n\\n'
    """
    heads = list(_HEADER_LINE.finditer(text))  # the extractor's own headers: its code lines are indented
    cut, after, next_cut = [], 0, False  # after: the rank of the kept header that directly follows (0: the end)
    for i in range(len(heads) - 1, -1, -1):
        m = heads[i]
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[m.end() : end]
        emptied = _DROPPED in body or next_cut  # its own lines, or the headers under it, were dropped
        level = len(m.group(1))
        if emptied and not body.replace(_DROPPED, "").strip() and after <= level:
            cut.append((m.start(), end))
            next_cut = True
            continue
        after, next_cut = level, False
    for a, b in cut:  # from the end of the text: earlier offsets stay valid
        text = text[:a] + text[b:]
    return text


class HTMLOptions(Options):
    markdown_headings: bool = Field(True, description="Write h1-h6 as Markdown headers (# ...) so the markdown splitter can use them.")
    drop_links: bool = Field(True, description="Drop lines that are only link text (menus, breadcrumbs, tables of contents); lists of identifiers stay.")


class HTMLLoader(Loader):
    """Web pages: visible text only, no scripts or styles, with the page title."""

    name = "html"
    revision: ClassVar[int] = 3  # 2: lines of links dropped; 3: markers, empty headers, list items, terms (2026-12-03). A new revision re-reads pages
    extensions = (".html", ".htm", ".xhtml", ".shtml")
    Options = HTMLOptions

    def load(self, source: str) -> Iterator[Document]:
        st = check_regular_file(source)
        text, title = html_to_text(decode_text(read_bytes(source)), self.options.markdown_headings, self.options.drop_links)
        if not text.strip():
            raise SkipSource("no visible text")
        yield Document(text, file_metadata(source, st, title=title or title_from_path(source)))
