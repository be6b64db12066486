"""``%ingest``: load, split, embed and store documents; a thin layer over ``Index``."""

from __future__ import annotations

import json

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

from .. import config, errors
from ._util import bind, split_words, user_errors


def parse_options(pairs: list[str] | None, flag: str = "--option", example: str = "rows_per_document=10") -> dict:
    """``["query=SELECT 1", "rows_per_document=10"]`` -> dict; values are JSON when they parse."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise errors.UsageError(f"{flag} wants KEY=VALUE, got {pair!r}. Example: {flag} {example}")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value
    return out


def ingest_from_args(args, echo=print):
    """Do what ``%ingest`` (or ``llm-magics ingest``) asked: return the Index and the report (None when nothing was added)."""
    from ..ingest.index import Index

    options = parse_options(args.option)
    if args.query:
        options["query"] = args.query
    store_options = parse_options(args.store_option, "--store-option", "url=http://127.0.0.1:8000")
    copy_to = getattr(args, "copy_to", None)
    if not args.sources and not args.delete and not args.stats and not copy_to:
        raise errors.UsageError("Name what to ingest: %ingest PATH [PATH ...] (files, folders, globs or sqlite:///file.db). See %ingest?")
    if copy_to:  # the --store-option values describe the target; the origin is --store (default: the embedded one)
        if args.sources or args.delete:
            raise errors.UsageError("--copy-to copies a whole collection: run it on its own, e.g. %ingest --copy-to chroma --store-option url=http://127.0.0.1:8000")
        origin = Index(collection=args.collection, store=args.store, embedder=args.embedder)
        index = origin.copy_to(copy_to, store_options=store_options)
        c = index.last_copy
        where = f" at {index.store.path}" if index.store.path else ""
        echo(f"Copied {c['sources']} sources ({c['chunks']} chunks) of {origin.collection!r} to {index.store.name}{where}; {c['unchanged']} already there.")
        if store_options and copy_to == config.settings().store:
            echo(f"Point %%ask and %ingest at it: %config LLMMagics.store_options = {json.dumps(store_options)}")
        if args.stats:
            echo("  ".join(f"{k}={v}" for k, v in index.stats().items() if v is not None))
        return index, None
    redact = args.redact
    if getattr(args, "redact_kinds", None):  # checked before anything is read: a bad kind is a UsageError
        from ..ingest.redact import Redactor

        redact = Redactor(kinds=args.redact_kinds)
    index = Index(collection=args.collection, store=args.store, embedder=args.embedder, store_options=store_options)
    report = None
    for source in args.delete or []:
        removed = index.delete(source)
        echo(f"Removed {source} ({removed} chunks) from {index.collection!r}.")
    if args.sources:
        report = index.add(
            args.sources,
            loader=args.loader,
            splitter=args.splitter,
            chunk_size=args.chunk_size,
            chunk_overlap=args.chunk_overlap,
            glob=args.glob,
            recursive=args.recursive,
            redact=redact,
            workers=getattr(args, "workers", None),
            engine=getattr(args, "engine", None),
            ray_address=getattr(args, "ray_address", None),
            **options,
        )
        echo(report)
        if getattr(args, "profile", False):
            echo(report.profile())
    elif options or args.loader or args.splitter or args.glob:
        raise errors.UsageError("Loader and splitter options need SOURCE paths to read. Example: %ingest docs/ --glob '*.md'")
    if args.stats:
        stats = index.stats()
        echo("  ".join(f"{k}={v}" for k, v in stats.items() if v is not None))
        for source in index.sources():
            echo(f"  {source}")
    return index, report


def _show(item) -> None:
    """In a notebook: the report as its rich display, anything else printed."""
    if isinstance(item, str):
        print(item)
    else:
        display(item)


@magics_class
class IngestMagics(Magics):
    @magic_arguments()
    @argument("sources", nargs="*", help="Files, folders, glob patterns or URLs (sqlite:///file.db).")
    @argument("--collection", "-c", help="Collection to add to (default: the collection setting).")
    @argument("--loader", help="Loader to use for every source instead of choosing by extension (text, markdown, html, pdf, csv, json, ipynb, code, sql).")
    @argument("--splitter", help="markdown, recursive, character or token (default: the splitter setting, markdown).")
    @argument("--chunk-size", type=int, help="Largest chunk, in characters (tokens for --splitter token).")
    @argument("--chunk-overlap", type=int, help="Most characters (tokens) neighbouring chunks share.")
    @argument("--glob", help="Only files matching this pattern inside folders, e.g. '*.md' or '**/*.pdf'.")
    @argument("--recursive", "-r", action="store_true", help="Walk sub-folders too.")
    @argument("--store", help="Vector store: chroma (default, persistent) or memory.")
    @argument("--store-option", action="append", metavar="KEY=VALUE", help="Store option, repeatable (JSON values parse): url=http://127.0.0.1:8000 for a Chroma server, token=..., ef_search=200.")
    @argument("--copy-to", metavar="STORE", help="Copy the collection (vectors, texts, ids, manifest; no re-embedding) to STORE, configured by --store-option; e.g. --copy-to chroma --store-option url=http://127.0.0.1:8000.")
    @argument("--embedder", help="Embedder name (default: the embedder setting, or the one the collection was built with).")
    @argument("--query", help="SQL query for a database URL source (shorthand for --option query=...).")
    @argument("--option", action="append", metavar="KEY=VALUE", help="Loader option, repeatable: rows_per_document=10, text_field=body, password=...")
    @argument("--delete", metavar="SOURCE", action="append", help="Remove a source (or a folder's sources) from the collection.")
    @argument("--stats", action="store_true", help="Show the collection's sources and chunk counts.")
    @argument("--redact", action="store_true", help="Mask e-mail addresses, phone numbers, IBANs, card numbers and people's names (with spaCy's English model) before embedding and storing; the summary counts them by kind.")
    @argument("--redact-kinds", metavar="KINDS", help="Mask only these kinds (comma-separated: email, iban, credit_card, phone, name); implies --redact. E.g. --redact-kinds email,phone leaves names alone.")
    @argument("--workers", type=int, metavar="N", help="Load and split in N worker processes while this one embeds and writes (default 1: all in this process; same chunks either way).")
    @argument("--engine", metavar="ENGINE", help="Who loads, splits and embeds: local (default: this process, or --workers) or ray (a Ray Data pipeline; pip install 'llm-magics[ray]'). This process still writes.")
    @argument("--ray-address", metavar="ADDRESS", help="With --engine ray: the Ray cluster to run on (ray://HOST:10001, or auto); default: a local instance for this run.")
    @argument("--profile", action="store_true", help="After the summary, show where the time went: load, split, embed, store (seconds and share of the wall time).")
    @argument("-o", "--output", metavar="VAR", help="Also bind the Index to this variable.")
    @line_magic
    @user_errors
    def ingest(self, line=""):
        """Turn documents into a searchable index; returns the ``Index``.

        Examples::

            %ingest docs/ --recursive --glob '*.md' -o idx
            %ingest report.pdf notes.txt --collection papers --chunk-size 500
            %ingest sqlite:///shop.db --query "SELECT name, description FROM products"
            %ingest --delete report.pdf --collection papers
            %ingest --stats
            %ingest inbox/ --redact          # personal data masked before embedding
            %ingest inbox/ --redact-kinds email,phone   # only these kinds (no names)
            %ingest docs/ --store-option url=http://127.0.0.1:8000   # a Chroma server
            %ingest --copy-to chroma --store-option url=http://127.0.0.1:8000
            %ingest docs/ -r --workers 2 --profile   # load and split in 2 processes; time per stage
            %ingest docs/ -r --engine ray --ray-address ray://head:10001   # on a Ray cluster

        Re-running is safe: unchanged files are skipped, changed ones replace their
        chunks. Unreadable files are skipped with a reason in the summary.
        """
        # shell-style quoting ('*.md', "SELECT ..."), which parse_argstring keeps literally
        args = self.ingest.parser.parse_args(split_words(line))
        index, _ = ingest_from_args(args, echo=_show)
        bind(self.shell, args.output, index)
        return index
