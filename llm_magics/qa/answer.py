"""What ``ask`` returns: ``Answer`` (with its numbered ``Source`` citations), ``Comparison``.

The types and how they show in a notebook (Markdown, HTML, pretty) live here; the
pipeline that builds them is ``qa/pipeline.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from ..backends.base import Usage
from ..ingest.documents import Hit


@dataclass
class Source:
    """One numbered citation: where a chunk came from, how close it was, and its text."""

    number: int
    source: str
    text: str
    score: float
    page: int | None = None
    start_index: int | None = None
    chunk_id: str | None = None
    cited: bool = False
    metadata: dict = field(default_factory=dict)

    @classmethod
    def from_hit(cls, number: int, hit: Hit) -> "Source":
        md = hit.metadata or {}
        return cls(number, md.get("source", ""), hit.text, float(hit.score), md.get("page"), md.get("start_index"), hit.id, metadata=dict(md))

    @property
    def label(self) -> str:
        """``report.pdf, p. 3, chars 1200+``."""
        parts = [self.source or "(unknown source)"]
        if self.page is not None:
            parts.append(f"p. {self.page}")
        if self.start_index is not None:
            parts.append(f"chars {self.start_index}+")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"[{self.number}] {self.label} (score {self.score:.2f})"


@dataclass
class Answer:
    """What ``ask`` returns; ``str(answer)`` is the answer text.

    ``sources`` are the chunks the model saw, numbered as in the prompts (``cited`` marks
    those the answer draws on); ``dropped`` did not fit the context window. ``grounded`` is
    False when retrieval found nothing relevant or the reply is not supported by the
    sources; ``note`` says why, and ``raw`` keeps the model's own words.

    ``timings`` (seconds, from the ``timing`` callback and ``ask``): ``retrieval``, ``llm``
    (all model calls), ``first_token`` (of the first call), ``answer_first_token`` (from
    the start until the answer's first words), ``total``, ``overhead`` (total minus model
    time) and ``tokens_per_s``; plus the counts ``llm_calls`` and ``completion_tokens``.
    """

    question: str
    answer: str
    sources: list[Source] = field(default_factory=list)
    prompts: list[dict] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    timings: dict[str, float] = field(default_factory=dict)
    chain_type: str | None = None
    dropped: list[Source] = field(default_factory=list)
    model: str = ""
    parsed: Any = None
    parse_error: str | None = None
    grounded: bool = True
    note: str = ""
    raw: str = ""
    interrupted: bool = False
    extras: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.answer

    @property
    def cited(self) -> list[Source]:
        return [s for s in self.sources if s.cited]

    @property
    def marks(self) -> str:
        """``[1][3]``: the citation marks of the sources the answer draws on."""
        return "".join(f"[{s.number}]" for s in self.cited)

    def _notes(self) -> list[str]:
        notes = [self.note] if self.note else []
        if self.parse_error:
            notes.append(f"Could not parse the reply as {self.extras.get('format', 'the format asked')}: {self.parse_error}")
        if self.dropped:
            notes.append(f"{len(self.dropped)} retrieved chunk(s) did not fit the context window: " + ", ".join(s.label for s in self.dropped))
        if self.interrupted:
            notes.append("Interrupted: this is what was generated before the stop.")
        return notes

    def view(self):
        """The retrieval view: chunks with scores and sources, the final prompt, citations, timings."""
        from ..widgets import RetrievalWidget

        return RetrievalWidget(self)

    def _unwritten_marks(self) -> str:
        """The citation marks of cited sources the answer does not already carry (a quote ends with its own)."""
        return "".join(f"[{s.number}]" for s in self.cited if f"[{s.number}]" not in self.answer) if self.grounded else ""

    def _repr_markdown_(self) -> str:
        body = self.answer.strip() + (f" {self._unwritten_marks()}" if self._unwritten_marks() else "")
        lines = [body, ""]
        lines += [f"> {n}" for n in self._notes()]
        if self.sources:
            lines += ["", "**Sources**", ""]
            lines += [f"{'**' if s.cited else ''}[{s.number}]{'**' if s.cited else ''} `{s.label}` (score {s.score:.2f})  " for s in self.sources]
        return "\n".join(lines).strip() + "\n"

    def _repr_html_(self) -> str:
        body = escape(self.answer.strip()).replace("\n", "<br>")
        if self._unwritten_marks():
            body += f" <sup>{escape(self._unwritten_marks())}</sup>"
        parts = [f"<div class='llm-magics-answer'><p>{body}</p>"]
        parts += [f"<p style='color:#a15c00'>⚠ {escape(n)}</p>" for n in self._notes()]
        if self.sources:
            items = "".join(
                f"<li value='{s.number}' title='{escape(s.text[:400])}'>{'<b>' if s.cited else ''}<code>{escape(s.label)}</code>{'</b>' if s.cited else ''} "
                f"<span style='color:#888'>score {s.score:.2f}</span></li>"
                for s in self.sources
            )
            parts.append(f"<p><b>Sources</b></p><ol>{items}</ol>")
        return "".join(parts) + "</div>"

    def _repr_pretty_(self, p, cycle):
        p.text(self._repr_markdown_())


class AskInterrupted(KeyboardInterrupt):
    """The kernel was interrupted during ``ask``; ``.answer`` holds what was produced."""

    def __init__(self, answer: Answer):
        super().__init__("interrupted")
        self.answer = answer


@dataclass
class Comparison:
    """Answers of several chain types on the same retrieved chunks, shown side by side."""

    question: str
    answers: dict[str, Answer]

    def __getitem__(self, chain_type: str) -> Answer:
        return self.answers[chain_type]

    def _repr_html_(self) -> str:
        cols = "".join(
            f"<div style='flex:1;min-width:14em;border:1px solid #ddd;padding:6px'><b>{escape(name)}</b>"
            f"<div style='color:#888;font-size:85%'>{a.timings.get('total', 0):.1f}s, {a.usage.extra.get('calls', 0)} model call(s)</div>"
            f"{a._repr_html_()}</div>"
            for name, a in self.answers.items()
        )
        return f"<div style='display:flex;gap:8px;flex-wrap:wrap'>{cols}</div>"

    def _repr_markdown_(self) -> str:
        return "\n\n".join(f"### {name}\n\n{a._repr_markdown_()}" for name, a in self.answers.items())
