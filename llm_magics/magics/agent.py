"""``%%agent``: the cell is the task; thoughts, tool calls, observations and the answer stream in."""

from __future__ import annotations

from IPython.core.magic import Magics, cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from .. import errors
from ._util import bind, split_words, user_errors


def _live_view(stream):
    """A callback handler that writes each step into the cell as it happens."""
    from ..qa.callbacks import CallbackHandler

    class AgentStream(CallbackHandler):
        name = "agent_stream"

        def on_llm_start(self, *, step, **kw):
            stream.step(f"{step}: thinking…")
            stream(f"\n\n**{step}**\n\n```text\n")

        def on_llm_new_token(self, *, token, **kw):
            stream(token)

        def on_llm_end(self, **kw):
            stream("\n```\n")

        def on_agent_step(self, *, step, **kw):
            if step.kind == "action":
                stream(f"\n→ `{step.tool}({step.tool_input})`\n\n**Observation:** {_quote(step.observation)}\n")
            elif step.kind in ("invalid", "rejected"):
                stream(f"\n⚠ {step.error}. **Observation:** {_quote(step.observation)}\n")

        def on_agent_finish(self, *, result, **kw):
            stream.show()

    return AgentStream()


def _quote(text: str | None) -> str:
    text = (text or "").strip()
    return f"\n\n```text\n{text}\n```" if "\n" in text else f"`{text}`"


@magics_class
class AgentMagics(Magics):
    @magic_arguments()
    @argument("--tools", default="calculator", help="Comma-separated tools: calculator, sql, search, or @tool functions (default: calculator).")
    @argument("--db", help="For the sql tool: any SQLAlchemy URL, opened read-only (sqlite:///data.db).")
    @argument("--collection", "-c", help="For the search tool: the collection to search (default: LLMMagics.collection).")
    @argument("--model", "-m", help="Model: a registered name, a local path, or BACKEND:MODEL (openai:NAME uses native tool calls).")
    @argument("--max-steps", type=int, default=6, help="Most thought/action steps before giving up (default 6).")
    @argument("--max-time", type=float, help="Seconds the run may take; it stops after the step running then.")
    @argument("--mode", default="auto", choices=["auto", "react", "native"], help="react (any model), native (OpenAI tool_calls), auto (native for openai:).")
    @argument("--tool-choice", default="required", help="The first step: required (call a tool, the default), auto (may answer at once), or a tool's name.")
    @argument("--early-stopping-method", default="generate", choices=["generate", "force"],
              help="At the step budget: generate (ask once more, without tools, for the answer; the default) or force (stop with none).")
    @argument("--unconstrained", action="store_true", help="On a local model, do not constrain steps to the tools' grammar.")
    @argument("--session", help="Name a conversation; earlier tasks and answers of it are remembered (default session otherwise).")
    @argument("--no-history", action="store_true", help="Neither use nor update the agent's memory.")
    @argument("--reset", action="store_true", help="Forget this session's earlier tasks and answers first.")
    @argument("--trace", help="Append every event to this JSONL file (llm_magics.agents.replay reads it).")
    @argument("--view", action="store_true", help="Also show the trace widget: steps as a timeline, click one for its prompt and output.")
    @argument("-o", "--output", help="Store the AgentResult in this variable.")
    @no_var_expand
    @cell_magic
    @user_errors
    def agent(self, line="", cell=None):
        """Run an agent on the task in the cell: it thinks, calls tools, reads what they return, answers.

        Returns the ``AgentResult``: ``.answer``, ``.steps``, ``.sources``, ``.view()``.

        Examples::

            %%agent --tools calculator,sql --db sqlite:///planets.db
            How many moons do Jupiter and Saturn have together?

            %%agent --tools search --collection docs --max-steps 4
            Who gives the laser safety training?
        """
        from ..agents import Agent, AgentInterrupted
        from .ask import StreamDisplay

        args = self.agent.parser.parse_args(split_words(line))
        task = (cell or "").strip()
        if not task:
            raise errors.UsageError("Write the task in the cell body below %%agent.")
        if args.reset:
            from ..agents.agent import memory_key
            from ..qa import session

            session.current().forget(memory_key(args.session))
        stream = StreamDisplay()
        agent = Agent(
            args.tools, args.model, mode=args.mode, constrained=False if args.unconstrained else None,
            max_steps=args.max_steps, max_time=args.max_time, db=args.db, collection=args.collection,
            callbacks=[_live_view(stream)], memory=not args.no_history, session=args.session, trace=args.trace,
            tool_choice=args.tool_choice, early_stopping_method=args.early_stopping_method,
        )  # fmt: skip
        try:
            result = agent.run(task)
        except AgentInterrupted as e:  # keep the partial trace
            result = e.result
            stream(f"\n\n*Interrupted after {len(result.steps)} step(s).*")
        lines = [f"\n\n**Final answer:** {result.answer}" if result.answer else f"\n\n*No answer: {result.finish_reason}.*"]
        if result.cited:
            lines.append("\n\nSources:\n" + "\n".join(f"- [{s['number']}] {s['source']}" for s in result.cited))
        stream("".join(lines))
        stream.show()
        bind(self.shell, args.output, result)
        if args.view:
            from IPython.display import display

            display(result.view())
        return result
