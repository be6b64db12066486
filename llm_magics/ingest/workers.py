"""Loading and splitting, in the main process or in a pool of worker processes.

``Reader`` turns the sources ``add`` found (``Job``) into their chunks (``Read``), in the
order of the sources, so the chunks, their ids and the report are the same either way.
With ``workers > 1`` the loaders and the splitter run in a ``ProcessPoolExecutor``
("spawn": torch may be loaded here, and a forked copy of it is not safe), a few files
ahead of the main process, which meanwhile embeds and writes the files before them.
Workers only compute: every store read and write stays in the main process, so the
manifest protocol (manifest.py) is untouched.

A worker resolves the loader and the splitter by their registered names (rebuild.py: only
the plugins the run uses load there; plugin modules registered at runtime are registered
there too). What a worker cannot resolve (a plugin object made in a notebook, a custom
redactor) is read in the main process, and ``report.workers_note`` says why.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from ..errors import UsageError
from .documents import Chunk
from .rebuild import WorkerSpec, _origin, load_plugins, rebuild_splitter, worker_spec  # noqa: F401 - ray_engine imports them from here
from .retrieval import DOC

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

    from .report import IngestReport

#: Fewest sources to read before a pool is worth its start-up (about a second per worker).
POOL_MIN_SOURCES = 2


@dataclass
class Read:
    """What loading and splitting one source gave: its chunks, or the one-line reason it was skipped."""

    chunks: list[Chunk] = field(default_factory=list)
    skip: str | None = None
    usage: bool = False  # ``skip`` is a UsageError's message (an unknown loader option, say)
    unchanged: bool = False  # nothing to read: the manifest already has this version
    load_seconds: float = 0.0
    split_seconds: float = 0.0
    vectors: Any = None  # (len(chunks), dim) float32 when the engine embedded them too (Ray); None: embedded in the main process


@dataclass
class Job:
    """One source, in the order found; ``done`` is set when it needs no reading."""

    source: str
    key: str = ""
    fingerprint: str | None = None
    old: dict | None = None
    loader: Any = None  # the Loader class chosen for it
    options: dict = field(default_factory=dict)
    note: str | None = None  # e.g. a mislabeled extension
    done: Read | None = None


def failure(e: Exception) -> Read:
    """A loader's or splitter's exception as the run reports it: skipped, with a one-line reason."""
    from .loaders import SkipSource

    if isinstance(e, SkipSource):
        return Read(skip=str(e))
    if isinstance(e, UsageError):
        return Read(skip=str(e), usage=True)
    return Read(skip=f"{type(e).__name__}: {' '.join(str(e).split())[:160]}")


def load_and_split(loader, options: dict, source: str, split, redactor=None) -> Read:
    """Load ``source`` with ``loader(**options)`` (redacted when asked), then split it; never raises
    for a bad file (only KeyboardInterrupt and MemoryError pass)."""
    from .loaders import SkipSource

    t0 = time.perf_counter()
    loaded = t0
    try:
        docs = list(_numbered(_redacted(loader(**options).load(source), redactor)))
        loaded = time.perf_counter()
        chunks = list(split.split(docs))
        if not chunks:
            raise SkipSource("no text to index")
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - one broken file must not stop the run
        read = failure(e)
    else:
        read = Read(chunks)
    end = time.perf_counter()
    if loaded == t0:  # failed while loading
        read.load_seconds = end - t0
    else:
        read.load_seconds, read.split_seconds = loaded - t0, end - loaded
    return read


def _numbered(documents):
    """Each document tagged with its place in the source (``_doc``): small-to-big never crosses documents."""
    for n, doc in enumerate(documents):
        doc.metadata = {**doc.metadata, DOC: n}
        yield doc


def _redacted(documents, redactor):
    """The loader's documents with personal data masked, before the splitter sees them."""
    if redactor is None:
        yield from documents
        return
    for doc in documents:
        doc.text = redactor.redact(doc.text)
        yield doc


_splitter = None  # in a worker: the splitter its spec describes


def _start_worker(spec: WorkerSpec) -> None:
    """Pool initializer: ignore Ctrl-C (the main process stops the pool), load plugins, build the splitter."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _splitter
    _splitter = rebuild_splitter(spec)


def _work(loader: str, options: dict, source: str) -> Read:
    from .loaders import get_loader

    try:
        cls = get_loader(loader)
    except UsageError as e:
        return failure(e)
    return load_and_split(cls, options, source, _splitter)


@contextmanager
def _main_not_imported():
    """A spawned process imports the parent's main module first, so a script without
    ``if __name__ == "__main__":`` would run again in each worker. Workers need nothing from
    it (they get names and options), so it is hidden while they start."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    missing = object()
    saved = {k: main.__dict__.get(k, missing) for k in ("__file__", "__spec__")}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None  # spawn reads __spec__.name, then __file__ (IPython's __main__ may have neither)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is missing:
                main.__dict__.pop(k, None)
            else:
                main.__dict__[k] = v


# ---------------------------------------------------------------------------
# The reader: jobs in, (job, read) out, in order
# ---------------------------------------------------------------------------


