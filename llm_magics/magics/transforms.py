"""Input transformers: let a one-line ``%ask`` end with ``?``.

IPython reads a line that ends with ``?`` as a help request, so
``r = %ask What does sort_keys do in json.dumps?`` would open help on ``json.dumps``
instead of asking. Questions end with ``?``. This line transformer runs before IPython's
own (help, magics, assignments) and rewrites such lines into the call IPython would have
made for them without the ``?``::

    %ask What is X?            ->  get_ipython().run_line_magic('ask', 'What is X?')
    r = %ask --k 2 What is X?  ->  r = get_ipython().run_line_magic('ask', '--k 2 What is X?')

``%ask?`` and ``%ask??`` (help on the magic itself) are left alone, and so is every other
line. ``install(shell)`` adds it at ``%load_ext``; ``uninstall(shell)`` removes it.
"""

from __future__ import annotations

import re

#: indent, optional "target =" (names, attributes, subscripts, tuples), the %ask line's rest
_ASK_LINE = re.compile(r"^(?P<indent>[ \t]*)(?:(?P<target>[\w.\[\]'\", ]+?)[ \t]*=[ \t]*)?%ask(?P<rest>(?:[ \t].*)?)$")


def ask_question_mark(lines: list[str]) -> list[str]:
    """Rewrite ``[x =] %ask ...?`` lines so IPython's help syntax does not take the ``?``."""
    out = []
    for line in lines:
        body = line.rstrip("\r\n")
        ending = line[len(body):]
        match = _ASK_LINE.match(body)
        rest = match.group("rest").strip() if match else ""
        if not match or not rest.endswith("?") or rest.strip("?").strip() == "":
            out.append(line)
            continue
        target = match.group("target")
        call = f"get_ipython().run_line_magic('ask', {rest!r})"
        out.append(f"{match.group('indent')}{target.strip() + ' = ' if target else ''}{call}{ending}")
    return out


def install(shell) -> None:
    """Add the transformer to ``shell`` (once)."""
    manager = getattr(shell, "input_transformer_manager", None)
    if manager is not None and ask_question_mark not in manager.line_transforms:
        manager.line_transforms.append(ask_question_mark)


def uninstall(shell) -> None:
    """Remove what ``install`` added."""
    manager = getattr(shell, "input_transformer_manager", None)
    if manager is not None:
        while ask_question_mark in manager.line_transforms:
            manager.line_transforms.remove(ask_question_mark)
