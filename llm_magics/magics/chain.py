"""``%%chain NAME`` defines a chain from YAML; ``%chain run|list|show`` use them."""

from __future__ import annotations

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from .. import errors
from ._util import bind, split_words, user_errors

COMMANDS = ("run", "list", "show", "delete")


@magics_class
class ChainMagics(Magics):
    @magic_arguments()
    @argument("words", nargs="*", help="%%chain NAME (cell: the YAML steps), or: run NAME | list | show NAME | delete NAME.")
    @argument("--input", "-i", action="append", default=[], metavar="KEY=VALUE", help="For run: an input variable; VALUE may use {{ var }} from the notebook. Repeatable.")
    @argument("--index", help="For run: name of an Index object in the namespace for retrieve steps.")
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
        """
        from .. import chain as chain_mod

        args = self.chain.parser.parse_args(split_words(line))
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
        from ..qa.chain_types.prompts import render_string

        inputs = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key.isidentifier():
                raise errors.UsageError(f"--input wants KEY=VALUE with KEY a name, got {pair!r}.")
            inputs[key] = render_string(value, self.shell.user_ns, what=f"--input {key}")
        return inputs
