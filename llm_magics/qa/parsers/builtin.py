"""Built-in output parsers: ``text``, ``markdown``, ``json``, ``quote``, ``list`` and ``regex``."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from ...errors import UsageError
from ...extension import Options
from ...hookspecs import hookimpl
from .base import OutputParser, OutputParserError


class TextParser(OutputParser):
    """The reply as plain text, stripped."""

    name = "text"
    prose = True

    def parse(self, text: str) -> str:
        return text.strip()


class MarkdownParser(OutputParser):
    """The reply as Markdown text (``Answer`` shows it rendered in a notebook)."""

    name = "markdown"
    prose = True

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
        # Small models copy an example far better than they follow a schema.
        if self.schema_dict is None:
            return "Reply with only a JSON object, no other text."
        example = json.dumps(_example(self.schema_dict, self.schema_dict))
        required = self.schema_dict.get("required") or []
        need = f" It must have the keys {', '.join(required)}." if required else ""
        return f"Reply with only a JSON object shaped like {example}, no other text.{need}"

    def parse(self, text: str):
        values = _json_values(text)
        if not values:
            start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
            if start < 0:
                raise OutputParserError("The reply has no JSON object. Reply with only a JSON object.")
            try:
                json.loads(text[start:])
            except json.JSONDecodeError as e:
                raise OutputParserError(f"The reply is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}). Reply with only a JSON object.") from None
        first_error = None
        for value in values:  # a small model may echo an example or schema before its answer
            try:
                return self._validate(value)
            except OutputParserError as e:
                first_error = first_error or e
        raise first_error

    def _validate(self, value):
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


def _example(schema: dict, root: dict, depth: int = 0):
    """A value shaped like ``schema`` (placeholders), to show a small model the form wanted."""
    if depth > 4:
        return None
    ref = schema.get("$ref", "")
    if ref.startswith("#/"):
        target = root
        for part in ref[2:].split("/"):
            target = target.get(part, {})
        return _example(target, root, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _example(schema[key][0], root, depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        return {k: _example(v, root, depth + 1) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [_example(schema.get("items") or {}, root, depth + 1)]
    return {"string": "...", "integer": 0, "number": 0.0, "boolean": True, "null": None}.get(kind, "...")


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def _json_values(text: str) -> list:
    """Every top-level JSON object or array in ``text``, fenced blocks first."""
    decoder = json.JSONDecoder()
    values = []
    for candidate in [m.group(1) for m in _FENCE.finditer(text)] + [text]:
        pos = 0
        while True:
            starts = [i for i in (candidate.find("{", pos), candidate.find("[", pos)) if i >= 0]
            if not starts:
                break
            start = min(starts)
            try:
                value, end = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError:
                pos = start + 1
                continue
            values.append(value)
            pos = end
    return values


class QuoteParser(TextParser):
    """The sentence of the passages that says what the model answered, with its number:
    ``New members receive their access badge from Marta Ruiz, the lab manager, in room B214. [1]``.

    ``ask`` does the quoting (``qa/quote.py``) once the ``stuff`` chain has replied; the prompt is the usual one.
    """

    name = "quote"


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
    for cls in (TextParser, MarkdownParser, JsonParser, QuoteParser, ListParser, RegexParser):
        register(cls)
