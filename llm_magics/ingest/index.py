"""``Index``: documents in (load, split, embed, store), relevant chunks out.

Ingesting is idempotent and safe to interrupt. Each source (a file, or a URL with its
query) has a manifest entry keyed by its absolute path. A source is written in steps, and
each step leaves the collection consistent:

1. the entry records the new version as *pending* (its chunks are hidden from search);
2. the new chunks are upserted in batches, with ids from a content hash;
3. one manifest write makes the new version the committed one and the old one *stale*;
4. the old chunks are deleted, and the entry forgets the stale version.

A crash or KeyboardInterrupt between any two steps leaves only hidden chunks behind, and
running the same ``add`` again finishes the job, reusing what was already embedded.
Search hides every pending or stale version, so it never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from .. import config
from .documents import Chunk, Hit
from ..errors import UsageError
from .report import IngestReport

if TYPE_CHECKING:
    import numpy as np

    from .embedders import Embedder
    from .splitters import Splitter
    from .stores import VectorStore

#: Chunk metadata the index adds for itself; search results do not show it.
KEY, VERSION = "_key", "_version"


@dataclass
class _Pending:
    """A loaded and split source, waiting for its vectors and then its write."""

    source: str
    key: str
    fingerprint: str
    version: str
    chunks: list[Chunk]
    ids: list[str]
    old: dict | None
    vectors: dict[str, "np.ndarray"] = field(default_factory=dict)  # text hash -> vector
    stored_ids: set[str] = field(default_factory=set)  # ids of this version already in the store


class Index:
    """A named collection of embedded chunks in a vector store.

    ``Index()`` opens (or creates) the configured collection; ``collection``, ``store``
    (a name or a ``VectorStore``), ``embedder`` (a name or an ``Embedder``) and ``path``
    (folder of a persistent store) override the settings. An existing collection keeps
    the embedder it was built with; naming a different one is an error.
    """

    def __init__(self, collection: str | None = None, store: "str | VectorStore | None" = None, embedder: "str | Embedder | None" = None, path: str | None = None):
        from .stores import VectorStore, get_store_class

        s = config.settings()
        if isinstance(store, VectorStore):
            self.store = store
            self.collection = store.collection
        else:
            self.collection = collection or s.collection
            cls = get_store_class(store)
            name = embedder if isinstance(embedder, str) else getattr(embedder, "name", None)
            self.store = cls(self.collection, path=path, embedder=name)
        self._embedder = embedder if embedder is not None and not isinstance(embedder, str) else None
        self._embedder_name = embedder if isinstance(embedder, str) else getattr(embedder, "name", None)
        self._checked = False
        self.last_report: IngestReport | None = None  # what the latest add() did

    # -- the embedder, checked against the collection --------------------------

    @property
    def embedder(self) -> "Embedder":
        if self._embedder is None:
            from .embedders import get_embedder

            info = self.store.info()
            self._embedder = get_embedder(self._embedder_name or info.get("embedder_name") or config.settings().embedder)
        if not self._checked:
            self._check_embedder(self._embedder)
            self._checked = True
        return self._embedder

    def _check_embedder(self, embedder: "Embedder") -> None:
        info = self.store.info()
        built = info.get("embedder")
        if built and built != embedder.identity:
            raise UsageError(
                f"Collection {self.collection!r} was built with embedder {built!r} ({info.get('dimension')}-d), "
                f"not {embedder.identity!r}: its vectors would not be comparable. Pass --embedder {info.get('embedder_name') or built}, "
                "or use another --collection (or delete this one with Index(...).drop())."
            )

    def _check_dimension(self, vectors: "np.ndarray") -> None:
        info = self.store.info()
        dim = int(vectors.shape[-1])
        if info.get("dimension") and int(info["dimension"]) != dim:
            raise UsageError(
                f"Collection {self.collection!r} holds {info['dimension']}-d vectors but embedder {self.embedder.identity!r} makes {dim}-d ones. "
                "Use the embedder the collection was built with, or another --collection."
            )
        if not info.get("embedder"):
            self.store.set_info({
                **info,
                "embedder": self.embedder.identity,
                "embedder_name": self._embedder_name or self.embedder.name,
                "dimension": dim,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            })

    # -- ingest ----------------------------------------------------------------

    def add(
        self,
        sources: "str | os.PathLike | Iterable[str | os.PathLike]",
        loader: str | None = None,
        splitter: "str | Splitter | None" = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        glob: str | None = None,
        recursive: bool = False,
        *,
        progress: bool | None = None,
        batch_size: int | None = None,  # texts per embedder call (default 256)
        redact: "bool | Redactor" = False,  # mask personal data before splitting, embedding and storing
        **loader_options: Any,
    ) -> IngestReport:
        """Load, split, embed and store ``sources`` (files, folders, globs, URLs).

        Unchanged sources are skipped, changed ones replace their old chunks, and
        unreadable ones are skipped with a reason in the returned report. Extra keyword
        arguments are loader options (``query=`` for SQL, ``text_field=`` for JSON, ...).
        ``redact=True`` (or a ``redact.Redactor``) masks e-mail addresses, phone numbers, IBANs
        and card numbers in every loaded document before anything else sees it; the report
        counts what was masked (``report.redacted``).
        """
        from .loaders import SkipSource, choose
        from .loaders.sources import expand
        from .splitters import Splitter, get_splitter

        started = time.perf_counter()
        if isinstance(sources, (str, os.PathLike)):
            sources = [sources]
        report = self.last_report = IngestReport(self.collection, self.store.name)
        embedder = self.embedder
        if isinstance(splitter, Splitter):
            if chunk_size is not None or chunk_overlap is not None:
                raise UsageError("Pass chunk_size and chunk_overlap to the Splitter you built, not to add().")
            split = splitter
        else:
            split = get_splitter(splitter, embedder=embedder, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
        _check_loader_options(loader, loader_options)
        redactor = _redactor(redact)
        split_key = split.config_key + ("|redacted" if redactor else "")  # a redacted copy is another version
        # Texts per embed() call: the embedder buckets them by token length inside the call,
        # so bigger calls pad less; the progress bar moves once per call.
        batch_size = batch_size or getattr(config.settings(), "embed_batch_size", 256)
        writer = _Writer(self, report, batch_size, progress)
        usage_errors: list[UsageError] = []
        manifest = self.store.manifest()
        try:
            for src, problem in expand(sources, glob, recursive):
                if problem:
                    report.skipped.append((src, problem))
                    continue
                try:
                    cls, note = choose(src, loader)
                    options = _options_for(cls, loader_options, explicit=loader is not None)
                    key = source_key(src, options)
                    fingerprint = _fingerprint(src, cls.name, options, split_key, embedder.identity)
                    old = manifest.get(key)
                    if old and fingerprint and old.get("fingerprint") == fingerprint and _settled(old):
                        report.files_unchanged += 1
                        report.chunks_unchanged += old.get("chunks", 0)
                        continue
                    chunks = list(split.split(_redacted(cls(**options).load(src), redactor)))
                    if not chunks:
                        raise SkipSource("no text to index")
                except SkipSource as e:
                    report.skipped.append((src, str(e)))
                    continue
                except UsageError as e:
                    usage_errors.append(e)
                    report.skipped.append((src, str(e)))
                    continue
                except (KeyboardInterrupt, MemoryError):
                    raise
                except Exception as e:  # noqa: BLE001 - one broken file must not stop the run
                    report.skipped.append((src, f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"))
                    continue
                if note:
                    report.notes.append((src, note))
                item = _prepare(src, key, fingerprint, chunks, old)
                if old and old.get("version") == item.version and _settled(old):
                    # Same content (a touched file, a re-run query): remember the new fingerprint only.
                    self.store.set_manifest(key, {**old, "fingerprint": item.fingerprint})
                    report.files_unchanged += 1
                    report.chunks_unchanged += len(chunks)
                    continue
                report.files_read += 1
                writer.add(item)
            writer.flush()
        except KeyboardInterrupt:
            report.interrupted = True
            report.seconds = time.perf_counter() - started
            writer.close()
            print(str(report), file=sys.stderr)
            raise
        writer.close()
        report.seconds = time.perf_counter() - started
        if redactor:
            report.redacted = dict(redactor.report.counts)
        if usage_errors and not report.files_read and not report.files_unchanged:
            raise usage_errors[0]
        return report

    # -- query -----------------------------------------------------------------

    def search(self, query: str, k: int | None = None, where: dict | None = None) -> list[Hit]:
        """The ``k`` chunks most similar to ``query`` (cosine), best first.

        Each ``Hit`` has ``.text``, ``.score`` and ``.metadata`` (``source`` as given,
        ``page`` for PDFs, ``start_index``, ...). ``where`` filters on metadata in
        Chroma's syntax, e.g. ``{"source": "guide.pdf"}``.
        """
        k = k or config.settings().k
        if self.store.count() == 0:
            raise UsageError(f"Collection {self.collection!r} is empty. Add documents first: %ingest PATH --collection {self.collection}")
        vector = self.embedder.embed_query(query)
        self._check_dimension(vector.reshape(1, -1))
        hidden = self._hidden_versions()
        flt = _and(where, {VERSION: {"$nin": hidden}} if hidden else None)
        return [Hit(h.text, h.score, _public(h.metadata), h.id) for h in self.store.query(vector, k, flt)]

    def _hidden_versions(self) -> list[str]:
        hidden = []
        for entry in self.store.manifest().values():
            hidden.extend(v for v in (entry.get("pending"), *entry.get("stale", [])) if v)
        return hidden

    # -- housekeeping ----------------------------------------------------------

    def delete(self, source: str) -> int:
        """Remove a source (or every source under a folder); returns how many chunks went."""
        manifest = self.store.manifest()
        target = os.path.abspath(source) if not _is_url(source) else source
        keys = [k for k, e in manifest.items() if k == target or e.get("source") == source or k.startswith(target.rstrip(os.sep) + os.sep)]
        if not keys:
            known = ", ".join(sorted({e.get("source", k) for k, e in manifest.items()})[:10]) or "(none)"
            raise UsageError(f"No source {source!r} in collection {self.collection!r}. Sources: {known}.")
        removed = 0
        for key in keys:
            entry = manifest[key]
            versions = [v for v in (entry.get("version"), entry.get("pending"), *entry.get("stale", [])) if v]
            self.store.set_manifest(key, {**entry, "version": None, "pending": None, "stale": versions})  # hide first
            ids = [r["id"] for r in self.store.get(where={KEY: key})]
            self.store.delete(ids)
            removed += len(ids)
            self.store.set_manifest(key, None)
        return removed

    def sources(self) -> list[str]:
        """The sources in the collection, as they were given."""
        return sorted({e.get("source", k) for k, e in self.store.manifest().items() if e.get("version")})

    def stats(self) -> dict:
        """Collection, store, embedder, dimension, source and chunk counts."""
        info = self.store.info()
        manifest = self.store.manifest()
        return {
            "collection": self.collection,
            "store": self.store.name,
            "path": getattr(self.store, "path", None),
            "embedder": info.get("embedder") or self._embedder_name or config.settings().embedder,
            "dimension": info.get("dimension"),
            "sources": sum(1 for e in manifest.values() if e.get("version")),
            "chunks": self.store.count(),
            "unfinished": sum(1 for e in manifest.values() if not _settled(e)),
        }

    def drop(self) -> None:
        """Delete the whole collection."""
        self.store.drop()
        self._checked = False

    def __repr__(self) -> str:
        return f"<Index {self.collection!r} store={self.store.name!r} chunks={self.store.count()}>"


# ---------------------------------------------------------------------------
# Writing sources consistently
# ---------------------------------------------------------------------------


class _Writer:
    """Collects prepared sources, embeds their new texts in batches, writes each source."""

    GROUP = 256  # chunks embedded together before their sources are written

    def __init__(self, index: Index, report: IngestReport, batch_size: int, progress: bool | None):
        self.index, self.report, self.batch_size = index, report, batch_size
        self.progress = config.settings().progress if progress is None else progress
        self.pending: list[_Pending] = []
        self.queued = 0
        self.cache: dict[str, "np.ndarray"] = {}  # text hash -> vector, across this run
        self.bar = None

    def add(self, item: _Pending) -> None:
        self.pending.append(item)
        self.queued += len(item.chunks)
        if self.queued >= self.GROUP:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        self._embed()
        for item in self.pending:
            self._write(item)
        self.pending, self.queued = [], 0

    def _embed(self) -> None:
        import numpy as np

        index = self.index
        todo: dict[str, str] = {}
        for item in self.pending:
            if item.old is not None:
                self._reuse(item)
            for chunk, id_ in zip(item.chunks, item.ids):
                h = _text_hash(chunk.text)
                if id_ in item.stored_ids or h in item.vectors:
                    continue
                if h in self.cache:
                    item.vectors[h] = self.cache[h]
                else:
                    todo.setdefault(h, chunk.text)
        if not todo:
            return
        order = sorted(todo, key=lambda h: len(todo[h]), reverse=True)  # similar lengths pad less
        bar = self._bar(len(order))
        t0 = time.perf_counter()
        for i in range(0, len(order), self.batch_size):
            batch = order[i : i + self.batch_size]
            vectors = np.asarray(index.embedder.embed([todo[h] for h in batch]), dtype=np.float32)  # (B, dim)
            index._check_dimension(vectors)
            for h, v in zip(batch, vectors):
                self.cache[h] = v
            if bar is not None:
                bar.update(len(batch))
        self.report.embed_seconds += time.perf_counter() - t0
        self.report.chunks_embedded += len(order)
        for item in self.pending:
            for chunk in item.chunks:
                h = _text_hash(chunk.text)
                if h not in item.vectors and h in self.cache:
                    item.vectors[h] = self.cache[h]

    def _reuse(self, item: _Pending) -> None:
        """Vectors this source already has in the store (an earlier version, an interrupted run)."""
        for rec in self.index.store.get(where={KEY: item.key}, vectors=True):
            item.vectors.setdefault(_text_hash(rec["text"]), rec["vector"])
            if rec["metadata"].get(VERSION) == item.version:
                item.stored_ids.add(rec["id"])

    def _write(self, item: _Pending) -> None:
        import numpy as np

        store = self.index.store
        old = item.old or {}
        stale = [v for v in (old.get("version"), old.get("pending"), *old.get("stale", [])) if v and v != item.version]
        base = {"source": item.source, "fingerprint": item.fingerprint, "chunks": len(item.chunks)}
        # 1: the old version (if any) stays the committed one; the new one is hidden while it is written
        store.set_manifest(item.key, {**old, "source": item.source, "version": old.get("version"), "pending": item.version, "stale": stale})
        rows = [(i, id_) for i, id_ in enumerate(item.ids) if id_ not in item.stored_ids]
        for j in range(0, len(rows), 256):  # 2
            part = rows[j : j + 256]
            chunks = [item.chunks[i] for i, _ in part]
            vectors = np.stack([np.asarray(item.vectors[_text_hash(c.text)], dtype=np.float32) for c in chunks])
            metas = [{**c.metadata, KEY: item.key, VERSION: item.version} for c in chunks]
            store.upsert([id_ for _, id_ in part], vectors, [c.text for c in chunks], metas)
        store.set_manifest(item.key, {**base, "version": item.version, "pending": None, "stale": stale})  # 3
        if item.old is None:  # a new source: nothing older can exist (a crashed attempt leaves an entry)
            old_ids = []
        else:  # 4
            old_ids = [r["id"] for r in store.get(where={KEY: item.key}) if r["metadata"].get(VERSION) != item.version]
            store.delete(old_ids)
            store.set_manifest(item.key, {**base, "version": item.version, "pending": None, "stale": []})
        self.report.chunks_added += len(rows)
        self.report.chunks_unchanged += len(item.ids) - len(rows)
        self.report.chunks_removed += len(old_ids)

    def _bar(self, n: int):
        if not self.progress:
            return None
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=n, desc=f"Embedding into {self.index.collection}", unit="chunk", leave=False)
            return self.bar
        self.bar.total += n
        self.bar.refresh()
        return self.bar

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ---------------------------------------------------------------------------
# Keys, hashes and options
# ---------------------------------------------------------------------------


def _is_url(source: str) -> bool:
    from .loaders import scheme_of

    return scheme_of(source) is not None


def source_key(source: str, options: dict) -> str:
    """The manifest key: an absolute path for files; the URL plus loader options for URLs."""
    if _is_url(source):
        from .loaders.sql import redacted

        extra = {k: v for k, v in sorted(options.items()) if v not in (None, [], "")}
        return redacted(source) + (" " + json.dumps(extra, sort_keys=True) if extra else "")
    return os.path.abspath(source)


def _fingerprint(source: str, loader: str, options: dict, splitter: str, embedder: str) -> str | None:
    """Cheap change detection (size, mtime, settings) so an unchanged file is not even read."""
    if _is_url(source):
        return None  # a database can change without a file timestamp: always re-read
    try:
        st = os.stat(source)
    except OSError:
        return None
    parts = [str(st.st_size), str(st.st_mtime_ns), loader, json.dumps(options, sort_keys=True, default=str), splitter, embedder]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _prepare(source: str, key: str, fingerprint: str | None, chunks: list[Chunk], old: dict | None) -> _Pending:
    h = hashlib.sha256(key.encode())
    for chunk in chunks:
        meta = {k: v for k, v in sorted(chunk.metadata.items()) if k != "mtime"}
        h.update(json.dumps(meta, sort_keys=True, default=str).encode())
        h.update(b"\0" + chunk.text.encode("utf-8", "surrogatepass") + b"\0")
    version = h.hexdigest()[:32]
    ids = []
    for i, chunk in enumerate(chunks):
        ids.append(hashlib.sha256(f"{version}\0{i}\0{chunk.metadata.get('start_index')}\0{_text_hash(chunk.text)}".encode()).hexdigest()[:40])
    return _Pending(source, key, fingerprint or "", version, chunks, ids, old)


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _settled(entry: dict) -> bool:
    return bool(entry.get("version")) and not entry.get("pending") and not entry.get("stale")


def _public(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if not k.startswith("_")}


def _and(*filters: dict | None) -> dict | None:
    parts = [f for f in filters if f]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _check_loader_options(loader: str | None, options: dict) -> None:
    """Every option must mean something to the named loader, or to some loader."""
    from .. import registry
    from .loaders import get_loader

    if not options:
        return
    if loader:
        get_loader(loader).parse_options(options)  # UsageError naming the valid options
        return
    known = {f for e in registry.unique("loader") for f in e.obj.Options.model_fields}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(f"No loader takes option(s) {', '.join(unknown)}. Loader options: {', '.join(sorted(known))}.")


def _options_for(cls, options: dict, explicit: bool) -> dict:
    if explicit:
        return dict(options)
    fields = cls.Options.model_fields
    return {k: v for k, v in options.items() if k in fields}


def _redactor(redact):
    """None, or the Redactor that masks personal data for this run (see ingest/redact.py)."""
    if not redact:
        return None
    from .redact import Redactor

    return redact if isinstance(redact, Redactor) else Redactor()


def _redacted(documents, redactor):
    """The loader's documents with personal data masked, before the splitter sees them."""
    if redactor is None:
        yield from documents
        return
    for doc in documents:
        doc.text = redactor.redact(doc.text)
        yield doc
