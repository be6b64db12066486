"""The loader extension point: one source (a file or a URL) in, ``Document`` objects out.

A loader declares when it is chosen (``extensions``, ``schemes``, ``magic`` bytes) and
implements ``load``. Bad input raises ``SkipSource`` with a one-line reason; the index
records it and goes on with the next source.
"""

from __future__ import annotations

import codecs
import os
import stat
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar, Iterator

from ..documents import Document
from ...extension import Extension

#: Files bigger than this are skipped (they are almost never prose).
MAX_FILE_BYTES = 200 * 1024 * 1024
#: A text file with a line longer than this is treated as data (minified code, base64).
MAX_LINE_CHARS = 1_000_000
#: How many leading bytes content sniffing looks at.
SNIFF_BYTES = 8192


class SkipSource(Exception):
    """Raised by a loader for input it cannot read; the message is the one-line reason."""


class Loader(Extension):
    """Reads one source into documents.

    Class attributes decide when the loader is chosen: ``extensions`` (lower case, with
    the dot), ``schemes`` (URL schemes such as ``sqlite``), and ``magic`` (leading bytes
    that identify the format whatever the extension says). ``binary`` loaders read bytes
    that are not text (PDF); the others refuse files that look binary.
    """

    kind: ClassVar[str] = "loader"
    extensions: ClassVar[tuple[str, ...]] = ()
    schemes: ClassVar[tuple[str, ...]] = ()
    magic: ClassVar[tuple[bytes, ...]] = ()
    binary: ClassVar[bool] = False
    #: Raise it when the loader's output for the same file changes: ``%ingest`` then reads
    #: unchanged files again instead of keeping what the older code made from them.
    revision: ClassVar[int] = 1
    #: A loader for a family of readers (``--loader langchain:PyPDFLoader``) sets this;
    #: ``target`` is then the part after the colon.
    takes_target: ClassVar[bool] = False
    target: ClassVar[str | None] = None

    @classmethod
    def with_target(cls, target: str) -> type["Loader"]:
        """This loader bound to ``target`` (``--loader NAME:TARGET``), named ``NAME:TARGET``."""
        from ...errors import UsageError

        if not cls.takes_target:
            raise UsageError(f"Loader {cls.name!r} takes no :TARGET (got {cls.name}:{target}). Pass --loader {cls.name}.")
        if not target.strip():
            raise UsageError(f"Name what {cls.name!r} should use: --loader {cls.name}:NAME.")
        return type(cls.__name__, (cls,), {"target": target.strip(), "name": f"{cls.name}:{target.strip()}", "__module__": cls.__module__})

    @classmethod
    def source_key(cls, source: str, options: dict) -> str:
        """The key ingest files ``source`` under: its absolute path for a file; for a URL, the URL
        plus the loader options. A loader whose URLs can carry secrets overrides it (see sql.py)."""
        from . import scheme_of

        if scheme_of(source) is None:
            return os.path.abspath(source)
        import json

        extra = {k: v for k, v in sorted(options.items()) if v not in (None, [], "")}
        return source + (" " + json.dumps(extra, sort_keys=True) if extra else "")

    @abstractmethod
    def load(self, source: str) -> Iterator[Document]:
        """Yield the documents of ``source`` (a path or URL, as the user gave it).

        Each document's metadata has ``source`` and, where it applies, ``title``, ``page``
        (1-based), ``row``, ``cell``, ``cell_type`` and ``mtime``. Raise ``SkipSource``
        with a short reason for input that cannot be read.
        """


# ---------------------------------------------------------------------------
# Helpers loaders share
# ---------------------------------------------------------------------------


