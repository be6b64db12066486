"""``%%ask`` / ``%ask``: a grounded, streamed answer with numbered citations."""

from __future__ import annotations

import re
import time

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from .. import errors
from ._util import bind, split_words, user_errors


class StreamDisplay:
    """The answer so far in one display handle, updated at most every ``interval`` seconds."""

    #: Seconds between updates: fast enough to read along, rare enough not to flood the frontend.
    interval = 0.1

    def __init__(self):
        from IPython.display import Markdown, display

        self.text = ""
        self.status = ""
        self._last = 0.0
        self._Markdown = Markdown
        self.handle = display(Markdown("*…*"), display_id=True)

    def __call__(self, piece: str) -> None:
        self.text += piece
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            self.show()

    def show(self, obj=None) -> None:
        if self.handle is None:
            return
        if obj is None:
            obj = self._Markdown(self.text + "▌" if self.text else f"*{self.status or '…'}*")
        self.handle.update(obj)

    def step(self, status: str) -> None:
        self.status = status
        if not self.text:
            self.show()

    def clear(self) -> None:
        from IPython.display import HTML

        if self.handle is not None:
            self.handle.update(HTML(""))


_TOKEN = re.compile(r"""\s*((?:[^\s'"]+|'[^']*'|"[^"]*")+)""")


def leading_options(parser, line: str) -> tuple[list[str], str]:
    """Split ``--k 3 -o a What's up?`` into the option words and the raw question text."""
    no_value = {opt for a in parser._actions if a.nargs == 0 for opt in a.option_strings}
    words: list[str] = []
    pos = 0
    while (m := _TOKEN.match(line, pos)) and m.group(1).startswith("-") and len(m.group(1)) > 1:
        words += split_words(m.group(1))
        pos = m.end()
        if "=" in m.group(1) or m.group(1) in no_value:
            continue
        if (v := _TOKEN.match(line, pos)) is None:
            break
        words += split_words(v.group(1))
        pos = v.end()
    return words, line[pos:].strip()


def _status_handler(stream: StreamDisplay):
    """A callback that shows which model call is running while nothing streams yet."""
    from ..qa.callbacks import CallbackHandler

    class Status(CallbackHandler):
        name = "status"

        def on_retriever_start(self, **kw):
            stream.step("retrieving…")

        def on_llm_start(self, *, step, **kw):
            stream.step(f"{step}…")

    return Status()


