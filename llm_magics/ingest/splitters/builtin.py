"""The built-in splitters: character, recursive, token and markdown."""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from pydantic import Field

from ..documents import Chunk, Document
from ...errors import UsageError
from ...hookspecs import hookimpl
from .base import Span, Splitter, SplitterOptions, TokenLength, recursive_spans, strip_span

DEFAULT_SEPARATORS = ["\n\n", "\n", " ", ""]

#: Separators that follow a language's structure, tried before the default ones.
LANGUAGE_SEPARATORS = {
    "python": ["\nclass ", "\ndef ", "\n    def ", "\n\tdef "],
    "javascript": ["\nfunction ", "\nexport ", "\nclass ", "\nconst "],
    "typescript": ["\nfunction ", "\nexport ", "\nclass ", "\ninterface ", "\nconst "],
    "java": ["\nclass ", "\npublic ", "\nprivate ", "\nprotected "],
    "go": ["\nfunc ", "\ntype "],
    "rust": ["\nfn ", "\npub fn ", "\nimpl ", "\nstruct ", "\nenum "],
    "c": ["\n}\n"],
    "cpp": ["\n}\n", "\nclass "],
    "markdown": ["\n# ", "\n## ", "\n### "],
}


class CharacterOptions(SplitterOptions):
    separator: str = Field("\n\n", description="The one separator to split at; a piece still too long is cut at chunk_size.")


class CharacterSplitter(Splitter):
    """Split at one separator, then merge pieces up to chunk_size characters."""

    name = "character"
    Options = CharacterOptions

    def spans(self, text: str, metadata: dict) -> list[Span]:
        return recursive_spans(text, 0, len(text), [self.options.separator, ""], self.chunk_size, self.chunk_overlap)


class RecursiveOptions(SplitterOptions):
    separators: list[str] | None = Field(None, description='Separators tried in order (default ["\\n\\n", "\\n", " ", ""], after language ones for code).')


class RecursiveSplitter(Splitter):
    """Paragraphs, then lines, then words, then characters, until chunks fit chunk_size."""

    name = "recursive"
    Options = RecursiveOptions

    def separators(self, metadata: dict) -> list[str]:
        if self.options.separators is not None:
            seps = list(self.options.separators)
            return seps if seps and seps[-1] == "" else [*seps, ""]
        return [*LANGUAGE_SEPARATORS.get(metadata.get("language", ""), []), *DEFAULT_SEPARATORS]

    def spans(self, text: str, metadata: dict) -> list[Span]:
        return recursive_spans(text, 0, len(text), self.separators(metadata), self.chunk_size, self.chunk_overlap)


class TokenOptions(RecursiveOptions):
    pass


