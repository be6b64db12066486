"""Loading, splitting and embedding as a Ray Data pipeline (``Index.add(engine="ray")``).

Ray computes, this process writes. ``add`` decides from the manifest which sources need
reading (``Job``), exactly as with the local engine; those go to a Ray Data pipeline::

    from_items(jobs) -> map(_LoadSplit)          # loaders, redaction, the splitter: CPU actors
                     -> map_batches(_Embed)      # the embedder, by name and options, built once per actor
                     -> iter_rows()              # back here, in the order of the sources

and each source's chunks and vectors go to the same writer as a local run (manifest ->
upsert -> commit, pipeline.py), which uses the vectors instead of embedding again. Workers
never touch the store, so the manifest protocol, and with it idempotence and crash safety,
is unchanged. The chunks and their ids are those of the local engine: the splitter is
rebuilt by name in the workers (workers.py ``worker_spec``), and a loader a worker cannot
import is read here.

``ray_address`` connects to a running cluster (``ray.init(address=...)``: its workers need
``llm-magics`` and the plugins in use installed). Without it a local instance is started
with one CPU per core and shut down after the run, or the Ray instance this process already
started is reused; ``report.workers_note`` says which.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from typing import TYPE_CHECKING, Iterable, Iterator

from ..errors import UsageError
from .workers import Job, Read, Reader, WorkerSpec, _origin, failure, load_and_split, load_plugins, rebuild_splitter, worker_spec

if TYPE_CHECKING:
    from .report import IngestReport

ENGINES = ("local", "ray")
INSTALL = "pip install 'llm-magics[ray]'"
#: Sources per embedding call on a Ray worker (their texts are embedded together, duplicates once).
SOURCES_PER_BATCH = 8


def check_engine(engine: str | None, ray_address: str | None, workers: int) -> str:
    """The engine's name, or a UsageError that lists the valid ones."""
    engine = engine or "local"
    if engine not in ENGINES:
        raise UsageError(f"No ingest engine {engine!r}. Known: {', '.join(ENGINES)}. Example: --engine ray --ray-address ray://HOST:10001")
    if ray_address and engine != "ray":
        raise UsageError(f"--ray-address is for the Ray engine: add --engine ray (now: --engine {engine}).")
    if engine == "ray" and workers > 1:
        raise UsageError("--workers sizes the local engine's process pool; Ray sizes its own pools from the cluster's CPUs. Drop --workers, or use --engine local.")
    return engine


# ---------------------------------------------------------------------------
# What runs on the Ray workers
# ---------------------------------------------------------------------------


class _LoadSplit:
    """A Ray actor: loads (and redacts) and splits one source per row; ``Read`` as pickled bytes."""

    def __init__(self, spec: WorkerSpec, redactor):
        self.split = rebuild_splitter(spec)
        self.redactor = redactor

    def __call__(self, row: dict) -> dict:
        from .loaders import get_loader
        from .redact import RedactionReport

        loader, options, source = pickle.loads(row["job"])
        if self.redactor is not None:
            self.redactor.report = RedactionReport()  # this source's counts, added up by the driver
        try:
            read = load_and_split(get_loader(loader), options, source, self.split, self.redactor)
        except UsageError as e:  # an unknown loader name
            read = failure(e)
        redacted = (dict(self.redactor.report.counts), self.redactor.report.documents) if self.redactor else None
        return {"n": row["n"], "read": pickle.dumps((read, redacted))}


class _Embed:
    """A Ray actor: the run's embedder, built once by name; a batch of sources' chunks -> their vectors."""

    def __init__(self, spec: WorkerSpec, embedder: tuple[str, dict] | None, batch_size: int, headings: bool = False):
        from .. import registry

        load_plugins(spec)
        self.embedder = registry.get("embedder", embedder[0])(**embedder[1]) if embedder else None
        self.batch_size, self.headings = batch_size, headings

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        reads = [pickle.loads(b) for b in batch["read"]]
        from .documents import HEADINGS, text_to_embed

        # what each chunk embeds (as the writer's: documents.text_to_embed) -> row of `vectors`
        embeds = lambda c: text_to_embed(c.text, c.metadata, HEADINGS if self.headings else "")  # noqa: E731
        texts: dict[str, int] = {}  # a text in several chunks is embedded once
        for read, _ in reads:
            for chunk in read.chunks:
                texts.setdefault(embeds(chunk), len(texts))
        t0 = time.perf_counter()
        vectors = None
        if self.embedder is not None and texts:
            order = list(texts)
            vectors = np.concatenate([
                np.asarray(self.embedder.embed(order[i : i + self.batch_size]), dtype=np.float32)  # (B, dim)
                for i in range(0, len(order), self.batch_size)
            ])  # fmt: skip
        seconds = time.perf_counter() - t0
        out = []
        for k, (read, redacted) in enumerate(reads):
            if vectors is not None and read.chunks:
                read.vectors = vectors[[texts[embeds(c)] for c in read.chunks]]  # (chunks, dim)
            # this batch's embedding count and seconds ride on its first row
            out.append(pickle.dumps((read, redacted, len(texts) if k == 0 and vectors is not None else 0, seconds if k == 0 else 0.0)))
        return {"n": batch["n"], "read": np.array(out, dtype=object)}


