"""What one ``Index.add`` did: files read and skipped (with reasons), chunks added and removed,
and where the time went (load, split, embed, store: ``profile()``, ``%ingest --profile``)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from html import escape


@dataclass
class IngestReport:
    """The summary ``%ingest`` shows; ``str()`` gives the plain-text form."""

    collection: str
    store: str = ""
    files_read: int = 0
    files_unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, one-line reason)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (source, note), e.g. a mislabeled extension
    chunks_added: int = 0
    chunks_unchanged: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0  # texts that went through the model (duplicates and kept vectors skip it)
    # Seconds per stage (time.perf_counter sums). With a process pool (workers > 1) load and
    # split run in the workers: their seconds are summed over the workers, and wait_seconds is
    # how long the main process waited for them; embed and store always run in the main process.
    load_seconds: float = 0.0  # loaders, and redaction when asked for
    split_seconds: float = 0.0
    embed_seconds: float = 0.0
    store_seconds: float = 0.0  # the store's reads and writes: manifest look-ups, upserts, deletes
    wait_seconds: float = 0.0  # main process blocked on the workers (pool start-up included)
    read_here_seconds: float = 0.0  # with workers: load + split the main process did itself rather than wait
    seconds: float = 0.0  # wall time of the whole add()
    cpu_seconds: float = 0.0  # CPU time of this process over the add(), all its threads (not the workers')
    workers: int = 1  # processes that loaded and split (1: in the main process); with Ray, the cluster's CPUs
    engine: str = "local"  # "ray": load, split and embed ran on Ray workers (ray_engine.py)
    workers_note: str = ""  # why a run asked for workers went in process, if it did
    interrupted: bool = False
    redacted: dict[str, int] | None = None  # kind -> items masked, when run with redact=True
    redact_warnings: list[str] = field(default_factory=list)  # kinds not checked (names without spaCy), with the fix

    @property
    def files_skipped(self) -> int:
        return len(self.skipped)

    def finish(self, started: tuple[float, float]) -> None:
        """Set the wall and CPU seconds from ``(time.perf_counter(), time.process_time())`` taken at the start."""
        self.seconds = time.perf_counter() - started[0]
        self.cpu_seconds = time.process_time() - started[1]

    @property
    def cores_busy(self) -> float:
        """This process's CPU seconds per wall second: how many cores it kept busy on average."""
        return self.cpu_seconds / self.seconds if self.seconds else 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_added / self.seconds if self.seconds else 0.0

    def lines(self) -> list[str]:
        head = f"{'Interrupted' if self.interrupted else 'Ingested'} into {self.collection!r}"
        head += f" ({self.store})" if self.store else ""
        out = [
            f"{head}: {self.files_read} file(s) read, {self.files_unchanged} unchanged, {self.files_skipped} skipped.",
            f"Chunks: {self.chunks_added} added, {self.chunks_unchanged} unchanged, {self.chunks_removed} removed"
            f" ({self.chunks_embedded} embedded; {self.seconds:.1f} s).",
        ]
        if self.redacted is not None:
            found = ", ".join(f"{n} {kind.replace('_', ' ')}{'s' if n != 1 else ''}" for kind, n in sorted(self.redacted.items()))
            out.append(f"Redacted {sum(self.redacted.values())} item(s) before embedding: {found or 'no personal data found'}.")
            out.extend(f"Warning: {line}" for line in self.redact_warnings)
        if self.interrupted:
            out.append("The collection is consistent: finished sources are in, the rest are not. Run the same command again to complete it.")
        if self.skipped:
            out.append("Skipped:")
            out.extend(f"  {src}: {why}" for src, why in self.skipped)
        if self.notes:
            out.append("Notes:")
            out.extend(f"  {src}: {note}" for src, note in self.notes)
        return out

    def stages(self) -> list[tuple[str, float, str]]:
        """``(stage, seconds, where)`` rows; the "main" rows add up to ``seconds`` (wall time)."""
        ray = self.engine == "ray"
        pooled = self.workers > 1 or ray
        where = "workers" if pooled else "main"
        rows = [("load", self.load_seconds, where), ("split", self.split_seconds, where)]
        if pooled:
            rows += [("wait for workers", self.wait_seconds, "main"), ("load+split in main", self.read_here_seconds, "main")]
        if ray:  # embedded on the workers too; the main process only writes
            rows.insert(2, ("embed", self.embed_seconds, "workers"))
            rows += [("store", self.store_seconds, "main")]
        else:
            rows += [("embed", self.embed_seconds, "main"), ("store", self.store_seconds, "main")]
        main = sum(s for _, s, w in rows if w == "main")
        rows.append(("other", max(0.0, self.seconds - main), "main"))  # walking, choosing loaders, hashing ids
        return rows

    def profile(self) -> str:
        """The stages as a small table: seconds and share of the wall time."""
        wall = self.seconds or 1e-12
        how = f"Ray Data, {self.workers} CPUs" if self.engine == "ray" else f"{self.workers} worker processes" if self.workers > 1 else "in one process"
        out = [f"Profile ({how}{'; ' + self.workers_note if self.workers_note else ''}):", f"  {'stage':<24}{'seconds':>9}{'share':>8}"]
        for stage, seconds, where in self.stages():
            label = f"{stage} (all, summed)" if where == "workers" else stage
            share = f"({seconds / wall:.0%})" if where == "workers" else f"{seconds / wall:.0%}"
            out.append(f"  {label:<24}{seconds:>9.2f}{share:>8}")
        out.append(f"  {'total (wall)':<24}{self.seconds:>9.2f}{'100%':>8}")
        if self.workers > 1 or self.engine == "ray":
            out.append("  (all, summed): seconds summed over the workers and the main process, which ran side by side; not part of the 100%.")
        cores = os.cpu_count() or 1
        busy = f"  cores busy in this process: {self.cores_busy:.2f} of {cores} (CPU seconds {self.cpu_seconds:.1f} / wall)"
        if self.workers == 1 and self.engine == "local" and self.cores_busy > 0.05:
            # Amdahl's bound, measured: work that already fills the cores cannot be spread any wider.
            busy += f"; more processes on this machine could make it at most {max(1.0, cores / self.cores_busy):.2f}x faster"
        out.append(busy)
        return "\n".join(out)

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self) -> str:
        lines = self.lines()
        at = 2 + (1 + len(self.redact_warnings) if self.redacted is not None else 0)  # with the Redacted line and its warnings
        body = "".join(f"<div>{escape(line)}</div>" for line in lines[:at])
        if self.interrupted:
            body += f"<div><b>{escape(lines[at])}</b></div>"
        if self.skipped:
            rows = "".join(f"<tr><td><code>{escape(s)}</code></td><td>{escape(w)}</td></tr>" for s, w in self.skipped)
            body += f"<details><summary>{len(self.skipped)} skipped</summary><table>{rows}</table></details>"
        if self.notes:
            rows = "".join(f"<tr><td><code>{escape(s)}</code></td><td>{escape(n)}</td></tr>" for s, n in self.notes)
            body += f"<details><summary>{len(self.notes)} note(s)</summary><table>{rows}</table></details>"
        return f"<div class='llm-magics-ingest'>{body}</div>"