class TokenSplitter(RecursiveSplitter):
    """Recursive splitting measured in the embedder's own tokens: no chunk exceeds its window.

    ``chunk_size`` is in tokens and is capped at the embedder's window less its special
    tokens (254 word pieces for all-MiniLM-L6-v2), so no text is silently truncated.
    """

    name = "token"
    Options = TokenOptions
    uses_embedder = True

    def __init__(self, embedder=None, **options):
        if embedder is None:
            raise UsageError("The token splitter counts the embedder's tokens: pass embedder=..., or use --splitter recursive.")
        super().__init__(embedder, **options)
        window = self.window(embedder)
        if self.options.chunk_size is None or self.chunk_size > window:
            self.chunk_size = window
        if self.options.chunk_overlap is None or self.chunk_overlap >= self.chunk_size:
            self.chunk_overlap = min(self.chunk_overlap, self.chunk_size // 5)

    @staticmethod
    def window(embedder) -> int:
        """Most content tokens per chunk: the model window less its special tokens."""
        max_tokens = getattr(embedder, "max_tokens", None)
        if not max_tokens:
            return 10**9
        special = getattr(embedder, "num_special_tokens", 2)  # [CLS] ... [SEP] for BERT-style encoders
        return max(1, max_tokens - special)

    def spans(self, text: str, metadata: dict) -> list[Span]:
        offsets = self.embedder.token_spans(text)
        length = TokenLength(offsets)
        spans = recursive_spans(text, 0, len(text), self.separators(metadata), self.chunk_size, self.chunk_overlap, length, length.windows)
        return [s for span in spans for s in self._fit(text, span)]

    def _fit(self, text: str, span: Span, depth: int = 0) -> list[Span]:
        """Re-tokenize a chunk alone (word pieces can differ at a cut) and cut again if over."""
        start, end = strip_span(text, *span)
        if end <= start:
            return []
        n = len(self.embedder.token_spans(text[start:end]))
        if n <= self.chunk_size or depth > 4:
            return [(start, end)]
        offsets = [(a + start, b + start) for a, b in self.embedder.token_spans(text[start:end])]
        length = TokenLength(offsets)
        smaller = max(1, self.chunk_size - (n - self.chunk_size) - 2)
        return [s for part in length.windows(start, end, smaller, 0) for s in self._fit(text, part, depth + 1)]


class MarkdownOptions(RecursiveOptions):
    max_level: int = Field(3, ge=1, le=6, description="Deepest header level that starts a new section (1 = #, 2 = ##, ...).")


_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_HEADER = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")


class MarkdownSplitter(RecursiveSplitter):
    """Header-aware: sections never share a chunk, and each chunk's headers are in its metadata.

    A chunk's metadata gets ``h1`` ... ``h6`` for the headers above it and ``section``
    ("Install > From source"); the text stays as written, so ``start_index`` still locates it.
    """

    name = "markdown"
    Options = MarkdownOptions

    def sections(self, text: str) -> Iterator[tuple[int, int, int, dict]]:
        """``(start, body_start, end, headers)`` of each section; a header with no text of its
        own (``## Part`` right before ``### Chapter``) joins the section that follows."""
        headers: dict[int, str] = {}
        start = body = pos = 0
        fenced = False
        for line in text.splitlines(keepends=True):
            if _FENCE.match(line):
                fenced = not fenced
            elif not fenced:
                m = _HEADER.match(line.rstrip("\r\n"))
                if m and len(m.group(1)) <= self.options.max_level:
                    if text[body:pos].strip():
                        yield start, body, pos, dict(headers)
                        start = pos
                    level = len(m.group(1))
                    headers = {lv: h for lv, h in headers.items() if lv < level}
                    headers[level] = m.group(2).strip()
                    body = pos + len(line)
            pos += len(line)
        if text[start:].strip():
            yield start, min(body, len(text)), len(text), dict(headers)

    def spans(self, text: str, metadata: dict) -> list[Span]:
        return [(a, b) for a, b, _ in self._spans_with_headers(text, metadata)]

    def _spans_with_headers(self, text: str, metadata: dict) -> Iterator[tuple[int, int, dict]]:
        """Each section's body is split with room left for its header lines, and the first
        chunk starts at the header: a header never ends up alone, or apart from its text."""
        seps = self.separators(metadata)
        if metadata.get("language") not in (None, "markdown"):  # '# ...' in code is a comment, not a header
            for a, b in recursive_spans(text, 0, len(text), seps, self.chunk_size, self.chunk_overlap):
                yield a, b, {}
            return
        for start, body, end, headers in self.sections(text):
            head = body - start
            size = self.chunk_size - head
            if head == 0 or size < max(self.chunk_size // 2, self.chunk_overlap + 1):
                parts = recursive_spans(text, start, end, seps, self.chunk_size, self.chunk_overlap)
            else:
                parts = recursive_spans(text, body, end, seps, size, min(self.chunk_overlap, size - 1))
                parts = [p for p in parts if strip_span(text, *p)[1] > strip_span(text, *p)[0]] or [(body, body)]
                parts[0] = (start, parts[0][1])
            for a, b in parts:
                yield a, b, headers

    def split_document(self, doc: Document) -> Iterator[Chunk]:
        for start, end, headers in self._spans_with_headers(doc.text, doc.metadata):
            start, end = strip_span(doc.text, start, end)
            if end <= start:
                continue
            meta = {**doc.metadata, "start_index": start}
            if headers:
                meta.update({f"h{lv}": h for lv, h in headers.items()})
                meta["section"] = " > ".join(headers[lv] for lv in sorted(headers))
            yield Chunk(doc.text[start:end], meta)


BUILTIN_SPLITTERS: dict[type[Splitter], Iterable[str]] = {
    CharacterSplitter: ("char",),
    RecursiveSplitter: ("recursive_character",),
    TokenSplitter: ("tokens",),
    MarkdownSplitter: ("md",),
}


@hookimpl
def register_splitters(register):
    for cls, aliases in BUILTIN_SPLITTERS.items():
        register(cls, aliases=tuple(aliases))
