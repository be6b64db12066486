"""``%attnviz``: see attention inside the runtime's models, or where the last answer looked."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..errors import UsageError
from ._util import bind, user_errors

VIEWS = ("head", "model", "matrix", "neuron")


def _unquote(word: str | None) -> str | None:
    """IPython's argument split keeps quotes on Windows-style tokens; drop a matching pair."""
    if word and len(word) >= 2 and word[0] == word[-1] and word[0] in "\"'":
        return word[1:-1]
    return word


def _is_answer(obj) -> bool:
    return hasattr(obj, "sources") and hasattr(obj, "prompts") and hasattr(obj, "answer")


def last_answer(shell):
    """The most recent ``Answer``: the ask session's record if it keeps one, else the newest in Out/_."""
    from ..qa import session

    found = session.current().last
    if _is_answer(found):
        return found
    ns = shell.user_ns
    outputs = ns.get("Out", {}) or {}
    for key in sorted(outputs, reverse=True):
        if _is_answer(outputs[key]):
            return outputs[key]
    for name in ("_", "__", "___"):
        if _is_answer(ns.get(name)):
            return ns[name]
    raise UsageError("No %%ask answer in this session yet. Run %%ask with the local model first, then %attnviz --last.")


@magics_class
class AttnvizMagics(Magics):
    @magic_arguments()
    @argument("text", nargs="*", help="Text to run through the model, or the name of a variable holding a string (or an Answer).")
    @argument("--model", default="minilm", help="minilm (encoder), smollm2 (causal decoder), another registered name, or a local path.")
    @argument("--view", default="head", choices=VIEWS, help="head: token lines; model: every layer × head; matrix: one heatmap; neuron: how q·k/√d becomes attention.")
    @argument("--layer", type=int, default=0, help="Layer to show first (0-based). With --last: the only layer to average over.")
    @argument("--head", type=int, default=None, help="Head to show first (default: all heads).")
    @argument("--pair", default=None, help="Sentence B for an encoder pair; the head view then offers A → B.")
    @argument("--top-k", type=int, default=None, help="Lines drawn per query token in the head view (0 = all; default 8, or 3 above 128 tokens).")
    @argument("--last", action="store_true", help="Show where the last %%ask answer looked: answer token × source attention.")
    @argument("-o", "--output", default=None, help="Also store the widget in this variable.")
    @line_magic
    @user_errors
    def attnviz(self, line=""):
        """Interactive attention views (head, model, matrix, neuron), or the grounding of the last answer.

        Examples::

            %attnviz The cat sat on the mat because it was tired.
            %attnviz "The animal didn't cross the street" --pair "because it was too tired" --view head
            %attnviz my_text --model smollm2 --view neuron --layer 3 --head 1
            %attnviz --last
        """
        from ..widgets import builders

        args = parse_argstring(self.attnviz, line)
        text = " ".join(_unquote(w) for w in args.text).strip()
        args.pair = _unquote(args.pair)
        value = self.shell.user_ns.get(text) if text.isidentifier() else None
        if args.last or _is_answer(value):
            answer = value if _is_answer(value) else last_answer(self.shell)
            layers = [args.layer] if "--layer" in line else None
            heads = [args.head] if args.head is not None else None
            widget = builders.grounding_widget(answer, layers=layers, heads=heads)
        else:
            if isinstance(value, str):
                text = value
            elif value is not None and text:
                raise UsageError(f"{text} is a {type(value).__name__}; %attnviz takes text, a string variable or an Answer.")
            if args.pair is not None and args.pair in self.shell.user_ns and isinstance(self.shell.user_ns[args.pair], str):
                args.pair = self.shell.user_ns[args.pair]
            widget = builders.attention_widget(
                text, args.model, args.pair, view=args.view, layer=args.layer,
                heads=[args.head] if args.head is not None else None, top_k=args.top_k,
            )  # fmt: skip
        bind(self.shell, args.output, widget)
        return widget
