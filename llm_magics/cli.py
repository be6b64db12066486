"""``llm-magics``: the magics as a command line, for scripts and shells.

    llm-magics ingest docs/ --recursive --collection docs
    llm-magics ask "What does the handbook say about backups?" --collection docs
    llm-magics chain run summarize --input topic=backups
    llm-magics serve summarize --port 8000
    llm-magics models
    llm-magics install qwen2.5-coder-0.5b

Each command parses its options with the very parser of its magic (``%ingest``, ``%%ask``,
``%chain``, ``%llm``), so options, defaults and error messages are the same in both
places. ``--json`` (any command) prints one JSON document instead of text. Exit codes:
0 success, 1 the work failed (a model or server error), 2 a usage error, 130 interrupted.
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from typing import Callable

USAGE = """usage: llm-magics COMMAND [OPTIONS] [--json]

commands:
  ingest SOURCE...     load, split, embed and store documents (as %ingest)
  ask "QUESTION"       answer from a collection, with sources (as %ask)
  chain run NAME       run a chain saved by %%chain (also: chain list, chain show NAME)
  serve [NAME]         serve a chain and /ask over HTTP (as %chain serve)
  models               list the models, installed and installable (as %llm models)
  install MODEL        install a model (as %llm install)

`llm-magics COMMAND --help` lists a command's options."""


class Failed(Exception):
    """The command's work failed (exit code 1), as opposed to a usage error (2)."""


def _parser(method, prog: str):
    """The magic's own parser, as a shell command: its name as ``prog``, plain argparse help."""
    import argparse

    parser = copy.copy(method.parser)
    parser.prog = prog
    parser.formatter_class = argparse.HelpFormatter  # the magic's adds "%" and "::" for IPython
    return parser


def _emit(as_json: bool, data, text: str | None = None) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    elif text is not None:
        print(text)


def cmd_ingest(argv: list[str], as_json: bool) -> None:
    from .magics.ingest import IngestMagics, ingest_from_args

    args = _parser(IngestMagics.ingest, "llm-magics ingest").parse_args(argv)
    index, report = ingest_from_args(args, echo=(lambda *a: None) if as_json else print)
    if as_json:
        data = {"collection": index.collection, "stats": index.stats()}
        if report is not None:
            data["report"] = dataclasses.asdict(report)
        _emit(True, data)