@magics_class
class AskMagics(Magics):
    @magic_arguments()
    @argument("question", nargs="*", help="For %ask: the question (for %%ask it is the cell body).")
    @argument("--collection", "-c", help="Collection to search (default: LLMMagics.collection).")
    @argument("--index", help="Name of an Index object in the namespace to search instead of --collection.")
    @argument("--k", "-k", type=int, help="Retrieve exactly this many chunks (default: fill --budget).")
    @argument("--budget", type=int, help="Tokens of retrieved context to hand the model (default: LLMMagics.context_budget).")
    @argument("--chain-type", help="stuff, refine, map_reduce or map_rerank (default: LLMMagics.chain_type).")
    @argument("--model", "-m", help="Model: a registered name, a local path, or BACKEND:MODEL.")
    @argument("--temperature", "-t", type=float, help="Sampling temperature; 0 is greedy.")
    @argument("--max-tokens", type=int, help="Most tokens in the answer.")
    @argument("--samples", type=int, default=1, help="Sample N answers at --temperature (default 0.7) and report their agreement and the majority answer.")
    @argument("--format", "-f", help="Output parser: text, markdown, json, list, regex, quote (the passage sentence that says what the model answered, with its number) or auto (default: LLMMagics.format).")
    @argument("--schema", help="For --format json: a variable holding a JSON Schema dict or a pydantic model class.")
    @argument("--no-history", action="store_true", help="Neither use nor update the conversation memory.")
    @argument("--no-retrieval", action="store_true", help="Ask the model alone, without documents.")
    @argument("--no-interpolate", action="store_true", help="Send the question as written: no {{ var }} substitution.")
    @argument("--session", help="Name a conversation; memory is kept per session (default: per collection).")
    @argument("--reset", action="store_true", help="Clear the conversation memory first (alone: just clear it).")
    @argument("--compare", help="Comma-separated chain types to run on the same chunks, shown side by side.")
    @argument("--view", action="store_true", help="Also show the retrieval view: chunks with scores, the final prompt, citations, timings.")
    @argument("-o", "--output", help="Store the Answer in this variable.")
    @no_var_expand  # {{ var }} is ours (Jinja2), not IPython's {var} expansion
    @line_cell_magic
    @user_errors
    def ask(self, line="", cell=None):
        """Answer a question from your ingested documents, with numbered citations.

        The cell body (or the rest of the line for ``%ask``) is the question; ``{{ var }}``
        inserts a variable from the notebook (Jinja2; other braces are left alone).
        Returns the ``Answer``: ``.answer``, ``.sources``, ``.prompts``, ``.usage``,
        ``.timings``.

        Examples::

            %%ask --collection papers --k 4
            What do the papers say about {{ topic }}?

            %ask --chain-type map_rerank Who wrote the report
            %ask --compare stuff,refine,map_reduce,map_rerank What is the budget
            %ask --reset

            %%ask --samples 5
            How many nodes does the cluster have?

        A ``%ask`` line may end with ``?`` (``r = %ask What is X?``): the extension rewrites it
        before IPython's help syntax sees it (``magics/transforms.py``); ``%ask?`` is still help.
        """
        from ..qa import pipeline as ask_mod
        from ..qa import session

        parser = self.ask.parser
        if cell is None:  # %ask OPTIONS QUESTION: the question is the raw rest, apostrophes and all
            words, question = leading_options(parser, line)
            args = parser.parse_args(words)
        else:
            args = parser.parse_args(split_words(line))
            question = cell
            if args.question:
                raise errors.UsageError(f"Put the question in the cell body, not on the %%ask line (found {' '.join(args.question)!r}).")
        index = self._lookup(args.index, "--index") if args.index else None
        collection = args.collection
        if args.reset:
            session.current().forget(session=args.session, collection=collection, index=index)
            if not question.strip():
                print(f"Conversation memory cleared ({args.session and 'session ' + args.session or 'collection ' + (collection or 'default')}).")
                return None
        if not question.strip():
            raise errors.UsageError("Ask a question: %%ask on the first line and the question below, or %ask QUESTION.")
        if not args.no_interpolate:
            from ..qa.chain_types.prompts import render_string

            question = render_string(question, self.shell.user_ns, what="question")
        options = dict(
            model=args.model, temperature=args.temperature, max_tokens=args.max_tokens, format=args.format, budget=args.budget,
            schema=self._lookup(args.schema, "--schema") if args.schema else None,
        )
        stream = StreamDisplay()
        try:
            if args.compare:
                names = [n.strip() for n in args.compare.split(",") if n.strip()]
                result = ask_mod.compare(
                    question, names, index=index, collection=collection, k=args.k,
                    on_answer=lambda name, a: stream.step(f"{name} done; running the next…"), **options,
                )
            else:
                result = ask_mod.ask(
                    question, index=index, collection=collection, k=args.k, chain_type=args.chain_type,
                    memory=None if args.no_history else ask_mod.DEFAULT, retrieval=not args.no_retrieval,
                    session=args.session, stream_to=stream, callbacks=[_status_handler(stream)], samples=args.samples, **options,
                )
        except ask_mod.AskInterrupted as e:  # keep what was produced
            stream.clear()
            bind(self.shell, args.output, e.answer)
            return e.answer
        except Exception as e:
            from ..qa.chain_types import GenerationError

            stream.clear()
            if isinstance(e, GenerationError):  # one line, memory untouched
                raise errors.UsageError(str(e)) from None
            raise
        stream.clear()
        if args.samples != 1 and not args.compare:
            consensus = result.extras["consensus"]
            print(f"Majority answer of {len(consensus.answers)} samples at temperature {result.extras['temperature']:g}: {consensus.summary()}")
        bind(self.shell, args.output, result)
        if args.view and not args.compare:
            from IPython.display import display

            display(result.view())
        return result

    def _lookup(self, name: str, flag: str):
        if name not in self.shell.user_ns:
            raise errors.UsageError(f"{flag} {name}: no variable {name!r} in the notebook. Define it first.")
        return self.shell.user_ns[name]
