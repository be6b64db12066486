"""The small base every extension point shares: a name, a description, typed options."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import UsageError


class Options(BaseModel):
    """Options of an extension. Subclasses add fields, each with a description."""

    model_config = ConfigDict(extra="forbid")


class Extension:
    """A named, pluggable thing: a loader, splitter, embedder, store or backend.

    Subclasses set ``name`` (and optionally ``description``) and may define a nested
    ``Options`` model; ``__init__(**options)`` validates them into ``self.options``.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    kind: ClassVar[str] = "extension"
    Options: ClassVar[type[Options]] = Options

    def __init__(self, **options):
        self.options = self.parse_options(options)

    @classmethod
    def parse_options(cls, options: dict) -> Options:
        try:
            return cls.Options(**options)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}" for err in e.errors()
            )
            fields = ", ".join(cls.Options.model_fields) or "none"
            raise UsageError(f"Bad options for {cls.kind} {cls.name!r}: {problems}. Valid options: {fields}.") from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
