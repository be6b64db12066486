"""Document loaders: a source (file, URL) in, ``Document`` objects out.

``choose`` picks the loader for a source: ``--loader`` if given, else the URL scheme, else
the file extension, checked against the first bytes of the file so a mislabeled file is
read by the right loader and a binary one is skipped with a reason.
"""

from __future__ import annotations

import os
import re

from ...errors import UsageError
from .base import (
    MAX_LINE_CHARS,
    Loader,
    SkipSource,
    check_regular_file,
    decode_text,
    detect_encoding,
    file_metadata,
    read_bytes,
    read_head,
    sniff,
)

__all__ = [
    "Loader",
    "SkipSource",
    "choose",
    "get_loader",
    "scheme_of",
    "decode_text",
    "detect_encoding",
    "read_bytes",
    "read_head",
    "check_regular_file",
    "file_metadata",
    "sniff",
    "MAX_LINE_CHARS",
]

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9.+-]*)://")


def scheme_of(source: str) -> str | None:
    """``sqlite`` for ``sqlite:///x.db`` and ``postgresql+psycopg://...``; None for paths."""
    m = _SCHEME.match(source)
    if not m or os.path.exists(source):
        return None
    return m.group(1).split("+")[0].lower()


def get_loader(name: str) -> type[Loader]:
    """The loader class for ``name``; ``family:target`` binds a family loader to a target."""
    from ... import registry

    family, sep, target = name.partition(":")
    if sep and family in registry.entries("loader"):
        return registry.get("loader", family).with_target(target)
    return registry.get("loader", name)


def _loaders() -> list[type[Loader]]:
    from ... import registry

    return [e.obj for e in registry.unique("loader")]


def by_extension(ext: str) -> type[Loader] | None:
    found = None
    for cls in _loaders():  # later (third-party) registrations win over built-ins
        if ext in cls.extensions:
            found = cls
    return found


def _by_name(name: str) -> type[Loader] | None:
    from ... import registry

    entry = registry.entries("loader").get(name)
    return entry.obj if entry else None


def choose(source: str, loader: str | None = None) -> tuple[type[Loader], str | None]:
    """The loader class for ``source`` and a note when the extension was wrong.

    Raises ``SkipSource`` for files that cannot be read (missing, denied, binary, empty)
    and ``UsageError`` for an unknown ``loader`` name or URL scheme.
    """
    scheme = scheme_of(source)
    if scheme and scheme != "file":
        if loader:
            return get_loader(loader), None
        for cls in reversed(_loaders()):
            if scheme in cls.schemes:
                return cls, None
        known = sorted({s for cls in _loaders() for s in cls.schemes})
        raise UsageError(f"No loader reads {scheme}:// sources. Known schemes: {', '.join(known) or '(none)'}. Pass a file path, or install a loader plugin.")
    if scheme == "file":
        source = source[len("file://") :]

    head = read_head(source)
    if not head.strip():
        raise SkipSource("empty file")
    guess = sniff(head)
    if loader:
        cls = get_loader(loader)
        if not cls.binary and guess and guess.startswith("binary"):
            raise SkipSource(f"binary file ({guess.partition(':')[2] or 'NUL bytes'}), not text for loader {cls.name!r}")
        return cls, None

    ext = os.path.splitext(source)[1].lower()
    by_ext = by_extension(ext)
    for cls in reversed(_loaders()):
        if cls.magic and head.startswith(cls.magic):
            if by_ext is cls:
                return cls, None
            return cls, f"mislabeled: {ext or 'no extension'} file holds {cls.name.upper()} content; read as {cls.name}"
    if guess and guess.startswith("binary"):
        if by_ext is not None and by_ext.binary:
            return by_ext, None
        what = guess.partition(":")[2] or "NUL bytes, not text"
        return _skip(f"binary file ({what})")
    if by_ext is not None and by_ext.binary and by_ext.magic:
        # A .pdf (say) without its magic bytes: read the text it holds instead.
        fallback = _by_name("html" if guess == "html" else "text")
        if fallback is None:
            return _skip(f"not a {by_ext.name.upper()} file (wrong header)")
        return fallback, f"mislabeled: {ext} file holds text, not {by_ext.name.upper()}; read as {fallback.name}"
    if guess in ("html", "ipynb") and (by_ext is None or by_ext.name in ("text", "json")):
        cls = _by_name(guess)
        if cls is not None:
            note = f"mislabeled: {ext} file holds {guess.upper()}; read as {guess}" if by_ext is not None else None
            return cls, note
    if by_ext is not None:
        return by_ext, None
    fallback = _by_name("text")
    if fallback is None:
        raise UsageError(f"No loader for {ext or 'files without an extension'}. Pass --loader NAME.")
    return fallback, None


def _skip(reason: str):
    raise SkipSource(reason)