def cmd_ask(argv: list[str], as_json: bool) -> None:
    from .magics.ask import AskMagics
    from .qa import pipeline

    parser = _parser(AskMagics.ask, "llm-magics ask")
    args = parser.parse_args(argv)
    question = " ".join(args.question).strip()
    if args.index or args.schema or args.compare or args.view:
        raise _usage("--index, --schema, --compare and --view need a notebook; use them in %%ask.")
    stream = None if as_json else (lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
    try:
        answer = pipeline.ask(
            question, collection=args.collection, k=args.k, chain_type=args.chain_type, model=args.model,
            temperature=args.temperature, max_tokens=args.max_tokens, format=args.format,
            memory=None, retrieval=not args.no_retrieval, stream_to=stream,
        )
    except pipeline.AskInterrupted:
        raise KeyboardInterrupt from None
    except Exception as e:
        _raise_failed(e)
    if as_json:
        from .serve.app import answer_json

        _emit(True, answer_json(answer))
        return
    print()
    for note in answer._notes():
        print(f"> {note}")
    for s in answer.sources:
        print(f"   [{s.number}]{'*' if s.cited else ' '} {s.label} (score {s.score:.2f})")


def cmd_chain(argv: list[str], as_json: bool) -> None:
    from . import chain as chain_mod
    from .magics.chain import ChainMagics, parse_inputs

    args = _parser(ChainMagics.chain, "llm-magics chain").parse_args(argv)
    words = args.words or ["list"]
    command = words[0]
    if command == "list":
        names = chain_mod.names()
        _emit(as_json, names, "\n".join(names) or "(no chains yet: define one with %%chain NAME in a notebook)")
        return
    if command not in ("run", "show") or len(words) != 2:
        raise _usage("Use: llm-magics chain list | show NAME | run NAME [--input KEY=VALUE ...].")
    found = chain_mod.get(words[1])
    if command == "show":
        _emit(as_json, {"name": found.name, "yaml": found.source}, found.source.strip() or found.describe())
        return
    stream = None if as_json else (lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
    try:
        run = found.invoke(parse_inputs(args.input, {}), stream_to=stream)
    except Exception as e:
        _raise_failed(e)
    if as_json:
        from .serve.app import run_json

        _emit(True, run_json(run))
    elif not isinstance(run.output, str) or stream is None:
        print(run.output)
    else:
        print()


def cmd_serve(argv: list[str], as_json: bool) -> None:
    from .magics.chain import ChainMagics
    from .serve import serve_forever

    args = _parser(ChainMagics.chain, "llm-magics serve").parse_args(["serve", *argv])
    names = args.words[1:]
    if len(names) > 1:
        raise _usage("Serve one chain at a time: llm-magics serve [NAME] --port PORT.")
    serve_forever(names[0] if names else None, collection=args.collection, host=args.host, port=args.port)


def cmd_models(argv: list[str], as_json: bool) -> None:
    from . import catalog

    if argv:
        raise _usage(f"`llm-magics models` takes no arguments (got {' '.join(argv)!r}).")
    table = catalog.listing("models")
    if as_json:
        _emit(True, [dict(zip(table.columns, row)) for row in table.rows])
    else:
        print(table)


def cmd_install(argv: list[str], as_json: bool) -> None:
    from .models.install import install

    if len(argv) != 1 or argv[0].startswith("-"):
        raise _usage("Name one model: llm-magics install MODEL (see `llm-magics models`).")
    path = install(argv[0], progress=not as_json)
    _emit(as_json, {"model": argv[0], "path": str(path)}, f"Installed {argv[0]} at {path}")


COMMANDS: dict[str, Callable[[list[str], bool], None]] = {
    "ingest": cmd_ingest, "ask": cmd_ask, "chain": cmd_chain, "serve": cmd_serve,
    "models": cmd_models, "install": cmd_install,
}


#: The magic whose parser each command shares: (module, class, method).
_PARSERS = {"ingest": ("ingest", "IngestMagics", "ingest"), "ask": ("ask", "AskMagics", "ask"),
            "chain": ("chain", "ChainMagics", "chain"), "serve": ("chain", "ChainMagics", "chain")}


def _help(command: str) -> str:
    """The command's help, from its magic's parser (magic parsers take no -h of their own)."""
    import importlib

    if command not in _PARSERS:
        return USAGE
    module, cls, method = _PARSERS[command]
    magic = getattr(getattr(importlib.import_module(f"llm_magics.magics.{module}"), cls), method)
    return _parser(magic, f"llm-magics {command}").format_help()


def _usage(message: str):
    from .errors import UsageError

    return UsageError(message)


def _raise_failed(e: Exception):
    from .errors import UsageError

    if isinstance(e, UsageError):
        raise e
    raise Failed(str(e) or type(e).__name__) from None


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (the console script exits with it)."""
    from IPython.core.error import UsageError as IPythonUsageError

    from .errors import UsageError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    as_json = "--json" in rest
    rest = [a for a in rest if a != "--json"]
    if command not in COMMANDS:
        print(f"llm-magics: no command {command!r}. Commands: {', '.join(COMMANDS)}.", file=sys.stderr)
        return 2
    if "-h" in rest or "--help" in rest:
        print(_help(command))
        return 0
    try:
        COMMANDS[command](rest, as_json)
    except (UsageError, IPythonUsageError) as e:
        print(f"llm-magics {command}: {e}", file=sys.stderr)
        return 2
    except Failed as e:
        print(f"llm-magics {command}: failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"llm-magics {command}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # argparse's --help
        return int(e.code or 0)
    return 0


if __name__ == "__main__":  # python -m llm_magics.cli
    sys.exit(main())
