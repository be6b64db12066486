"""From what the user typed (paths, folders, globs, URLs) to the list of sources to read."""

from __future__ import annotations

import fnmatch
import glob as globlib
import os
from typing import Iterable, Iterator

from . import scheme_of

#: Folders never walked into: tool caches, VCS data, our own store (hidden folders too).
SKIP_DIRS = {"__pycache__", "node_modules", ".git", ".hg", ".svn", ".ipynb_checkpoints", ".venv", "venv", ".tox", ".mypy_cache"}


def expand(sources: Iterable[str | os.PathLike], pattern: str | None = None, recursive: bool = False) -> Iterator[tuple[str, str | None]]:
    """Yield ``(source, problem)``: each file or URL to read, or one that cannot be found.

    A folder yields its files (walking sub-folders with ``recursive``), filtered by the
    glob ``pattern`` (matched against the file name, or the path below the folder when the
    pattern has a '/'). A source with glob characters that is not itself a file is
    expanded. Hidden files and folders are skipped when walking. Paths keep the form the
    user gave (relative stays relative), since they become each chunk's ``source``.
    """
    for item in sources:
        src = os.fspath(item)
        if scheme_of(src):
            yield src, None
        elif os.path.isdir(src):
            found = False
            for path in walk(src, pattern, recursive):
                found = True
                yield path, None
            if not found:
                what = f"matching {pattern!r} " if pattern else ""
                hint = "" if recursive else " (pass --recursive to read sub-folders)"
                yield src, f"folder has no files {what}to read{hint}"
        elif os.path.lexists(src):
            yield src, None
        elif globlib.has_magic(src):
            matches = sorted(globlib.glob(src, recursive=True))
            files = [m for m in matches if not os.path.isdir(m) or recursive]
            if not files:
                yield src, "no files match this pattern"
            for m in files:
                if os.path.isdir(m):
                    yield from ((p, None) for p in walk(m, pattern, recursive))
                else:
                    yield m, None
        else:
            yield src, "no such file or folder"


def walk(folder: str, pattern: str | None, recursive: bool) -> Iterator[str]:
    if not recursive:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or _is_dir(entry):
                continue
            if _match(entry.name, entry.name, pattern):
                yield _join(folder, entry.name)
        return
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = _join(root, name)
            if folder in (".", "./") and path.startswith("./"):
                path = path[2:]
            if _match(name, os.path.relpath(path, folder), pattern):
                yield path


def _join(folder: str, name: str) -> str:
    """``docs/a.md`` for ``docs``; plain ``a.md`` for ``.``, as a user would write it."""
    return name if folder in (".", "./") else os.path.join(folder, name)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _match(name: str, rel: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    if "/" in pattern:
        rel = rel.replace(os.sep, "/")
        return fnmatch.fnmatch(rel, pattern) or (pattern.startswith("**/") and fnmatch.fnmatch(rel, pattern[3:]))
    return fnmatch.fnmatch(name, pattern)
