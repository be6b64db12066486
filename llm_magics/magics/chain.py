"""``%%chain NAME`` defines a chain from YAML; ``%chain run|list|show`` use them."""

from __future__ import annotations

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from .. import errors
from ._util import bind, split_words, user_errors

COMMANDS = ("run", "list", "show", "delete", "serve", "export")


def parse_inputs(pairs: list[str], namespace: dict) -> dict:
    """``--input KEY=VALUE`` pairs as a dict; ``{{ var }}`` in a VALUE comes from ``namespace``."""
    from ..qa.chain_types.prompts import render_string

    inputs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise errors.UsageError(f"--input wants KEY=VALUE with KEY a name, got {pair!r}.")
        inputs[key] = render_string(value, namespace, what=f"--input {key}")
    return inputs


@magics_class
class ChainMagics(Magics):
    @magic_arguments()
    @argument("words", nargs="*", help="%%chain NAME (cell: the YAML steps), or: run NAME | list | show NAME | delete NAME | serve [NAME] | export NAME DIR.")
    @argument("--input", "-i", action="append", default=[], metavar="KEY=VALUE", help="For run: an input variable; VALUE may use {{ var }} from the notebook. Repeatable.")
    @argument("--index", help="For run: name of an Index object in the namespace for retrieve steps.")
    @argument("--port", type=int, default=8000, help="For serve: the port to listen on (default 8000).")
    @argument("--host", default="127.0.0.1", help="For serve: the address to listen on (default 127.0.0.1, this machine only).")
    @argument("--collection", "-c", help="For serve and export: the collection /ask searches (default: LLMMagics.collection).")
    @argument("--stop", action="store_true", help="For serve: stop the server on --port (all servers when no --port is given).")
    @argument("--force", action="store_true", help="For export: overwrite a non-empty directory.")
    @argument("-o", "--output", help="Store the result (a Chain, or a ChainRun for run) in this variable.")
    @no_var_expand  # {{ var }} in --input is ours (Jinja2), not IPython's {var} expansion
    @line_cell_magic
    @user_errors
    def chain(self, line="", cell=None):
        """Define and run named chains: short YAML lists of steps (retrieve, prompt, llm, parser, chain).

        Examples::

            %%chain summarize
            - retrieve: {query: "{{ topic }}", k: 3}
            - prompt: "Summarise in one sentence: {{ context }}"
            - llm: {max_tokens: 48}

            %chain run summarize --input topic="solar panels"
            %chain list
            %chain show summarize
            %chain serve summarize --port 8000     # FastAPI in the background: /run, /ask, /docs
            %chain serve --stop
            %chain export summarize app/           # a directory with app.py, requirements.txt, Dockerfile
        """
        from .. import chain as chain_mod

        self._line_words = split_words(line)
        args = self.chain.parser.parse_args(self._line_words)
        words = args.words
        if cell is not None:
            if len(words) != 1 or words[0] in COMMANDS:
                raise errors.UsageError("Name the chain on the %%chain line: %%chain NAME, with the YAML steps in the cell body.")
            result = chain_mod.Chain.define(words[0], cell)
            bind(self.shell, args.output, result)
            return result
        command = words[0] if words else "list"
        if command == "list":
            return chain_mod.listing()
        if command == "serve":
            return self._serve(args, words[1:])
        if command == "export":
            if len(words) != 3:
                raise errors.UsageError("Usage: %chain export NAME DIR [--collection NAME] [--force].")
            from ..serve import export

            out = export(words[1], words[2], collection=args.collection, force=args.force)
            print(f"Exported chain {words[1]!r} to {out}: run it with `uvicorn app:app` there, or build its Dockerfile.")
            return out
        if command not in COMMANDS:
            raise errors.UsageError(f"No %chain command {command!r}. Use: %%chain NAME (define), %chain run NAME, %chain list, %chain show NAME, %chain delete NAME.")
        if len(words) != 2:
            raise errors.UsageError(f"Usage: %chain {command} NAME.")
        name = words[1]
        if command == "show":
            return chain_mod.get(name)
        if command == "delete":
            chain_mod.get(name)
            chain_mod.remove(name)
            print(f"Chain {name!r} deleted.")
            return None
        inputs = self._inputs(args.input)
        index = None
        if args.index:
            if args.index not in self.shell.user_ns:
                raise errors.UsageError(f"--index {args.index}: no variable {args.index!r} in the notebook.")
            index = self.shell.user_ns[args.index]
        from .ask import StreamDisplay

        stream = StreamDisplay()
        try:
            result = chain_mod.get(name).invoke(inputs, index=index, stream_to=stream)
        except Exception as e:
            from ..qa.chain_types import GenerationError

            stream.clear()
            if isinstance(e, GenerationError):
                raise errors.UsageError(str(e)) from None
            raise
        stream.clear()
        bind(self.shell, args.output, result)
        return result

    def _inputs(self, pairs: list[str]) -> dict:
        return parse_inputs(pairs, self.shell.user_ns)

    def _serve(self, args, names: list[str]):
        from .. import serve

        if args.stop:
            explicit = any(w == "--port" or w.startswith("--port=") for w in self._line_words)
            stopped = serve.stop(args.port if explicit else None)
            print(f"Stopped serving on port(s) {', '.join(map(str, stopped)) or '(none were running)'}.")
            return None
        if len(names) > 1:
            raise errors.UsageError("Serve one chain at a time: %chain serve [NAME] --port PORT.")
        running = serve.serve(names[0] if names else None, collection=args.collection, host=args.host, port=args.port)
        print(f"Serving at {running.url} (API docs: {running.url}/docs). Stop with %chain serve --stop --port {running.port}.")
        return running
