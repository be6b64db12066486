"""The output-parser extension point: instructions for the prompt, and ``parse``."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from ...errors import LLMMagicsError
from ...extension import Extension


class OutputParserError(LLMMagicsError):
    """The model's text does not have the expected form; the message says what is wrong.

    ``ask`` sends the message back to the model and retries (a bounded number of times).
    """


class OutputParser(Extension):
    """Parses a model reply. Subclasses set ``name`` and implement ``parse``.

    ``instructions()`` is appended to the question so the model knows the form wanted;
    ``retries`` bounds how often an invalid reply is sent back with the error.
    """

    kind: ClassVar[str] = "output_parser"
    retries: ClassVar[int] = 0
    #: The reply is prose about the sources, checked against them (grounding, cited sources) as text is;
    #: False: a structured value, read as a whole.
    prose: ClassVar[bool] = False

    def instructions(self) -> str:
        """Format instructions for the prompt ('' for none)."""
        return ""

    @abstractmethod
    def parse(self, text: str) -> Any:
        """The value in ``text``; raises ``OutputParserError`` saying what is wrong."""


def get_parser(name: str | OutputParser | None, **options) -> OutputParser:
    """A parser instance by registered name (``--format NAME``), or the instance given."""
    from ... import registry

    if isinstance(name, OutputParser):
        return name
    return registry.get("output_parser", name or "text")(**options)
