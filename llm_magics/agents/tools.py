"""Tools an agent can call: a name, a description and a JSON Schema of the arguments.

    @tool
    def word_count(text: str) -> int:
        "Count the words in a text."
        return len(text.split())

``@tool`` builds the schema from the type hints (through pydantic) and registers the
function for this session, so ``%%agent --tools word_count`` finds it. Plugins provide tools
through the ``register_tools`` hook; the built-ins (``calculator``, ``sql``, ``search``) are
registered the same way (``llm_magics.agents.builtin``).

A tool that needs a setting (``sql`` a database URL, ``search`` a collection) overrides
``bind(**context)`` to return a configured copy; ``Agent`` binds every tool before a run.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ..errors import UsageError


class ToolArgumentsError(ValueError):
    """The model's arguments do not match the tool's schema (sent back as an observation)."""


@dataclass
class ToolResult:
    """What a tool returns: text for the model, and the passages it used (for citations)."""

    content: str
    sources: list = field(default_factory=list)  # Hit-like objects: .text, .metadata["source"]

    def __str__(self) -> str:
        return self.content


@dataclass
class Tool:
    """A callable the model may use: ``tool(**arguments) -> ToolResult``.

    ``parameters`` is a JSON Schema of type object (OpenAI's ``function.parameters``).
    ``args_model`` (a pydantic model) validates and converts the arguments when given;
    otherwise they are checked against ``parameters`` with ``jsonschema``.
    """

    name: str
    description: str
    parameters: dict
    func: Callable[..., Any] | None = None
    args_model: Any = None
    context: dict = field(default_factory=dict)  # what bind() was given

    # -- configuring -------------------------------------------------------

    def bind(self, **context) -> "Tool":
        """A copy configured for one run (``db=``, ``index=``, ``collection=``); plain tools ignore it."""
        return self

    # -- calling -----------------------------------------------------------

    def validate(self, arguments: Any) -> dict:
        """The arguments checked against the schema; ToolArgumentsError says what is wrong."""
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as e:
                raise ToolArgumentsError(f"arguments are not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(arguments, dict):
            raise ToolArgumentsError(f"arguments must be a JSON object, got {type(arguments).__name__}")
        if self.args_model is not None:
            from pydantic import ValidationError

            try:
                return dict(self.args_model.model_validate(arguments))
            except ValidationError as e:
                problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'arguments'}: {err['msg']}" for err in e.errors())
                raise ToolArgumentsError(problems) from None
        import jsonschema

        errors = list(jsonschema.Draft202012Validator(self.parameters).iter_errors(arguments))
        if errors:
            raise ToolArgumentsError("; ".join(f"{'/'.join(map(str, e.path)) or 'arguments'}: {e.message}" for e in errors[:3]))
        return arguments

    def __call__(self, **arguments) -> ToolResult:
        if self.func is None:
            raise NotImplementedError(f"tool {self.name!r} has no function")
        result = self.func(**arguments)
        return result if isinstance(result, ToolResult) else ToolResult(_as_text(result))

    def openai_schema(self) -> dict:
        """The tool as OpenAI's ``tools`` entry."""
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}

    def signature(self) -> str:
        """``name(arg: type, ...)`` for prompts."""
        props = self.parameters.get("properties", {})
        args = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in props.items())
        return f"{self.name}({args})"

    def __repr__(self) -> str:
        return f"<Tool {self.signature()}>"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def schema_of(func: Callable) -> tuple[dict, Any]:
    """(JSON Schema, pydantic model) of a function's arguments, from its type hints."""
    from pydantic import create_model

    fields = {}
    for name, p in inspect.signature(func).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = p.annotation if p.annotation is not inspect.Parameter.empty else Any
        fields[name] = (annotation, ... if p.default is inspect.Parameter.empty else p.default)
    model = create_model(f"{func.__name__}_arguments", **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema, model


def from_function(func: Callable, name: str | None = None, description: str | None = None, args_model: Any = None) -> Tool:
    """A Tool from a typed function, or from a function taking the fields of ``args_model`` (pydantic)."""
    if args_model is not None:
        schema = args_model.model_json_schema()
        schema.pop("title", None)
    else:
        schema, args_model = schema_of(func)
    doc = description or inspect.getdoc(func) or ""
    if not doc:
        raise UsageError(f"Tool {func.__name__!r} needs a description: give the function a docstring, or @tool(description=...).")
    return Tool(name or func.__name__, doc.strip().split("\n\n")[0], schema, func, args_model)


#: Tools registered in this session with ``@tool`` (the built-in plugin hands them to the registry).
session_tools: dict[str, Tool] = {}


def tool(func: Callable | None = None, *, name: str | None = None, description: str | None = None, args_model: Any = None):
    """Register a notebook function as a tool: ``@tool`` or ``@tool(name=..., args_model=Model)``.

    Returns the ``Tool`` (still callable: ``word_count(text="a b")``).
    """

    def wrap(f: Callable) -> Tool:
        t = from_function(f, name, description, args_model)
        session_tools[t.name] = t
        return t

    return wrap(func) if func is not None else wrap


# ─── the registry of tools ─────────────────────────────────────────────────────


def available() -> dict[str, Tool]:
    """Every registered tool by name: plugins' ``register_tools`` (built-ins first), then ``@tool``s."""
    from .. import registry

    def make(plugin: str, obj, aliases=()):
        if callable(obj) and not isinstance(obj, Tool):
            obj = from_function(obj)
        if not isinstance(obj, Tool):
            raise TypeError(f"register_tools: {obj!r} is not a Tool or a function")
        return registry.Entry("tool", obj.name, obj, plugin, tuple(aliases), obj.description)

    return {name: entry.obj for name, entry in registry.collect("register_tools", make).items()}


def get_tools(names: "str | list", **context) -> list[Tool]:
    """Tools by name (``"calculator,sql"`` or a list of names and Tool objects), bound to ``context``."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    known = None
    tools: list[Tool] = []
    for item in names:
        if isinstance(item, str):
            known = known if known is not None else available()
            if item not in known:
                from ..errors import unknown

                raise unknown("tool", item, known, "Pass --tools with these names, or define one with @tool.")
            item = known[item]
        elif callable(item) and not isinstance(item, Tool):
            item = from_function(item)
        tools.append(item.bind(**context))
    if len({t.name for t in tools}) != len(tools):
        raise UsageError(f"Two tools share a name: {', '.join(t.name for t in tools)}. Give each a distinct name.")
    return tools


def with_context(t: Tool, **context) -> Tool:
    """A copy of ``t`` that remembers ``context`` (for bind())."""
    return replace(t, context={**t.context, **context})
