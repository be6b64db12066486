"""``Agent``: the one owner of the step loop (think → act → observe, until an answer or a limit).

    Agent(tools=["calculator", "sql"], model="smollm2", db="sqlite:///planets.db").run("...")

Each step asks the policy (ReAct, or native tool calls on an OpenAI-compatible server) for
the next move, checks it (the format, the tool's name, its arguments against the schema),
runs the tool, and hands the observation back. Nothing a model or tool does ends the run
by surprise: a malformed step, an unknown tool, bad arguments or a tool that raises
becomes an observation the model reads next. The run ends with a final answer, or at the
step budget (``max_steps``), the time budget (``max_time``) or an interrupt, which keeps
the partial trace (``AgentInterrupted.result``).

Every move goes through the callbacks: ``on_llm_start/new_token/end`` for the model and
LangChain's agent events (``on_agent_action``, ``on_tool_start``, ``on_tool_end``,
``on_tool_error``, ``on_agent_finish``), plus ``on_agent_step`` with the whole ``Step``.
"""

from __future__ import annotations

import logging
import time

from ..errors import UsageError
from .tools import Tool, ToolArgumentsError, ToolResult, get_tools
from .trace import AgentResult, JsonlTraceHandler, Step

log = logging.getLogger(__name__)

#: Longest observation handed back to the model, in characters.
MAX_OBSERVATION = 1500

#: The user's turn before the answer-only step at the step budget (early_stopping_method="generate"),
#: LangChain's "I now need to return a final answer based on the previous steps" as a chat message.
LAST_STEP = "You have no steps left. Give your Final Answer now, from the observations above."


class AgentInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``.result`` holds the steps done so far."""

    def __init__(self, result: AgentResult):
        super().__init__("agent interrupted")
        self.result = result


class Agent:
    """Answers a task with tools, step by step. ``run(task)`` returns an ``AgentResult``.

    tools: names (``"calculator,sql,search"``), ``Tool`` objects or typed functions.
    model: a model name (``smollm2``, a local path, ``openai:MODEL``) or a Backend.
    mode: ``"react"``, ``"native"`` (OpenAI ``tools``/``tool_calls``), or ``"auto"``
        (native for the openai backend, ReAct otherwise).
    constrained: on the local runtime, constrain each ReAct step to the tools' grammar
        (default: on for local models).
    db / collection / index: what the ``sql`` and ``search`` tools work on.
    memory: carry earlier tasks and answers of the same ``session`` into the prompt.
    trace: a path; every event is appended there as JSON lines (``trace.replay`` reads it).
    tool_choice: what the first step must do, in OpenAI's terms: ``"required"`` (the default: call
        some tool, so the answer rests on an observation rather than the model's memory), a tool's
        name or ``{"type": "function", "function": {"name": ...}}`` (call that tool), or ``"auto"``
        (the model may answer at once). Later steps are free. ReAct on our runtime enforces it in
        the step grammar; native mode sends a named tool as ``tool_choice`` (and ``"required"`` with
        one tool as that tool's name); and every mode turns a first step that breaks it into an
        observation saying what to do, as servers differ in what they honour.
    early_stopping_method: what happens when the step budget runs out, as in LangChain's
        ``AgentExecutor``: ``"force"`` stops with no answer; ``"generate"`` (the default) asks the
        model once more, with no tool, for its final answer from the observations so far (on our
        runtime the grammar allows nothing else). ``finish_reason`` stays ``"max_steps"`` either way.
    """

    def __init__(self, tools=("calculator",), model=None, *, mode: str = "auto", constrained: bool | None = None,
                 max_steps: int = 6, max_time: float | None = None, max_tokens: int = 200, db: str | None = None,
                 collection: str | None = None, index=None, callbacks=None, memory: bool = False,
                 session: str | None = None, trace=None, tool_choice="required", early_stopping_method: str = "generate"):  # fmt: skip
        from ..backends import Backend, get_model

        if max_steps < 1:
            raise UsageError(f"max_steps must be at least 1, got {max_steps}.")
        if early_stopping_method not in ("force", "generate"):
            raise UsageError(f"early_stopping_method must be 'force' or 'generate', not {early_stopping_method!r}.")
        self.early_stopping_method = early_stopping_method
        self.backend = model if isinstance(model, Backend) else get_model(model)
        if not isinstance(model, Backend) and self.backend.name == "local":
            self.backend.options.capture_attention = False  # the fast path: an agent's steps are not drawn by %attnviz
        self.tools: list[Tool] = get_tools(tools, db=db, collection=collection, index=index)
        if not self.tools:
            raise UsageError("An agent needs at least one tool: --tools calculator,sql,search.")
        self.first_tool = first_tool(tool_choice, self.tools)  # None: free; "": any tool; else that tool
        if mode == "auto":
            mode = "native" if self.backend.name == "openai" and not constrained else "react"
        if mode == "native":
            from .native import NativePolicy

            self.policy = NativePolicy(self.backend, self.tools, max_tokens=max_tokens, first_tool=self.first_tool)
        elif mode == "react":
            from .react import ReActPolicy

            self.policy = ReActPolicy(self.backend, self.tools, constrained, max_tokens=max_tokens, first_tool=self.first_tool)
        else:
            raise UsageError(f"No agent mode {mode!r}. Known: auto, react, native.")
        self.max_steps, self.max_time = max_steps, max_time
        self.callbacks, self.memory, self.session, self.trace = list(callbacks or []), memory, session, trace

    @property
    def tool_map(self) -> dict[str, Tool]:
        return {t.name: t for t in self.tools}

    # -- the loop ------------------------------------------------------------

    def run(self, task: str) -> AgentResult:
        from ..qa.callbacks import CallbackManager

        if not task.strip():
            raise UsageError("Give the agent a task: the cell body of %%agent, or Agent(...).run('...').")
        manager = CallbackManager.for_run([*self.callbacks, *([JsonlTraceHandler(self.trace)] if self.trace else [])])
        memory = self._memory()
        history = memory.messages(self.backend) if memory is not None else []
        result = AgentResult(task, model=self.backend.model_id, mode=self.policy.mode, tools=[t.name for t in self.tools], run_id=manager.run_id)
        started = time.perf_counter()
        deadline = started + self.max_time if self.max_time else None
        out_of_time = lambda: deadline is not None and time.perf_counter() > deadline  # noqa: E731
        messages = self.policy.start(task, history)
        self._emit(manager, "on_agent_start", result=result, task=task)
        try:
            answer_only = False
            for index in range(1, self.max_steps + 1):
                if out_of_time():
                    result.finish_reason = "time_limit"
                    break
                step = self._step(index, messages, manager, out_of_time, result, answer_only=answer_only)
                result.steps.append(step)
                self._emit(manager, "on_agent_step", step=step)
                if step.kind == "final":
                    result.answer, result.finish_reason = step.answer or "", "final_answer"
                    break
                if out_of_time():
                    result.finish_reason = "time_limit"
                    break
                # a call repeated word for word: its result is already there, so the next step answers from it
                answer_only = step.repeat_of is not None and self.early_stopping_method == "generate"
            else:
                result.finish_reason = "max_steps"
                if self.early_stopping_method == "generate" and not out_of_time():
                    messages.append({"role": "user", "content": LAST_STEP})
                    step = self._step(self.max_steps + 1, messages, manager, out_of_time, result, answer_only=True)
                    result.steps.append(step)
                    self._emit(manager, "on_agent_step", step=step)
                    result.answer = step.answer or ""
        except KeyboardInterrupt:
            result.finish_reason = "interrupted"
            result.seconds = time.perf_counter() - started
            self._emit(manager, "on_agent_finish", result=result, finish=result)
            raise AgentInterrupted(result) from None
        result.seconds = time.perf_counter() - started
        if memory is not None and result.finish_reason == "final_answer":
            memory.save(task, result.answer, self.backend)
        self._emit(manager, "on_agent_finish", result=result, finish=result)
        return result

    def _step(self, index: int, messages: list[dict], manager, out_of_time, result: AgentResult, answer_only: bool = False) -> Step:
        """One turn; ``answer_only``: the model may only answer (after the step budget, or a repeated call)."""
        from ..backends import GenerationParams, Usage

        last = answer_only
        prompt = [dict(m) for m in messages]
        name = f"step {index}"
        manager.on_llm_start(model=self.backend.model_id, messages=prompt, params=GenerationParams(max_tokens=self.policy.max_tokens), step=name)
        t0 = time.perf_counter()
        try:
            raw, parsed, tokens = self.policy.decide(messages, lambda piece: manager.on_llm_new_token(token=piece, step=name), out_of_time, final=last)
        except Exception as e:
            manager.on_llm_error(error=e, step=name)
            raise
        usage = Usage(completion_tokens=tokens, finish_reason="stop")
        manager.on_llm_end(text=raw, usage=usage, step=name)
        step = Step(index, thought=parsed.thought, prompt=prompt, raw=raw, tokens=tokens, constrained=self.policy.mode == "react+grammar")
        wanted = self.first_tool if index == 1 else None
        if wanted is not None and parsed.error is None and (parsed.tool is None or wanted not in ("", parsed.tool)):
            step.kind, step.error = "rejected", f"tool_choice: the first step must call {repr(wanted) if wanted else 'a tool'}"
            step.answer, step.tool, step.tool_input = parsed.answer, parsed.tool, parsed.tool_input
            names = wanted or ", ".join(self.tool_map)
            step.observation = f"Call a tool first ({names}), then answer from what it returns, not from memory."
        elif last and parsed.error is not None and parsed.tool is None and raw.strip():
            step.kind, step.answer = "final", raw.strip()  # the whole reply is the answer, as in LangChain's "generate"
        elif parsed.error is not None:
            step.kind, step.error = "invalid", parsed.error
            step.tool_input = raw
            step.observation = f"Invalid format: {parsed.error}."
        elif parsed.answer is not None:
            step.kind, step.answer = "final", parsed.answer
        elif last:  # a call where only an answer may come (a model the grammar cannot hold): no answer
            step.kind, step.error = "invalid", "a tool call where only a final answer may come (at the step budget, or after a repeated call)"
        else:
            self._act(step, parsed, manager, result)
        step.seconds = time.perf_counter() - t0
        if step.kind != "final":
            self.policy.record(messages, raw, parsed, step.observation)
        return step

    def _act(self, step: Step, parsed, manager, result: AgentResult) -> None:
        """Check the call, run the tool, and put what came back (or what went wrong) in the step."""
        from .react import coerce_arguments

        step.tool, step.tool_input = parsed.tool, parsed.tool_input
        tool = self.tool_map.get(parsed.tool or "")
        if tool is None:
            step.kind, step.error = "invalid", f"unknown tool {parsed.tool!r}"
            step.observation = f"There is no tool {parsed.tool!r}. Use one of: {', '.join(self.tool_map)}."
            return
        try:
            arguments = tool.validate(coerce_arguments(tool, parsed.tool_input))
        except ToolArgumentsError as e:
            step.kind, step.error = "invalid", f"bad arguments: {e}"
            example = {k: "..." for k in tool.parameters.get("properties", {})}
            step.observation = f"Invalid arguments for {tool.name}: {e}. Give a JSON object like {example}."
            return
        step.tool_input = arguments
        earlier = next((s for s in result.steps if s.kind == "action" and s.tool == tool.name and s.tool_input == arguments and not s.error), None)
        if earlier is not None:  # the result is already in the model's context: point at it rather than run again
            step.repeat_of = earlier.index
            step.observation = (f"You already called {tool.name} with these arguments in step {earlier.index}; its result is above. "
                                "Give your Final Answer from it, or call a tool with other arguments.")  # fmt: skip
            return
        self._emit(manager, "on_agent_action", action={"tool": tool.name, "tool_input": arguments, "log": step.raw}, step=step)
        self._emit(manager, "on_tool_start", serialized={"name": tool.name, "description": tool.description}, input_str=str(arguments), inputs=arguments)
        try:
            output = tool(**arguments)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - the model reads the error and may try again
            step.error = f"{type(e).__name__}: {e}"
            step.observation = f"Error: {step.error}"
            self._emit(manager, "on_tool_error", error=e, name=tool.name)
            return
        step.observation = self._observation(output, step, result)
        self._emit(manager, "on_tool_end", output=step.observation, name=tool.name)

    def _observation(self, output: ToolResult, step: Step, result: AgentResult) -> str:
        """The tool's text; passages get run-wide numbers [n] so the answer can cite them."""
        if not output.sources:
            text = output.content
        else:
            lines = []
            for hit in output.sources:
                meta = getattr(hit, "metadata", None) or {}
                source = {"number": len(result.sources) + 1, "text": getattr(hit, "text", str(hit)), "source": meta.get("source", "?")}
                if meta.get("page") is not None:
                    source["page"] = meta["page"]
                result.sources.append(source)
                step.sources.append(source)
                lines.append(f"[{source['number']}] {source['text'].strip()} (source: {source['source']})")
            text = "\n".join(lines)
        return text if len(text) <= MAX_OBSERVATION else text[:MAX_OBSERVATION] + " …(cut)"

    # -- helpers -------------------------------------------------------------

    def _memory(self):
        if not self.memory:
            return None
        from ..qa import session

        return session.current().memory(memory_key(self.session))

    @staticmethod
    def _emit(manager, event: str, **kwargs) -> None:
        """An agent event to every handler that has a method for it; a failing handler is recorded, not raised."""
        kwargs.setdefault("run_id", manager.run_id)
        for handler in manager.handlers:
            method = getattr(handler, event, None)
            if method is None:
                continue
            try:
                method(**kwargs)
            except Exception as e:  # noqa: BLE001
                name = getattr(handler, "name", type(handler).__name__)
                manager.errors.append((name, event, f"{type(e).__name__}: {e}"))
                log.warning("callback %s failed in %s: %s", name, event, e)


def first_tool(tool_choice, tools: list[Tool]) -> str | None:
    """``tool_choice`` as the first step's rule: None (free), "" (any tool) or a tool's name."""
    if tool_choice in (None, "auto", "none"):
        return None
    if tool_choice == "required":
        return ""
    name = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else tool_choice
    if not isinstance(name, str) or name not in {t.name for t in tools}:
        raise UsageError(
            f"tool_choice {tool_choice!r} names no tool of this agent ({', '.join(t.name for t in tools)}). "
            "Use 'required', 'auto', or one of those names."
        )
    return name


def memory_key(session: str | None) -> str:
    """The conversation-memory key of an agent session (apart from %%ask's sessions)."""
    return f"agent:{session or 'default'}"


def run_agent(task: str, tools=("calculator",), model=None, **options) -> AgentResult:
    """``Agent(tools, model, **options).run(task)`` in one call."""
    return Agent(tools, model, **options).run(task)


__all__ = ["Agent", "AgentInterrupted", "run_agent"]