def check_regular_file(path: str | os.PathLike) -> os.stat_result:
    """``os.stat`` of a readable regular file, or ``SkipSource`` saying why not.

    A FIFO or device would block or never end, so only regular files pass.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        raise SkipSource(_os_reason(e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise SkipSource("is a directory (pass --recursive or a --glob to read folders)")
    if not stat.S_ISREG(st.st_mode):
        kind = "FIFO" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode) else "device or special file"
        raise SkipSource(f"not a regular file ({kind})")
    if st.st_size > MAX_FILE_BYTES:
        raise SkipSource(f"too large ({st.st_size / 1e6:.0f} MB > {MAX_FILE_BYTES / 1e6:.0f} MB)")
    return st


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a regular file; ``SkipSource`` for missing, denied, looping or special files."""
    check_regular_file(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise SkipSource(_os_reason(e)) from None


def read_head(path: str | os.PathLike, n: int = SNIFF_BYTES) -> bytes:
    check_regular_file(path)
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError as e:
        raise SkipSource(_os_reason(e)) from None


def _os_reason(e: OSError) -> str:
    import errno

    reasons = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOENT: "no such file",
        errno.ELOOP: "symlink loop",
        errno.EISDIR: "is a directory",
        errno.EIO: "I/O error",
    }
    return reasons.get(e.errno, e.strerror or type(e).__name__)


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(data: bytes) -> str | None:
    """The encoding of ``data``: a BOM, UTF-8, BOM-less UTF-16, else charset-normalizer's guess.

    Returns None for bytes that are not text (NUL bytes that are not UTF-16, or nothing
    decodes them).
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    if b"\x00" in data:
        return _utf16_without_bom(data)
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[: 1 << 20]).best()
    if best is None:
        return None
    encoding = best.encoding
    # Western single-byte text is far more often cp1252 than the exotic code pages a
    # short sample can also match; prefer it when it decodes and the guess is single-byte.
    if encoding not in ("cp1252", "utf_8", "ascii") and _single_byte(encoding):
        try:
            data.decode("cp1252")
            if _mostly_latin(data.decode(encoding)):
                return "cp1252"
        except UnicodeDecodeError:
            pass
    return encoding


def _single_byte(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in _SINGLE_BYTE
    except LookupError:
        return False


_SINGLE_BYTE = {codecs.lookup(e).name for e in ("latin-1", "cp1250", "cp1252", "cp1257", "iso8859-15", "mac-roman", "cp850", "cp437", "iso8859-2", "iso8859-9", "cp1254")}


def _mostly_latin(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c < "\u0250" for c in letters) / len(letters) > 0.95


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text without a BOM has a NUL in every other byte (for Latin text)."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even_nuls = sample[0::2].count(0) / len(sample[0::2])
    odd_nuls = sample[1::2].count(0) / len(sample[1::2])
    encoding = "utf-16-le" if odd_nuls > 0.3 and even_nuls < 0.05 else "utf-16-be" if even_nuls > 0.3 and odd_nuls < 0.05 else None
    if encoding is None:
        return None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    return encoding if "\x00" not in text else None


def decode_text(data: bytes, max_line_chars: int = MAX_LINE_CHARS) -> str:
    """Bytes to text with encoding detection; ``SkipSource`` for binary, empty or giant-line input."""
    if not data.strip():
        raise SkipSource("empty file")
    encoding = detect_encoding(data)
    if encoding is None:
        raise SkipSource("binary content (NUL bytes or no text encoding fits)" if b"\x00" in data else "undecodable text (no encoding fits)")
    text = data.decode(encoding, errors="replace")
    if "\x00" in text:
        raise SkipSource("contains NUL bytes (binary?)")
    if text.count("\ufffd") > max(8, len(text) // 100):
        raise SkipSource(f"undecodable text (too many invalid {encoding} bytes)")
    check_lines(text, max_line_chars)
    if not text.strip():
        raise SkipSource("empty file")
    return text


def check_lines(text: str, max_line_chars: int = MAX_LINE_CHARS) -> None:
    if len(text) <= max_line_chars:
        return
    start = 0
    n = len(text)
    while start < n:
        end = text.find("\n", start)
        if end < 0:
            end = n
        if end - start > max_line_chars:
            raise SkipSource(
                f"giant single line ({end - start:,} chars > {max_line_chars:,}): minified or encoded data? "
                "Raise the limit with max_line_chars=N"
            )
        start = end + 1


def sniff(head: bytes) -> str | None:
    """A format guess from the first bytes: 'pdf', 'binary', 'html', 'ipynb' or None (plain text)."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic):
            return "binary:" + what
    if any(head.startswith(bom) for bom, _ in _BOMS):
        head = head.decode(detect_encoding(head) or "utf-8", errors="ignore").encode("utf-8", "ignore")
    elif b"\x00" in head:
        return None if _utf16_without_bom(head) else "binary"
    lowered = head.lstrip()[:512].lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or (lowered.startswith(b"<?xml") and b"<html" in lowered):
        return "html"
    if lowered.startswith(b"{") and b'"cells"' in head and b'"nbformat"' in head:
        return "ipynb"
    return None


_BINARY_MAGIC = (
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"PK\x03\x04", "zip archive"),
    (b"\x1f\x8b", "gzip data"),
    (b"\x7fELF", "executable"),
    (b"SQLite format 3\x00", "SQLite database; ingest it as sqlite:///PATH --query ..."),
    (b"BZh", "bzip2 data"),
    (b"\xfd7zXZ", "xz data"),
    (b"7z\xbc\xaf", "7z archive"),
    (b"%!PS", "PostScript"),
    (b"!<arch>", "ar archive, e.g. a .deb"),
    (b"\xd0\xcf\x11\xe0", "MS Office document"),
)


def file_metadata(source: str, st: os.stat_result | None = None, **extra) -> dict:
    """The metadata every file document carries: source as given, mtime, plus ``extra``."""
    meta = {"source": source}
    if st is not None:
        meta["mtime"] = st.st_mtime
    meta.update({k: v for k, v in extra.items() if v is not None})
    return meta


def title_from_path(source: str) -> str:
    return Path(source).stem
