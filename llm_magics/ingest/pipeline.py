"""The ingest pipeline behind ``Index.add``: load, split, embed in batches, write each source.

``add`` walks the sources (files, folders, globs, URLs), skips unchanged ones by
fingerprint, loads and splits the rest (here, or in worker processes: workers.py), and
hands them, in the order of the sources, to a ``_Writer``, which embeds
their new texts in batches (reusing vectors the store already holds) and writes each
source through the ``Manifest`` protocol (manifest.py), so an interrupted run leaves the
collection consistent and the next run finishes it. The report times each stage.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .. import config
from ..errors import UsageError
from .documents import EMBEDDED, HEADINGS, Chunk, text_hash, text_to_embed, vector_key
from .manifest import KEY, VERSION
from .report import IngestReport

if TYPE_CHECKING:
    import numpy as np

    from .index import Index
    from .redact import Redactor
    from .splitters import Splitter
    from .workers import Job


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
    vectors: dict[str, "np.ndarray"] = field(default_factory=dict)  # vector_key -> vector
    stored_ids: set[str] = field(default_factory=set)  # ids of this version already in the store


def add(
    index: "Index",
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
    workers: int | None = None,  # processes that load and split (0 or 1: this one)
    engine: str | None = None,  # "local" (default) or "ray": load, split and embed as a Ray Data pipeline
    ray_address: str | None = None,  # with engine="ray": a running cluster (default: a local instance)
    headings: bool | None = None,  # embed each chunk under its nearest header (default: LLMMagics.embed_headings)
    **loader_options: Any,
) -> IngestReport:
    """Load, split, embed and store ``sources`` (files, folders, globs, URLs).

    Unchanged sources are skipped, changed ones replace their old chunks, and
    unreadable ones are skipped with a reason in the returned report. Extra keyword
    arguments are loader options (``query=`` for SQL, ``text_field=`` for JSON, ...).
    ``redact=True`` (or a ``redact.Redactor``, e.g. ``Redactor(kinds=["email", "phone"])``) masks
    e-mail addresses, phone numbers, IBANs, card numbers and people's names (when spaCy's English
    model is installed) in every loaded document before anything else sees it; the report counts
    what was masked (``report.redacted``) and says which kinds were not checked.
    ``workers=N`` loads and splits in N worker processes while this one embeds and writes
    (workers.py); the chunks and their ids are the same as with one process. ``engine="ray"``
    loads, splits and embeds on Ray (ray_engine.py) while this process writes; the chunks, ids
    and skips are again the same. The report times each stage (``report.profile()``).
    ``headings=True`` (the default, ``LLMMagics.embed_headings``) embeds each chunk with the
    header it sits under (else its document's title) in front (``documents.embedding_text``); the stored text is
    the chunk's own. Switching it re-embeds a collection's sources on their next ingest.
    """
    from .ray_engine import RayReader, check_engine
    from .splitters import Splitter, get_splitter
    from .workers import Reader

    started = time.perf_counter(), time.process_time()  # wall, and this process's CPU (all its threads)
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    report = index.last_report = IngestReport(index.collection, index.store.name)
    workers = _check_workers(workers)
    engine = check_engine(engine, ray_address, workers)
    embedder = index.embedder
    if isinstance(splitter, Splitter):
        if chunk_size is not None or chunk_overlap is not None:
            raise UsageError("Pass chunk_size and chunk_overlap to the Splitter you built, not to add().")
        split = splitter
    else:
        split = get_splitter(splitter, embedder=embedder, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    _check_loader_options(loader, loader_options)
    redactor = _redactor(redact)
    # a redacted copy is another version, and so is one redacted for other kinds (names added, say)
    split_key = split.config_key + (f"|redacted:{','.join(redactor.kinds)}" if redactor else "")
    headings = config.settings().embed_headings if headings is None else bool(headings)
    split_key += "|headings" if headings else ""  # switching it re-reads every source
    # Texts per embed() call: the embedder buckets them by token length inside the call,
    # so bigger calls pad less; the progress bar moves once per call.
    batch_size = batch_size or getattr(config.settings(), "embed_batch_size", 256)
    writer = _Writer(index, report, batch_size, progress, headings)
    usage_errors: list[UsageError] = []
    manifest = index.manifest
    jobs = _jobs(index, sources, glob, recursive, loader, loader_options, split_key, report)
    if engine == "ray":
        reader = RayReader(ray_address, split, embedder, redactor, report, batch_size, headings)
    else:
        reader = Reader(workers, split, embedder, redactor, report)
    try:
        with reader:
            for job, read in reader.read(jobs):  # in the order of the sources, whoever read them
                if read.unchanged:
                    report.files_unchanged += 1
                    report.chunks_unchanged += job.old.get("chunks", 0)
                    continue
                if read.skip is not None:
                    if read.usage:
                        usage_errors.append(UsageError(read.skip))
                    report.skipped.append((job.source, read.skip))
                    continue
                if job.note:
                    report.notes.append((job.source, job.note))
                item = _prepare(job.source, job.key, job.fingerprint, read.chunks, job.old, headings)
                old = job.old
                if old and old.get("version") == item.version and manifest.settled(old):
                    # Same content (a touched file, a re-run query): remember the new fingerprint only.
                    with _timed(report, "store_seconds"):
                        manifest.touch(job.key, old, item.fingerprint)
                    report.files_unchanged += 1
                    report.chunks_unchanged += len(read.chunks)
                    continue
                report.files_read += 1
                if read.vectors is not None:  # embedded by the engine: the writer stores these
                    writer.computed(item, read.vectors)
                writer.add(item)
        writer.flush()
    except KeyboardInterrupt:
        report.interrupted = True
        report.finish(started)
        writer.close()
        print(str(report), file=sys.stderr)
        raise
    writer.close()
    report.finish(started)
    if redactor:
        report.redacted = dict(redactor.report.counts)
        report.redact_warnings = redactor.report.warnings()
    if usage_errors and not report.files_read and not report.files_unchanged:
        raise usage_errors[0]
    return report


def _jobs(index: "Index", sources, glob, recursive, loader, loader_options, split_key, report) -> "Iterator[Job]":
    """Each source in order, with its loader chosen, or already decided (skipped, unchanged)."""
    from .loaders import choose
    from .loaders.sources import expand
    from .workers import Job, Read, failure

    embedder, manifest = index.embedder, index.manifest
    for src, problem in expand(sources, glob, recursive):
        if problem:
            yield Job(src, done=Read(skip=problem))
            continue
        try:
            cls, note = choose(src, loader)
            options = _options_for(cls, loader_options, explicit=loader is not None)
            key = cls.source_key(src, options)
            fingerprint = _fingerprint(src, cls.name + (f"@{cls.revision}" if cls.revision > 1 else ""), options, split_key, embedder.identity)
            with _timed(report, "store_seconds"):
                old = manifest.entries().get(key)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - one broken file must not stop the run
            yield Job(src, done=failure(e))
            continue
        job = Job(src, key, fingerprint, old, cls, options, note)
        if old and fingerprint and old.get("fingerprint") == fingerprint and manifest.settled(old):
            job.done = Read(unchanged=True)
        yield job


def _check_workers(workers) -> int:
    if workers is None:
        return 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise UsageError(f"workers must be a whole number of processes (0 or 1: in this process), not {workers!r}. Example: --workers 2")
    return max(1, workers)


@contextmanager
def _timed(report: IngestReport, stage: str):
    """Add the seconds the block takes to ``report.<stage>``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        setattr(report, stage, getattr(report, stage) + time.perf_counter() - t0)


class _Writer:
    """Collects prepared sources, embeds their new texts in batches, writes each source."""

    GROUP = 256  # chunks embedded together before their sources are written

    def __init__(self, index: Index, report: IngestReport, batch_size: int, progress: bool | None, headings: bool = False):
        self.index, self.report, self.batch_size = index, report, batch_size
        self.embedded = HEADINGS if headings else ""  # what this run embeds: see vector_key
        self.progress = config.settings().progress if progress is None else progress
        self.pending: list[_Pending] = []
        self.queued = 0
        self.cache: dict[str, "np.ndarray"] = {}  # text hash -> vector, across this run
        self.checked = False  # the collection's dimension checked against an engine's vectors
        self.bar = None

    def computed(self, item: _Pending, vectors: "np.ndarray") -> None:
        """Vectors an engine made for ``item``'s chunks (Ray), (chunks, dim): used instead of embedding here."""
        if not self.checked:
            self.index._check_dimension(vectors)  # and the collection records its embedder
            self.checked = True
        for chunk, v in zip(item.chunks, vectors):
            item.vectors.setdefault(vector_key(chunk.text, chunk.metadata, self.embedded), v)
        bar = self._bar(len(item.chunks))
        if bar is not None:
            bar.update(len(item.chunks))

    def add(self, item: _Pending) -> None:
        self.pending.append(item)
        self.queued += len(item.chunks)
        if self.queued >= self.GROUP:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        self._embed()
        with _timed(self.report, "store_seconds"):
            for item in self.pending:
                self._write(item)
        self.pending, self.queued = [], 0

    def _embed(self) -> None:
        import numpy as np

        index = self.index
        todo: dict[str, str] = {}
        for item in self.pending:
            if item.old is not None:
                with _timed(self.report, "store_seconds"):
                    self._reuse(item)
            for chunk, id_ in zip(item.chunks, item.ids):
                h = vector_key(chunk.text, chunk.metadata, self.embedded)
                if id_ in item.stored_ids or h in item.vectors:
                    continue
                if h in self.cache:
                    item.vectors[h] = self.cache[h]
                else:
                    todo.setdefault(h, text_to_embed(chunk.text, chunk.metadata, self.embedded))
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
                h = vector_key(chunk.text, chunk.metadata, self.embedded)
                if h not in item.vectors and h in self.cache:
                    item.vectors[h] = self.cache[h]

    def _reuse(self, item: _Pending) -> None:
        """Vectors this source already has in the store (an earlier version, an interrupted run)."""
        for rec in self.index.store.get(where={KEY: item.key}, vectors=True):  # each keyed by what it embedded
            item.vectors.setdefault(vector_key(rec["text"], rec["metadata"], rec["metadata"].get(EMBEDDED, "")), rec["vector"])
            if rec["metadata"].get(VERSION) == item.version:
                item.stored_ids.add(rec["id"])

    def _write(self, item: _Pending) -> None:
        import numpy as np

        store, manifest = self.index.store, self.index.manifest
        stale = manifest.begin(item.key, item.source, item.version, item.old)  # 1: hidden while written
        rows = [(i, id_) for i, id_ in enumerate(item.ids) if id_ not in item.stored_ids]
        for j in range(0, len(rows), 256):  # 2
            part = rows[j : j + 256]
            chunks = [item.chunks[i] for i, _ in part]
            vectors = np.stack([np.asarray(item.vectors[vector_key(c.text, c.metadata, self.embedded)], dtype=np.float32) for c in chunks])
            metas = [manifest.tag(c.metadata, item.key, item.version) for c in chunks]
            if self.embedded:
                metas = [{**m, EMBEDDED: self.embedded} for m in metas]
            store.upsert([id_ for _, id_ in part], vectors, [c.text for c in chunks], metas)
        manifest.commit(item.key, item.version, stale, source=item.source, fingerprint=item.fingerprint, chunks=len(item.chunks))  # 3
        # 4 (a new source has nothing older: a crashed attempt leaves an entry, so item.old is set then)
        removed = 0 if item.old is None else manifest.forget(item.key, keep=item.version)
        self.report.chunks_added += len(rows)
        self.report.chunks_unchanged += len(item.ids) - len(rows)
        self.report.chunks_removed += removed

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


def _fingerprint(source: str, loader: str, options: dict, splitter: str, embedder: str) -> str | None:
    """Cheap change detection (size, mtime, settings) so an unchanged file is not even read."""
    from .loaders import scheme_of

    if scheme_of(source) is not None:
        return None  # a database can change without a file timestamp: always re-read
    try:
        st = os.stat(source)
    except OSError:
        return None
    parts = [str(st.st_size), str(st.st_mtime_ns), loader, json.dumps(options, sort_keys=True, default=str), splitter, embedder]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _prepare(source: str, key: str, fingerprint: str | None, chunks: list[Chunk], old: dict | None, headings: bool = False) -> _Pending:
    h = hashlib.sha256(key.encode())
    if headings:  # other vectors, so another version: switching re-embeds and rewrites the source
        h.update(HEADINGS.encode() + b"\0")
    for chunk in chunks:
        meta = {k: v for k, v in sorted(chunk.metadata.items()) if k != "mtime"}
        h.update(json.dumps(meta, sort_keys=True, default=str).encode())
        h.update(b"\0" + chunk.text.encode("utf-8", "surrogatepass") + b"\0")
    version = h.hexdigest()[:32]
    ids = []
    for i, chunk in enumerate(chunks):
        ids.append(hashlib.sha256(f"{version}\0{i}\0{chunk.metadata.get('start_index')}\0{text_hash(chunk.text)}".encode()).hexdigest()[:40])
    return _Pending(source, key, fingerprint or "", version, chunks, ids, old)



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
