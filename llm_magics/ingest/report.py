"""What one ``Index.add`` did: files read and skipped (with reasons), chunks added and removed."""

from __future__ import annotations

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
    embed_seconds: float = 0.0
    seconds: float = 0.0
    interrupted: bool = False
    redacted: dict[str, int] | None = None  # kind -> items masked, when run with redact=True
    redact_warnings: list[str] = field(default_factory=list)  # kinds not checked (names without spaCy), with the fix

    @property
    def files_skipped(self) -> int:
        return len(self.skipped)

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
