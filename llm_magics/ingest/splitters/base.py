"""The splitter extension point: a document in, chunks small enough to embed out.

A splitter works on character spans of the document text, so every chunk's
``start_index`` locates it exactly: ``doc.text[start:start + len(chunk.text)] == chunk.text``.
Subclasses implement ``spans``; the base class turns spans into ``Chunk`` objects.
"""

from __future__ import annotations

from abc import abstractmethod
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Callable, ClassVar, Iterable, Iterator

from pydantic import Field, model_validator

from ..documents import Chunk, Document
from ...extension import Extension, Options

if TYPE_CHECKING:
    from ..embedders import Embedder

Span = tuple[int, int]
#: Length of text[start:end] in the splitter's unit (characters or tokens).
Length = Callable[[int, int], int]


class SplitterOptions(Options):
    chunk_size: int | None = Field(None, gt=0, description="Largest chunk, in characters (tokens for the token splitter); default: the chunk_size setting.")
    chunk_overlap: int | None = Field(None, ge=0, description="Most characters (tokens) neighbouring chunks share; default: the chunk_overlap setting.")

    @model_validator(mode="after")
    def _overlap_below_size(self):
        if self.chunk_size is not None and self.chunk_overlap is not None and self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})")
        return self


class Splitter(Extension):
    """Cuts documents into chunks of at most ``chunk_size`` with at most ``chunk_overlap`` shared."""

    kind: ClassVar[str] = "splitter"
    Options = SplitterOptions
    #: True when ``spans`` counts the embedder's tokens: a worker process then loads the embedder too.
    uses_embedder: ClassVar[bool] = False

    def __init__(self, embedder: "Embedder | None" = None, **options):
        super().__init__(**options)
        self.embedder = embedder
        from ... import config

        s = config.settings()
        self.chunk_size = self.options.chunk_size or s.chunk_size
        overlap = self.options.chunk_overlap
        if overlap is None:  # the setting, kept below a chunk_size that was passed explicitly
            overlap = min(s.chunk_overlap, self.chunk_size // 5)
        self.chunk_overlap = overlap
        if self.chunk_overlap >= self.chunk_size:
            from ...errors import UsageError

            raise UsageError(f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size}). Pass a smaller --chunk-overlap.")

    @abstractmethod
    def spans(self, text: str, metadata: dict) -> Iterable[Span]:
        """``(start, end)`` character spans of the chunks of ``text``, in order."""

    def split_document(self, doc: Document) -> Iterator[Chunk]:
        """The chunks of one document; metadata is the document's plus ``start_index``."""
        for start, end in self.spans(doc.text, doc.metadata):
            start, end = strip_span(doc.text, start, end)
            if end > start:
                yield Chunk(doc.text[start:end], {**doc.metadata, "start_index": start})

    def split(self, documents: Iterable[Document]) -> Iterator[Chunk]:
        for doc in documents:
            yield from self.split_document(doc)

    @property
    def config_key(self) -> str:
        """What decides the chunks: a change re-splits (and re-embeds) ingested sources."""
        opts = self.options.model_dump(exclude={"chunk_size", "chunk_overlap"})
        return f"{self.name}:{self.chunk_size}:{self.chunk_overlap}:{sorted(opts.items())}"

    def split_text(self, text: str) -> list[str]:
        """The chunk texts of ``text`` (LangChain's name, for scripts)."""
        return [c.text for c in self.split_document(Document(text, {}))]


def strip_span(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# ---------------------------------------------------------------------------
# The recursive algorithm on spans, shared by the recursive, character, token and markdown splitters
# ---------------------------------------------------------------------------


def char_length(start: int, end: int) -> int:
    return end - start


class TokenLength:
    """Length in model tokens, from the token offsets of the whole text (counted once)."""

    def __init__(self, offsets: list[tuple[int, int]]):
        self.starts = [s for s, _ in offsets]
        self.ends = [e for _, e in offsets]

    def __call__(self, start: int, end: int) -> int:
        # tokens that overlap [start, end): a token cut by the boundary counts whole
        return max(0, bisect_left(self.starts, end) - bisect_right(self.ends, start))

    def windows(self, start: int, end: int, size: int, overlap: int) -> list[Span]:
        first = bisect_right(self.ends, start)
        last = bisect_left(self.starts, end)
        if last <= first:
            return [(start, end)]
        out = []
        step = size - overlap
        i = first
        while True:
            j = min(i + size, last)
            out.append((max(start, self.starts[i]), min(end, self.ends[j - 1])))
            if j >= last:
                break
            i += step
        # leading and trailing text outside tokens (whitespace) needs no chunk of its own
        return out


def char_windows(start: int, end: int, size: int, overlap: int) -> list[Span]:
    out = []
    step = size - overlap
    pos = start
    while True:
        out.append((pos, min(end, pos + size)))
        if pos + size >= end:
            return out
        pos += step


def recursive_spans(
    text: str,
    start: int,
    end: int,
    separators: list[str],
    size: int,
    overlap: int,
    length: Length = char_length,
    windows: Callable[[int, int, int, int], list[Span]] = char_windows,
) -> list[Span]:
    """LangChain's recursive character algorithm, on spans of ``text``.

    Split at the first separator that occurs, keeping each separator at the start of the
    piece after it; pieces that fit are merged up to ``size`` with at most ``overlap``
    shared, pieces that do not are split again with the next separator. The empty
    separator cuts fixed windows directly, so a giant line costs O(length / size).
    """
    sep, rest = "", []
    for i, candidate in enumerate(separators):
        if candidate == "":
            break
        if text.find(candidate, start, end) != -1:
            sep, rest = candidate, separators[i + 1 :]
            break
    if not sep:
        return windows(start, end, size, overlap) if length(start, end) > size else [(start, end)]

    bounds = [start]
    pos = text.find(sep, start, end)
    while pos != -1:
        if pos > bounds[-1]:
            bounds.append(pos)
        pos = text.find(sep, pos + len(sep), end)
    bounds.append(end)

    chunks: list[Span] = []
    good: list[Span] = []
    for a, b in zip(bounds, bounds[1:]):
        if length(a, b) <= size:
            good.append((a, b))
            continue
        if good:
            chunks.extend(merge_spans(good, size, overlap, length))
            good = []
        chunks.extend(recursive_spans(text, a, b, rest, size, overlap, length, windows))
    if good:
        chunks.extend(merge_spans(good, size, overlap, length))
    return chunks


def merge_spans(pieces: list[Span], size: int, overlap: int, length: Length) -> list[Span]:
    """Merge contiguous pieces (each within ``size``) into chunks of at most ``size``.

    After a chunk is emitted, the next one starts with as many trailing pieces of it as
    fit in ``overlap``.
    """
    out: list[Span] = []
    current: list[Span] = []
    for piece in pieces:
        if current and length(current[0][0], piece[1]) > size:
            out.append((current[0][0], current[-1][1]))
            while current and (length(current[0][0], current[-1][1]) > overlap or length(current[0][0], piece[1]) > size):
                current.pop(0)
        current.append(piece)
    if current:
        out.append((current[0][0], current[-1][1]))
    return out
