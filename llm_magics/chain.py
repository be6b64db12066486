"""``Chain``: a named list of steps (retrieve, prompt, llm, parser, chain) written in YAML.

A chain runs its steps in order over a dict of variables, starting from its inputs.
Each step reads variables and sets one; ``output: NAME`` stores it under another name
too, and the last step's value is the chain's output::

    steps:
      - retrieve: {query: "{{ topic }}", k: 3}     # sets hits, context, sources
      - prompt: "Summarise in one sentence: {{ context }}"   # sets prompt
      - llm: {max_tokens: 48}                      # reads prompt, sets text
      - parser: list                               # reads text, sets parsed
      - chain: {name: translate, inputs: {text: "{{ parsed[0] }}"}}   # another chain

A bare list of steps works too. Templates are Jinja2, rendered in a sandbox.
``%%chain NAME`` defines one in a notebook; ``Chain.define(name, yaml)`` does so in Python.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UsageError

MAX_DEPTH = 8


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output: str | None = Field(None, description="Also store this step's value under this variable name.")


class RetrieveOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field("{{ question }}", description="Template for the search query.")
    k: int | None = Field(None, ge=1, description="How many chunks (default LLMMagics.k).")
    collection: str | None = Field(None, description="Collection to search (default LLMMagics.collection).")


class RetrieveStep(_Step):
    retrieve: RetrieveOptions = Field(default_factory=RetrieveOptions, description="Search the index; sets hits, context and sources.")


class PromptOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str = Field(..., description="Jinja2 template of the user message.")
    system: str | None = Field(None, description="System message (default: none).")


class PromptStep(_Step):
    prompt: Union[str, PromptOptions] = Field(..., description="A template, rendered with the variables; sets prompt.")


class LLMOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="Model name or BACKEND:MODEL (default LLMMagics.model).")
    temperature: float | None = Field(None, description="Sampling temperature (default LLMMagics.temperature).")
    max_tokens: int | None = Field(None, ge=1, description="Most tokens in the reply (default LLMMagics.max_tokens).")
    input: str = Field("prompt", description="Variable holding the user message.")


class LLMStep(_Step):
    llm: LLMOptions | None = Field(None, description="Call the model with the prompt; sets text.")


class ParserOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(..., description="A registered output parser: text, markdown, json, list, regex.")
    input: str = Field("text", description="Variable holding the text to parse.")


class ParserStep(_Step):
    parser: Union[str, ParserOptions] = Field(..., description="Parse the model's text; sets parsed.")


class ChainCallOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., description="The chain to call.")
    inputs: dict[str, Any] | None = Field(None, description="Its inputs (templates); default: all current variables.")


class ChainStep(_Step):
    chain: Union[str, ChainCallOptions] = Field(..., description="Run another named chain; sets its name to its output.")


STEP_TYPES: dict[str, type[_Step]] = {"retrieve": RetrieveStep, "prompt": PromptStep, "llm": LLMStep, "parser": ParserStep, "chain": ChainStep}
Kind = Literal["retrieve", "prompt", "llm", "parser", "chain"]


@dataclass
class ChainRun:
    """The result of ``Chain.run``: ``output`` (the last step's value) and every variable."""

    chain: str
    output: Any
    variables: dict[str, Any]
    prompts: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def sources(self) -> list:
        return self.variables.get("sources", [])

    def __str__(self) -> str:
        return str(self.output)

    def _repr_markdown_(self) -> str:
        out = self.output if isinstance(self.output, str) else f"```\n{self.output!r}\n```"
        lines = [out]
        if self.sources:
            lines += ["", "**Sources**", ""] + [f"[{s.number}] `{s.label}` (score {s.score:.2f})  " for s in self.sources]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):
        p.text(self._repr_markdown_())


