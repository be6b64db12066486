"""``Index``: documents in (load, split, embed, store), relevant chunks out.

``Index`` opens a collection and answers ``search``; ``add`` runs the ingest pipeline
(pipeline.py), which is idempotent and safe to interrupt: each source is written through
the ``Manifest`` protocol (manifest.py), so search never sees half a file. ``delete``,
``sources``, ``stats`` and ``drop`` keep the collection.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from .. import config
from ..errors import UsageError
from .documents import Hit
from .manifest import KEY, VERSION, Manifest
from .report import IngestReport
from .retrieval import and_filters

if TYPE_CHECKING:
    import numpy as np

    from .embedders import Embedder
    from .redact import Redactor
    from .splitters import Splitter
    from .stores import VectorStore

__all__ = ["Index", "KEY", "VERSION"]


class Index:
    """A named collection of embedded chunks in a vector store.

    ``Index()`` opens (or creates) the configured collection; ``collection``, ``store``
    (a name or a ``VectorStore``), ``embedder`` (a name or an ``Embedder``) and ``path``
    (folder of a persistent store) override the settings; ``store_options`` go to the
    store (e.g. ``{"url": "http://127.0.0.1:8000"}`` for a Chroma server). An existing
    collection keeps the embedder it was built with; naming a different one is an error.
    """

    def __init__(self, collection: str | None = None, store: "str | VectorStore | None" = None, embedder: "str | Embedder | None" = None, path: str | None = None, store_options: dict | None = None):
        from .stores import VectorStore, get_store_class

        s = config.settings()
        if isinstance(store, VectorStore):
            self.store = store
            self.collection = store.collection
        else:
            self.collection = collection or s.collection
            cls = get_store_class(store)
            name = embedder if isinstance(embedder, str) else getattr(embedder, "name", None)
            if store_options is None and store is None:
                store_options = dict(s.store_options)  # the default store's own settings
            options = dict(store_options or {})
            if "path" in options:  # --store-option path=DIR names the folder as path= does
                given = options.pop("path")
                if path is not None and str(path) != str(given):
                    raise UsageError(f"Two folders for one store: path={path!r} and store option path={given!r}. Give one of them.")
                path = given
            self.store = cls(self.collection, path=path, embedder=name, **options)
        self._embedder = embedder if embedder is not None and not isinstance(embedder, str) else None
        self._embedder_name = embedder if isinstance(embedder, str) else getattr(embedder, "name", None)
        self._checked = False
        self.last_report: IngestReport | None = None  # what the latest add() did

    @property
    def manifest(self) -> Manifest:
        """The collection's manifest: which version of each source is live (see manifest.py)."""
        return Manifest(self.store)

    # -- the embedder, checked against the collection --------------------------

    @property
    def embedder(self) -> "Embedder":
        if self._embedder is None:
            from .embedders import get_embedder

            info = self.store.info()
            self._embedder = get_embedder(self._embedder_name or info.get("embedder_name") or config.settings().embedder)
        if not self._checked:
            self._check_embedder(self._embedder)
            self._checked = True
        return self._embedder

    def _check_embedder(self, embedder: "Embedder") -> None:
        info = self.store.info()
        built = info.get("embedder")
        if built and built != embedder.identity:
            raise UsageError(
                f"Collection {self.collection!r} was built with embedder {built!r} ({info.get('dimension')}-d), "
                f"not {embedder.identity!r}: its vectors would not be comparable. Pass --embedder {info.get('embedder_name') or built}, "
                "or use another --collection (or delete this one with Index(...).drop())."
            )

    def _check_dimension(self, vectors: "np.ndarray") -> None:
        info = self.store.info()
        dim = int(vectors.shape[-1])
        if info.get("dimension") and int(info["dimension"]) != dim:
            raise UsageError(
                f"Collection {self.collection!r} holds {info['dimension']}-d vectors but embedder {self.embedder.identity!r} makes {dim}-d ones. "
                "Use the embedder the collection was built with, or another --collection."
            )
        if not info.get("embedder"):
            self.store.set_info({
                **info,
                "embedder": self.embedder.identity,
                "embedder_name": self._embedder_name or self.embedder.name,
                "dimension": dim,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            })

    # -- ingest ----------------------------------------------------------------

    def add(
        self,
        sources: "str | os.PathLike | Iterable[str | os.PathLike]",
        loader: str | None = None,
        splitter: "str | Splitter | None" = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        glob: str | None = None,
        recursive: bool = False,
        *,
        progress: bool | None = None,
        batch_size: int | None = None,  # texts per embedder call (default 256)
        redact: "bool | Redactor" = False,  # mask personal data before splitting, embedding and storing
        workers: int | None = None,  # processes that load and split (0 or 1: this one)
        engine: str | None = None,  # "local" (default) or "ray"
        ray_address: str | None = None,  # engine="ray": a running Ray cluster (default: a local instance)
        headings: bool | None = None,  # embed each chunk under its nearest header (default: LLMMagics.embed_headings)
        **loader_options: Any,
    ) -> IngestReport:
        """Load, split, embed and store ``sources`` (files, folders, globs, URLs).

        Unchanged sources are skipped, changed ones replace their old chunks, and
        unreadable ones are skipped with a reason in the returned report. Extra keyword
        arguments are loader options (``query=`` for SQL, ``text_field=`` for JSON, ...).
        ``redact=True`` (or a ``redact.Redactor``, e.g. ``Redactor(kinds=["email", "phone"])``)
        masks e-mail addresses, phone numbers, IBANs, card numbers and people's names (when spaCy's
        English model is installed) in every loaded document before anything else sees it; the
        report counts what was masked (``report.redacted``) and says which kinds were not checked.
        ``workers=N`` loads and splits in N worker processes while this one embeds and writes
        (same chunks and ids as one process). The report times each stage: ``load_seconds``,
        ``split_seconds``, ``embed_seconds``, ``store_seconds`` (and ``wait_seconds`` with
        workers); ``print(report.profile())`` shows them as shares of the wall time.
        ``engine="ray"`` loads, splits and embeds as a Ray Data pipeline, on the cluster at
        ``ray_address`` or a local instance, while this process writes (``pip install
        'llm-magics[ray]'``); same chunks and ids, same manifest protocol.
        ``headings`` (default on, ``LLMMagics.embed_headings``) embeds each chunk with the header it
        sits under (else its document's title) in front; what is stored and cited is the chunk's own text.
        """
        from .pipeline import add

        return add(
            self, sources, loader, splitter, chunk_size, chunk_overlap, glob, recursive,
            progress=progress, batch_size=batch_size, redact=redact, workers=workers,
            engine=engine, ray_address=ray_address, headings=headings, **loader_options,
        )  # fmt: skip

    # -- query -----------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int | None = None,
        where: dict | None = None,
        *,
        mode: str | None = None,
        expand: int | None = None,
        budget: int | None = None,
        count_tokens=None,
        fusion: str | None = None,
    ) -> list[Hit]:
        """The chunks that best match ``query``, best first (see ``ingest/retrieval.py``).

        Each ``Hit`` has ``.text``, ``.score`` (cosine) and ``.metadata`` (``source`` as
        given, ``page`` for PDFs, ``start_index``, ...). ``where`` filters on metadata in
        Chroma's syntax, e.g. ``{"source": "guide.pdf"}``. ``mode`` is ``"hybrid"`` (BM25
        and embeddings fused) or ``"dense"``; ``fusion`` is hybrid's: ``"convex"`` (normalised
        scores, equal weights) or ``"rrf"`` (reciprocal rank); ``expand`` widens each
        match to that many neighbouring chunks each side; with ``budget`` and
        ``count_tokens(text)``, hits fill ``budget`` tokens instead of being ``k``.
        Defaults: ``LLMMagics.retrieval``, ``.fusion``, ``.expand`` and ``.k``.
        """
        from . import retrieval

        s = config.settings()
        k = k or s.k
        if self.store.count() == 0:
            raise UsageError(f"Collection {self.collection!r} is empty. Add documents first: %ingest PATH --collection {self.collection}")
        mode = mode or getattr(s, "retrieval", "hybrid")
        if mode not in ("hybrid", "dense"):
            raise UsageError(f"Retrieval mode must be hybrid or dense, not {mode!r}.")
        fusion = fusion or getattr(s, "fusion", "convex")
        if fusion not in retrieval.FUSIONS:
            raise UsageError(f"Fusion must be convex or rrf, not {fusion!r}.")
        settings = retrieval.RetrievalSettings(mode=mode, fusion=fusion, expand=getattr(s, "expand", 0) if expand is None else int(expand), budget=budget if count_tokens is not None else None)
        hits = retrieval.search(self, query, k, where, settings, count_tokens)
        return [Hit(h.text, h.score, _public(h.metadata), h.id) for h in hits]

    def _hidden_versions(self) -> list[str]:  # kept for retrieval.py
        return self.manifest.hidden_versions()

    # -- housekeeping ----------------------------------------------------------

    def delete(self, source: str) -> int:
        """Remove a source (or every source under a folder); returns how many chunks went."""
        manifest = self.store.manifest()
        target = os.path.abspath(source) if not _is_url(source) else source
        keys = [k for k, e in manifest.items() if k == target or e.get("source") == source or k.startswith(target.rstrip(os.sep) + os.sep)]
        if not keys:
            known = ", ".join(sorted({e.get("source", k) for k, e in manifest.items()})[:10]) or "(none)"
            raise UsageError(f"No source {source!r} in collection {self.collection!r}. Sources: {known}.")
        removed = 0
        for key in keys:
            self.manifest.hide(key)  # search drops it first
            removed += self.manifest.forget(key)
        return removed

    def sources(self) -> list[str]:
        """The sources in the collection, as they were given."""
        return sorted({e.get("source", k) for k, e in self.store.manifest().items() if e.get("version")})

    def stats(self) -> dict:
        """Collection, store, embedder, dimension, source and chunk counts."""
        info = self.store.info()
        manifest = self.store.manifest()
        return {
            "collection": self.collection,
            "store": self.store.name,
            "path": getattr(self.store, "path", None),
            "embedder": info.get("embedder") or self._embedder_name or config.settings().embedder,
            "dimension": info.get("dimension"),
            "sources": sum(1 for e in manifest.values() if e.get("version")),
            "chunks": self.store.count(),
            "unfinished": sum(1 for e in manifest.values() if not Manifest.settled(e)),
        }

    def copy_to(self, store: "str | VectorStore", store_options: dict | None = None, collection: str | None = None, *, progress: bool | None = None) -> "Index":
        """Copy this collection (vectors, texts, metadata, ids and manifest; nothing is
        re-embedded) into another store, e.g. ``copy_to("chroma", {"url": "http://127.0.0.1:8000"})``.
        Safe to re-run or interrupt (see transfer.py); returns the target ``Index``."""
        from .transfer import copy_index

        return copy_index(self, store, store_options, collection, progress=progress)

    def drop(self) -> None:
        """Delete the whole collection."""
        from . import retrieval

        retrieval.forget(self.store)
        self.store.drop()
        self._checked = False

    def __repr__(self) -> str:
        return f"<Index {self.collection!r} store={self.store.name!r} chunks={self.store.count()}>"


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _is_url(source: str) -> bool:
    from .loaders import scheme_of

    return scheme_of(source) is not None


def _public(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if not k.startswith("_")}