# ---------------------------------------------------------------------------
# The driver side: jobs in, (job, read) out, in order
# ---------------------------------------------------------------------------


class RayReader(Reader):
    """Reads and embeds each job's source on Ray, giving them back in the order of the sources."""

    def __init__(self, ray_address: str | None, split, embedder, redactor, report: "IngestReport", batch_size: int, headings: bool = False):
        t0 = time.perf_counter()
        try:  # before anything is read: a missing extra is a UsageError with the fix
            import ray.data  # noqa: F401
        except ImportError as e:
            raise UsageError(f"--engine ray needs Ray Data ({e}): {INSTALL}") from None
        super().__init__(1, split, embedder, redactor, report)
        report.wait_seconds += time.perf_counter() - t0  # importing Ray is part of its start-up
        self.ray_address, self.batch_size, self.headings = ray_address, batch_size, headings
        self.started_ray = False
        self.rows: Iterator | None = None
        report.engine = "ray"
        self.spec, why = worker_spec(split, embedder, None)  # redaction travels as the Redactor itself
        if self.spec is None:
            raise UsageError(f"--engine ray: {why}. Use --engine local, or a splitter registered by an installed plugin.")
        origin = _origin("embedder", type(embedder))
        self.embed_with = (embedder.name, embedder.options.model_dump()) if origin is not None else None
        if origin is not None:
            self.spec.add(origin)
        else:
            report.workers_note = f"embedder {embedder.name!r} is not registered by a plugin Ray workers can import: embedded here"
        self.identity = embedder.identity

    def read(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Read]]:
        jobs = list(jobs)  # every manifest decision is made here, before Ray sees a source
        remote = [n for n, job in enumerate(jobs) if self._portable(job)]  # the rest: done, or read here
        for n in remote:
            self.spec.add(_origin("loader", jobs[n].loader))
        results = self._results(jobs, remote) if remote else iter(())
        ready: dict[int, Read] = {}
        wanted = set(remote)
        for n, job in enumerate(jobs):
            if job.done is not None:
                yield job, job.done
            elif n not in wanted:
                yield job, self._here(job)
            else:
                while n not in ready:  # preserve_order gives them in order; this holds if it did not
                    m, read = next(results)
                    ready[m] = read
                yield job, ready.pop(n)

    def _results(self, jobs: list[Job], remote: list[int]) -> Iterator[tuple[int, Read]]:
        import ray

        self._connect()
        rows = [{"n": n, "job": pickle.dumps((jobs[n].loader.name, jobs[n].options, jobs[n].source))} for n in remote]
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.report.workers = cpus
        def pool():  # load+split and embed actors share the CPUs
            return ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, cpus - 1))

        ds = ray.data.from_items(rows, override_num_blocks=len(rows))  # a source per block: each can go to any worker
        ds = ds.map(_LoadSplit, fn_constructor_args=(self.spec, self.redactor), compute=pool(), num_cpus=1)
        ds = ds.map_batches(
            _Embed, fn_constructor_args=(self.spec, self.embed_with, self.batch_size, self.headings),
            batch_size=SOURCES_PER_BATCH, batch_format="numpy", compute=pool(), num_cpus=1,
        )  # fmt: skip
        self.rows = iter(ds.iter_rows())
        t0 = time.perf_counter()
        for row in self.rows:
            self.report.wait_seconds += time.perf_counter() - t0
            read, redacted, embedded, seconds = pickle.loads(row["read"])
            self._account(read, redacted, embedded, seconds)
            yield int(row["n"]), read
            t0 = time.perf_counter()

    def _account(self, read: Read, redacted, embedded: int, seconds: float) -> None:
        report = self.report
        report.load_seconds += read.load_seconds
        report.split_seconds += read.split_seconds
        report.embed_seconds += seconds
        report.chunks_embedded += embedded
        if redacted is not None:
            counts, documents = redacted
            self.redactor.report.counts.update(counts)
            self.redactor.report.documents += documents

    def _connect(self) -> None:
        """Join the cluster at ``ray_address``, reuse this process's Ray, or start a local instance."""
        import ray
        import ray.data

        t0 = time.perf_counter()
        if ray.is_initialized():
            where = "the Ray instance this process already started (reused, left running)"
        elif self.ray_address:
            ray.init(address=self.ray_address, log_to_driver=False, logging_level=logging.WARNING)
            where = f"the Ray cluster at {self.ray_address}"
        else:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            self.started_ray = True
            where = "a local Ray instance started for this run (shut down after)"
        self.report.wait_seconds += time.perf_counter() - t0
        self.report.workers_note = "; ".join(filter(None, [f"Ray Data on {where}, {time.perf_counter() - t0:.1f} s to connect", self.report.workers_note]))
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # rows come back in the order of the sources
        context.enable_progress_bars = False  # progress stays one bar: the writer's
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no "Starting execution of Dataset" lines per run

    def close(self, abort: bool = False) -> None:
        """Stop the pipeline (its actors go with it), and the local instance if this run started it."""
        rows, self.rows = self.rows, None
        if rows is not None and hasattr(rows, "close"):
            rows.close()
        if self.started_ray:
            import ray

            ray.shutdown()
            self.started_ray = False