class Chain:
    """A named list of validated steps. ``run(**inputs)`` returns a ``ChainRun``."""

    def __init__(self, name: str, steps: list[_Step], description: str = "", source: str = ""):
        if not name or not name.replace("-", "_").isidentifier():
            raise UsageError(f"A chain name must be a word like summarize or qa_v2, got {name!r}.")
        if not steps:
            raise UsageError(f"Chain {name!r} has no steps. Give a YAML list of steps: prompt, retrieve, llm, parser, chain.")
        self.name = name
        self.steps = steps
        self.description = description
        self.source = source

    # -- definition ------------------------------------------------------------
    @classmethod
    def from_yaml(cls, text: str, name: str) -> "Chain":
        """Parse and validate a chain; errors say which step is wrong and how."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise UsageError(f"Chain {name!r} is not valid YAML{where}: {getattr(e, 'problem', e)}. Write a list of steps.") from None
        description = ""
        if isinstance(data, dict):
            unknown = set(data) - {"steps", "description"}
            if unknown:
                raise UsageError(f"Chain {name!r}: unknown key(s) {', '.join(sorted(unknown))}. Use steps: and description:.")
            description = str(data.get("description") or "")
            data = data.get("steps")
        if not isinstance(data, list):
            raise UsageError(f"Chain {name!r} must be a YAML list of steps (- prompt: ..., - llm: ...), or a mapping with steps:.")
        return cls(name, [cls._step(name, i, raw) for i, raw in enumerate(data, 1)], description, text)

    @staticmethod
    def _step(name: str, i: int, raw: Any) -> _Step:
        known = ", ".join(STEP_TYPES)
        if isinstance(raw, str) and raw in STEP_TYPES:
            raw = {raw: None}
        if not isinstance(raw, dict):
            raise UsageError(f"Chain {name!r}, step {i}: expected a mapping like '- llm: {{max_tokens: 48}}', got {raw!r}. Steps: {known}.")
        kinds = [k for k in raw if k in STEP_TYPES]
        if len(kinds) != 1:
            extra = [k for k in raw if k not in STEP_TYPES and k != "output"]
            what = f"unknown step {extra[0]!r}" if extra and not kinds else f"one step kind per item, found {kinds or 'none'}"
            raise UsageError(f"Chain {name!r}, step {i}: {what}. Steps: {known}.")
        kind = kinds[0]
        if raw[kind] is None and kind in ("retrieve",):
            raw = {**raw, kind: {}}
        try:
            step = STEP_TYPES[kind].model_validate(raw)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()[:3])
            raise UsageError(f"Chain {name!r}, step {i} ({kind}): {problems}.") from None
        for template in _templates(step):
            from .qa.chain_types.prompts import _compile

            try:
                _compile(template)
            except Exception as e:  # jinja2.TemplateSyntaxError
                raise UsageError(f"Chain {name!r}, step {i} ({kind}): bad template {template!r}: {e}.") from None
        return step

    @classmethod
    def define(cls, name: str, text: str, save: bool = True) -> "Chain":
        """Parse ``text`` and register the chain as ``name``; ``save`` also writes its YAML to
        ``LLMMagics.chains_path``, where a new kernel and ``llm-magics chain run NAME`` find it."""
        chain = cls.from_yaml(text, name)
        register(chain)
        if save:
            _save(chain)
        return chain

    def kind(self, step: _Step) -> Kind:
        return next(k for k, t in STEP_TYPES.items() if isinstance(step, t))

    def describe(self) -> str:
        """One line per step: ``1. retrieve k=3`` ..."""
        out = []
        for i, step in enumerate(self.steps, 1):
            kind = self.kind(step)
            value = getattr(step, kind)
            if isinstance(value, BaseModel):
                value = ", ".join(f"{k}={v!r}" for k, v in value.model_dump(exclude_defaults=True).items())
            out.append(f"{i}. {kind}" + (f" {value}" if value else "") + (f" -> {step.output}" if step.output else ""))
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"<Chain {self.name!r}: {' → '.join(self.kind(s) for s in self.steps)}>"

    def _repr_markdown_(self) -> str:
        head = f"**Chain `{self.name}`**" + (f": {self.description}" if self.description else "")
        return head + "\n\n```yaml\n" + (self.source.strip() or self.describe()) + "\n```\n"

    # -- running ---------------------------------------------------------------
    def run(self, **inputs) -> ChainRun:
        """Run with ``inputs`` as the starting variables."""
        return self.invoke(inputs)

    def invoke(self, inputs: dict[str, Any], *, index=None, callbacks=None, stream_to: Callable[[str], None] | None = None, _depth: int = 0) -> ChainRun:
        """Run with options: an ``index`` for retrieve steps, callbacks, and streaming of the last llm step."""
        from .qa.callbacks import CallbackManager

        if _depth > MAX_DEPTH:
            raise UsageError(f"Chain {self.name!r} calls chains more than {MAX_DEPTH} deep; check for a chain that calls itself.")
        manager = callbacks if isinstance(callbacks, CallbackManager) else CallbackManager.for_run(callbacks)
        start = time.perf_counter()
        variables: dict[str, Any] = dict(inputs)
        prompts: list[dict] = []
        last_llm = max((i for i, s in enumerate(self.steps) if isinstance(s, LLMStep)), default=-1)
        manager.on_chain_start(name=self.name, inputs=dict(inputs))
        value: Any = None
        state: dict[str, Any] = {"system": None, "llm": None, "messages": None}
        for i, step in enumerate(self.steps):
            kind = self.kind(step)
            value = getattr(self, f"_{kind}")(getattr(step, kind), variables, state, prompts, manager, index, stream_to if i == last_llm else None, _depth, i + 1)
            if step.output:
                variables[step.output] = value
        manager.on_chain_end(name=self.name, outputs={"output": value})
        return ChainRun(self.name, value, variables, prompts, {"total": time.perf_counter() - start})

    def _render(self, template: str, variables: dict, i: int) -> str:
        from .qa.chain_types.prompts import render_string

        return render_string(template, variables, what=f"chain {self.name!r} step {i}")

    def _retrieve(self, opts: RetrieveOptions, variables, state, prompts, manager, index, stream_to, depth, i):
        from .qa.answer import Source
        from .qa.pipeline import retrieve

        query = self._render(opts.query, variables, i)
        hits = retrieve(query, index, collection=opts.collection, k=opts.k, callbacks=manager)
        variables["hits"] = hits
        variables["sources"] = [Source.from_hit(n, h) for n, h in enumerate(hits, 1)]
        variables["context"] = "\n\n".join(f"[{n}] {h.text}" for n, h in enumerate(hits, 1))
        return hits

    def _prompt(self, opts, variables, state, prompts, manager, index, stream_to, depth, i):
        template, system = (opts, None) if isinstance(opts, str) else (opts.template, opts.system)
        state["system"] = system
        variables["prompt"] = self._render(template, variables, i)
        return variables["prompt"]

    def _llm(self, opts: LLMOptions | None, variables, state, prompts, manager, index, stream_to, depth, i):
        from . import backends, config
        from .backends.base import GenerationParams
        from .qa.chain_types import LLM

        opts = opts or LLMOptions()
        if opts.input not in variables:
            raise UsageError(f"Chain {self.name!r}, step {i} (llm): no variable {opts.input!r} yet. Put a prompt step before it, or pass it as an input.")
        s = config.settings()
        params = GenerationParams(
            temperature=s.temperature if opts.temperature is None else opts.temperature,
            max_tokens=s.max_tokens if opts.max_tokens is None else opts.max_tokens,
        )
        llm = LLM(backends.get_model(opts.model), params, manager, stream_to, system=state["system"] or "")
        text = llm.generate(str(variables[opts.input]), step=f"{self.name}.{i}", final=True)
        prompts.extend(llm.prompts)
        state["llm"], state["messages"] = llm, llm.prompts[-1]["messages"] + [{"role": "assistant", "content": text}]
        variables["text"] = text
        return text

    def _parser(self, opts, variables, state, prompts, manager, index, stream_to, depth, i):
        from .qa.chain_types import prompts as templates
        from .qa.parsers import OutputParserError, get_parser

        if isinstance(opts, str):
            opts = ParserOptions(name=opts)
        parser = get_parser(opts.name, **(opts.model_extra or {}))
        text = str(variables.get(opts.input, ""))
        llm = state["llm"]
        for attempt in range(parser.retries + 1):
            try:
                variables["parsed"] = value = parser.parse(text)
                return value
            except OutputParserError as e:
                if llm is None or attempt == parser.retries:
                    raise UsageError(f"Chain {self.name!r}, step {i} (parser {parser.name}): {e}") from None
                retry = templates.render("retry", error=str(e), instructions=parser.instructions())
                messages = state["messages"] + [{"role": "user", "content": retry}]
                text = llm.chat(messages, step=f"{self.name}.{i} retry {attempt + 1}")
                prompts.append(llm.prompts[-1])
                state["messages"] = messages + [{"role": "assistant", "content": text}]

    def _chain(self, opts, variables, state, prompts, manager, index, stream_to, depth, i):
        if isinstance(opts, str):
            opts = ChainCallOptions(name=opts)
        other = get(opts.name)
        inputs = dict(variables) if opts.inputs is None else {k: self._render(v, variables, i) if isinstance(v, str) else v for k, v in opts.inputs.items()}
        run = other.invoke(inputs, index=index, callbacks=manager, _depth=depth + 1)
        prompts.extend(run.prompts)
        variables[other.name] = run.output
        return run.output


def _templates(step: _Step) -> list[str]:
    if isinstance(step, PromptStep):
        return [step.prompt if isinstance(step.prompt, str) else step.prompt.template]
    if isinstance(step, RetrieveStep):
        return [step.retrieve.query]
    if isinstance(step, ChainStep) and not isinstance(step.chain, str) and step.chain.inputs:
        return [v for v in step.chain.inputs.values() if isinstance(v, str)]
    return []


# -- the session's named chains ------------------------------------------------
_chains: dict[str, Chain] = {}
_lock = threading.Lock()


def register(chain: Chain) -> None:
    with _lock:
        _chains[chain.name] = chain


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # also a safe file name


def _saved(name: str) -> Path:
    from . import config

    if not _NAME.match(name):
        raise UsageError(f"Chain names use letters, digits, '_', '-' and '.', starting with a letter or digit (got {name!r}).")
    return Path(config.settings().chains_path) / f"{name}.yaml"


def _save(chain: Chain) -> None:
    path, tmp = _saved(chain.name), _saved(chain.name).with_suffix(".yaml.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(chain.source or chain.describe(), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash never leaves half a chain


def get(name: str) -> Chain:
    """The chain called ``name``: defined in this session, else saved in ``LLMMagics.chains_path``."""
    with _lock:
        if name in _chains:
            return _chains[name]
    path = _saved(name)
    if path.is_file():
        chain = Chain.from_yaml(path.read_text(encoding="utf-8"), name)
        register(chain)
        return chain
    known = ", ".join(names()) or "(none yet)"
    raise UsageError(f"No chain {name!r}. Known: {known}. Define it with %%chain {name} and a YAML list of steps.")


def names() -> list[str]:
    from . import config

    folder = Path(config.settings().chains_path)
    saved = {p.stem for p in folder.glob("*.yaml")} if folder.is_dir() else set()
    with _lock:
        return sorted(set(_chains) | saved)


def remove(name: str) -> None:
    with _lock:
        _chains.pop(name, None)
    _saved(name).unlink(missing_ok=True)


def clear() -> None:  # this session's chains; saved YAML files stay
    with _lock:
        _chains.clear()


def listing():
    from .catalog import Listing

    rows = [[c.name, " → ".join(c.kind(s) for s in c.steps), c.description] for c in (get(n) for n in names())]
    return Listing("Chains (%chain show NAME)", ["name", "steps", "description"], rows)