class Reader:
    """Reads each job's source, in order: in this process, or ``workers`` processes ahead of it.

    Use it as a context manager: leaving it (Ctrl-C included) stops the workers, none left behind.
    """

    def __init__(self, workers: int, split, embedder, redactor, report: "IngestReport"):
        self.split, self.redactor, self.report = split, redactor, report
        self.workers = max(1, int(workers or 1))
        self.spec: WorkerSpec | None = None
        self.pool: "ProcessPoolExecutor | None" = None
        if self.workers > 1:
            self.spec, report.workers_note = worker_spec(split, embedder, redactor)

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)

    def read(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Read]]:
        if self.spec is None:
            for job in jobs:
                yield job, job.done or self._here(job)
        else:
            yield from self._pooled(iter(jobs))

    def _here(self, job: Job) -> Read:
        read = load_and_split(job.loader, job.options, job.source, self.split, self.redactor)
        self.report.load_seconds += read.load_seconds
        self.report.split_seconds += read.split_seconds
        if self.report.workers > 1:  # a pool started: this process read it instead of waiting
            self.report.read_here_seconds += read.load_seconds + read.split_seconds
        return read

    def _portable(self, job: Job) -> bool:
        return job.done is None and self.spec.has(_origin("loader", job.loader))

    def _pooled(self, jobs: Iterator[Job]) -> Iterator[tuple[Job, Read]]:
        # Each source ahead of the one being written: a worker's Future, a Read already
        # made, or None (read here when its turn comes: a loader no worker can import).
        ahead: deque[tuple[Job, "Future | Read | None"]] = deque()
        readable = 0  # buffer until enough sources need reading to pay for the pool's start-up
        for job in jobs:
            ahead.append((job, job.done))
            readable += job.done is None
            if readable >= POOL_MIN_SOURCES:
                break
        if readable < POOL_MIN_SOURCES:
            self.report.workers_note = self.report.workers_note or f"fewer than {POOL_MIN_SOURCES} sources to read"
            for job, done in ahead:
                yield job, done or self._here(job)
            return
        for job, done in ahead:  # the plugins of the loaders seen so far load in the workers
            origin = None if done else _origin("loader", job.loader)
            if origin is not None:
                self.spec.add(origin)
        self._start()
        ahead = deque((job, done or self._submit(job)) for job, done in ahead)
        limit = 2 * self.workers  # sources in flight: the workers keep busy while this process embeds
        while ahead:
            in_flight = sum(not isinstance(p, (Read, type(None))) for _, p in ahead)
            while in_flight < limit and len(ahead) < 16 * limit:
                job = next(jobs, None)
                if job is None:
                    break
                ahead.append((job, job.done or self._submit(job)))
                in_flight += job.done is None and ahead[-1][1] is not None
            job, pending = ahead.popleft()
            if isinstance(pending, Read):
                yield job, pending
            elif pending is None:
                yield job, self._here(job)
            else:
                while not pending.done():  # rather than wait (workers starting, say), read a later source here
                    later = next(jobs, None)
                    if later is None:
                        break
                    ahead.append((later, later.done or self._here(later)))
                yield job, self._result(job, pending)

    def _start(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        t0 = time.perf_counter()
        self.report.workers = self.workers
        self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker, initargs=(self.spec,))
        with _main_not_imported():
            for _ in range(self.workers):  # each submit starts a process while none is idle: all start here
                self.pool.submit(int)
        self.report.wait_seconds += time.perf_counter() - t0  # start-up is waiting for the workers too

    def _submit(self, job: Job) -> "Future | None":
        if self.pool is None or not self._portable(job):
            return None
        return self.pool.submit(_work, job.loader.name, job.options, job.source)

    def _result(self, job: Job, future: "Future") -> Read:
        from concurrent.futures import CancelledError
        from concurrent.futures.process import BrokenProcessPool

        t0 = time.perf_counter()
        try:
            read = future.result()
        except CancelledError:  # never started: the pool broke before its turn
            read = None
        except BrokenProcessPool as e:  # a worker died (killed, out of memory, a crash in C code)
            self.close(abort=True)  # the rest is read in this process
            read = Read(skip=f"a worker process died while reading it or a file beside it ({e}); run with workers=1 to see which")
        finally:
            self.report.wait_seconds += time.perf_counter() - t0
        if read is None:
            return self._here(job)
        self.report.load_seconds += read.load_seconds
        self.report.split_seconds += read.split_seconds
        return read

    def close(self, abort: bool = False) -> None:
        """Stop the pool: wait for it after a finished run; otherwise cancel and terminate the workers."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        if not abort:
            pool.shutdown(wait=True)
            return
        spawned = getattr(pool, "_processes", None) or {}  # pid -> process; no public handle before Python 3.14
        manager = getattr(pool, "_executor_manager_thread", None)  # it may still be starting a worker
        pool.shutdown(wait=False, cancel_futures=True)  # (drops the pool's reference to that dict, not the dict)
        stopped: set[int] = set()
        for _ in range(3):  # a process started while we stopped the others is in the dict too: stop it as well
            processes = [p for pid, p in list(spawned.items()) if pid not in stopped]
            if not processes:
                break
            for p in processes:
                if p.is_alive():
                    p.terminate()
            for p in processes:
                p.join(10)
                if p.is_alive():  # stuck where SIGTERM cannot reach it (a busy C call): no worker outlives the run
                    p.kill()
                    p.join(5)
                stopped.add(p.pid)
            if manager is not None:
                manager.join(5)  # it exits once its workers are gone; then no new one can start
