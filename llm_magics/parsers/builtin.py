"""Built-in output parsers: ``text``, ``markdown``, ``json``, ``list`` and ``regex``."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from ..errors import UsageError
from ..extension import Options
from ..hookspecs import hookimpl
from .base import OutputParser, OutputParserError


class TextParser(OutputParser):
    """The reply as plain text, stripped."""

    name = "text"

    def parse(self, text: str) -> str:
        return text.strip()


class MarkdownParser(OutputParser):
    """The reply as Markdown text (``Answer`` shows it rendered in a notebook)."""

    name = "markdown"

    def instructions(self) -> str:
        return "Format the answer in Markdown."

    def parse(self, text: str) -> str:
        return text.strip()


class JsonParser(OutputParser):
    """A JSON value, validated against a JSON Schema (dict) or a pydantic model class.

    An invalid reply is sent back to the model with the error, at most ``retries`` times.
    """

    name = "json"
    retries: ClassVar[int] = 2

    class Options(Options):
        model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
        schema_: Any = Field(None, alias="schema", description="A JSON Schema dict or a pydantic BaseModel subclass the reply must match.")
        retries: int = Field(2, ge=0, le=5, description="How often to send an invalid reply back with the error.")

    def __init__(self, **options):
        super().__init__(**options)
        self.schema = self.options.schema_
        self.retries = self.options.retries
        self._model = None
        if isinstance(self.schema, type) and hasattr(self.schema, "model_validate"):
            self._model = self.schema
            self.schema_dict = self.schema.model_json_schema()
        elif isinstance(self.schema, dict) or self.schema is None:
            self.schema_dict = self.schema
            if self.schema is not None:
                import jsonschema

                try:
                    jsonschema.validators.validator_for(self.schema).check_schema(self.schema)
                except jsonschema.SchemaError as e:
                    raise UsageError(f"The JSON Schema is invalid: {e.message}. Fix the schema passed with --schema.") from None
        else:
            raise UsageError(f"A schema must be a JSON Schema dict or a pydantic model class, not {type(self.schema).__name__}.")

    def instructions(self) -> str:
        if self.schema_dict is None:
            return "Reply with only a JSON object, no other text."
        return "Reply with only a JSON object that matches this JSON Schema, no other text:\n" + json.dumps(self.schema_dict, separators=(",", ":"))

    def parse(self, text: str):
        value = _extract_json(text)
        if self._model is not None:
            from pydantic import ValidationError

            try:
                return self._model.model_validate(value)
            except ValidationError as e:
                problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in e.errors())
                raise OutputParserError(f"The JSON does not match the schema: {problems}.") from None
        if self.schema_dict is not None:
            import jsonschema

            validator = jsonschema.validators.validator_for(self.schema_dict)(self.schema_dict)
            errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
            if errors:
                problems = "; ".join(f"{'/'.join(map(str, e.path)) or 'value'}: {e.message}" for e in errors[:5])
                raise OutputParserError(f"The JSON does not match the schema: {problems}.")
        return value


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def _extract_json(text: str):
    """The first JSON value in ``text``: a fenced block, the whole text, or the first {...}/[...]."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    last_error = "no JSON object found"
    for candidate in candidates:
        candidate = candidate.strip()
        for start, ch in enumerate(candidate):
            if ch not in "{[":
                continue
            try:
                value, _ = decoder.raw_decode(candidate[start:])
                return value
            except json.JSONDecodeError as e:
                last_error = f"{e.msg} at line {e.lineno} column {e.colno}"
                break  # the first brace decides; later ones are usually inside it
    raise OutputParserError(f"The reply is not valid JSON ({last_error}). Reply with only a JSON object.")


class ListParser(OutputParser):
    """A list of strings: one item a line (bullets and numbers removed), or comma-separated."""

    name = "list"
    _BULLET = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+")

    def instructions(self) -> str:
        return "Reply with a list, one item per line, each starting with '- '."

    def parse(self, text: str) -> list[str]:
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        if len(lines) == 1 and not self._BULLET.match(lines[0]):
            items = [p.strip() for p in lines[0].split(",")]
        else:
            items = [self._BULLET.sub("", ln).strip() for ln in lines]
        items = [i for i in items if i]
        if not items:
            raise OutputParserError("The reply has no list items. Reply with one item per line, each starting with '- '.")
        return items


class RegexParser(OutputParser):
    """Named groups of a regular expression: ``{group: text}`` (or the whole match)."""

    name = "regex"

    class Options(Options):
        pattern: str = Field(..., description="A Python regular expression, searched in the reply; named groups become keys.")
        flags: str = Field("", description="Letters i, m, s for IGNORECASE, MULTILINE, DOTALL.")

    def __init__(self, **options):
        super().__init__(**options)
        flags = 0
        for letter in self.options.flags:
            try:
                flags |= {"i": re.I, "m": re.M, "s": re.S}[letter]
            except KeyError:
                raise UsageError(f"Unknown regex flag {letter!r}; use i, m or s.") from None
        try:
            self.regex = re.compile(self.options.pattern, flags)
        except re.error as e:
            raise UsageError(f"Bad regular expression {self.options.pattern!r}: {e}.") from None

    def parse(self, text: str):
        m = self.regex.search(text)
        if m is None:
            raise OutputParserError(f"The reply does not match the pattern {self.regex.pattern!r}.")
        return m.groupdict() if self.regex.groupindex else m.group(0)


@hookimpl
def register_output_parsers(register):
    for cls in (TextParser, MarkdownParser, JsonParser, ListParser, RegexParser):
        register(cls)
