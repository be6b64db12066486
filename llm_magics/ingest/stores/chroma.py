"""``chroma``: embedded, persistent Chroma under the ``store_path`` setting (the default store),
or a Chroma server (``chroma run``) with the ``url`` (or ``host``/``port``) option.

Vectors always come from our embedder and are passed explicitly, so chromadb's default
embedding function (which downloads a model, and fails offline) is never used. The
collection is still created with our own embedding function, registered with chromadb
under the name ``llm_magics``, so raw ``chromadb`` code that opens the collection and
queries by text embeds with the same model instead of the default one.

HNSW is set explicitly rather than left to chromadb's defaults: cosine space (the default
is l2), ``ef_construction`` 200 and ``ef_search`` 128 (defaults 100 and 100), for recall
close to exact search. The manifest lives next to Chroma's files in a small SQLite
table, so each entry is written atomically.

Client/server: ``store_options={"url": "http://127.0.0.1:8000"}`` (``--store-option url=...``)
talks to a server through chromadb's ``HttpClient``; ``headers`` and ``token`` go with every
request. The token is sent the way Chroma's token authentication reads it: ``Authorization:
Bearer TOKEN`` (its default), or ``X-Chroma-Token: TOKEN`` with ``token_header=X-Chroma-Token``
for a server started with ``CHROMA_AUTH_TOKEN_TRANSPORT_HEADER=X-Chroma-Token``. Chroma's Python
server checks tokens (``uvicorn chromadb.app:app`` with ``CHROMA_SERVER_AUTHN_PROVIDER=
chromadb.auth.token_authn.TokenAuthenticationServerProvider`` and ``CHROMA_SERVER_AUTHN_CREDENTIALS``,
tested); ``chroma run`` of chromadb 1.x, its Rust frontend, has no auth provider and checks none.
A refused token is a UsageError that says which option to set. The manifest then lives on the server too, one record per source in the
``llm_magics_manifest`` collection (a single upsert per entry, so still atomic), so every
client sees the same manifest and the crash-safety protocol holds across machines.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
from typing import Literal, Sequence

from pydantic import Field

from ...errors import UsageError

from ..documents import Hit
from ...extension import Options
from ...hookspecs import hookimpl
from .base import VectorStore, Where, check_collection_name

INFO_PREFIX = "llm_magics:"
MANIFEST_FILE = "llm_magics_manifest.sqlite3"
#: On a server: the collection holding every collection's manifest entries.
MANIFEST_COLLECTION = "llm_magics_manifest"
#: Collection metadata key holding the user's own name when Chroma's differs (see chroma_name).
NAME_KEY = "name"

_CHROMA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def chroma_name(name: str) -> str:
    """The name Chroma stores a collection under: the user's own when Chroma accepts it
    (3-63 of [A-Za-z0-9._-], alphanumeric ends, no "..", not an IPv4 address), otherwise a
    readable prefix and a hash of the whole name, so the same name always maps to the same
    collection: ``jl`` -> ``jl-1b2a3c4d``. The user's name is kept in the metadata."""
    if _CHROMA_NAME.match(name) and ".." not in name and not _IPV4.match(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    prefix = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "-", name))[:54].strip("._-")
    return f"{prefix}-{digest}" if prefix else f"c-{digest}"

_clients: dict[str, object] = {}
_lock = threading.RLock()
_ef_class = None


def embedding_function_class():
    """Our chromadb EmbeddingFunction, defined and registered with chromadb on first use."""
    global _ef_class
    if _ef_class is not None:
        return _ef_class
    from chromadb.api.types import Documents, EmbeddingFunction
    from chromadb.utils.embedding_functions import register_embedding_function

    class LLMMagicsEmbeddingFunction(EmbeddingFunction[Documents]):
        """Embeds with an llm-magics embedder (by registered name), loaded on first call."""

        def __init__(self, embedder: str):
            self.embedder_name = embedder
            self._embedder = None

        def __call__(self, input: Documents):
            if self._embedder is None:
                from ..embedders import get_embedder

                self._embedder = get_embedder(self.embedder_name)
            return [v for v in self._embedder.embed(list(input))]

        @staticmethod
        def name() -> str:
            return "llm_magics"

        def default_space(self):
            return "cosine"

        def supported_spaces(self):
            return ["cosine", "ip", "l2"]

        @staticmethod
        def build_from_config(config):
            return LLMMagicsEmbeddingFunction(config["embedder"])

        def get_config(self):
            return {"embedder": self.embedder_name}

    register_embedding_function(LLMMagicsEmbeddingFunction)
    _ef_class = LLMMagicsEmbeddingFunction
    return _ef_class


def client(path: str):
    """One embedded ``PersistentClient`` per folder, telemetry off."""
    path = os.path.abspath(path)
    with _lock:
        if path not in _clients:
            import chromadb
            from chromadb.config import Settings

            os.makedirs(path, exist_ok=True)
            _clients[path] = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))
        return _clients[path]


def http_client(url: str, headers: dict[str, str] | None = None):
    """One ``HttpClient`` per server URL and headers; an unreachable server is a UsageError."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"Bad Chroma server url {url!r}: use http://HOST:PORT, e.g. --store-option url=http://127.0.0.1:8000")
    cache_key = json.dumps([url, sorted((headers or {}).items())])
    with _lock:
        if cache_key not in _clients:
            import chromadb
            from chromadb.config import Settings

            port = parts.port or (443 if parts.scheme == "https" else 8000)
            try:
                _clients[cache_key] = chromadb.HttpClient(
                    host=parts.hostname, port=port, ssl=parts.scheme == "https", headers=dict(headers or {}), settings=Settings(anonymized_telemetry=False)
                )
            except Exception as e:  # noqa: BLE001 - chromadb raises ValueError/ConnectError/...: all mean "not there"
                if type(e).__name__ in ("ChromaAuthError", "AuthorizationError"):  # there, but it wants a token
                    raise UsageError(
                        f"The Chroma server at {url} refused the request ({e}): it checks a token. Pass --store-option token=TOKEN "
                        "(store_options={'token': ...}); a server that reads X-Chroma-Token also needs token_header=X-Chroma-Token."
                    ) from None
                raise UsageError(
                    f"Cannot reach a Chroma server at {url} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
                    "Start one with `chroma run --path DIR --host 127.0.0.1 --port PORT`, or fix --store-option url=http://HOST:PORT."
                ) from None
        return _clients[cache_key]


class ChromaOptions(Options):
    url: str | None = Field(None, description="A Chroma server (`chroma run`) instead of the embedded store, e.g. http://127.0.0.1:8000.")
    host: str | None = Field(None, description="Server host (instead of url; with port).")
    port: int | None = Field(None, ge=1, le=65535, description="Server port (instead of url; default 8000).")
    headers: dict[str, str] | None = Field(None, description="HTTP headers sent with every request to the server (e.g. for an auth proxy).")
    token: str | None = Field(None, description="Auth token for a server with Chroma's token authentication.")
    token_header: Literal["Authorization", "X-Chroma-Token"] = Field(
        "Authorization", description="How the token is sent: Authorization: Bearer TOKEN (Chroma's default) or X-Chroma-Token: TOKEN."
    )
    ef_search: int = Field(128, ge=10, description="HNSW candidates examined per query (higher: better recall, slower).")
    ef_construction: int = Field(200, ge=10, description="HNSW candidates examined while building the graph.")
    max_neighbors: int = Field(16, ge=4, description="HNSW links per node (M).")


class ChromaStore(VectorStore):
    """Persistent Chroma (cosine HNSW): embedded under the store_path setting, or a server (url option)."""

    name = "chroma"
    persistent = True
    Options = ChromaOptions

    def __init__(self, collection: str, path: str | None = None, embedder: str | None = None, **options):
        from ... import config

        super().__init__(check_collection_name(collection), path, embedder or config.settings().embedder, **options)
        self.chroma_name = chroma_name(self.collection)  # what Chroma calls it (the manifest keeps the user's name)
        o = self.options
        self.url = o.url or (f"http://{o.host or '127.0.0.1'}:{o.port or 8000}" if o.host or o.port else None)
        self._collection = None
        self._manifest_col = None
        self._db_lock = threading.Lock()
        if self.url:
            sent = {"Authorization": f"Bearer {o.token}", "X-Chroma-Token": o.token}[o.token_header] if o.token else None
            headers = {**(o.headers or {}), **({o.token_header: sent} if sent else {})}
            self.path = self.url.rstrip("/")  # where the data lives (also keys per-store caches)
            self._client = http_client(self.url, headers)
            self._db = None
            return
        self.path = os.path.abspath(path or config.settings().store_path)
        self._client = client(self.path)
        self._db = sqlite3.connect(os.path.join(self.path, MANIFEST_FILE), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # each write still atomic; WAL keeps it safe against crashes
        self._db.execute("CREATE TABLE IF NOT EXISTS manifest (collection TEXT, key TEXT, entry TEXT, PRIMARY KEY (collection, key))")

    @property
    def col(self):
        if self._collection is None:
            ef = embedding_function_class()(self.embedder_name)
            o = self.options
            col = self._client.get_or_create_collection(
                self.chroma_name,
                configuration={
                    "hnsw": {"space": "cosine", "ef_search": o.ef_search, "ef_construction": o.ef_construction, "max_neighbors": o.max_neighbors},
                },
                embedding_function=ef,
            )
            meta = dict(col.metadata or {})
            if self.chroma_name != self.collection and meta.get(NAME_KEY) != self.collection:
                col.modify(metadata={**meta, NAME_KEY: self.collection})  # listings show the user's name
            self._collection = col
        return self._collection

    def batch_size(self) -> int:
        return min(5000, self._client.get_max_batch_size())

    def upsert(self, ids, vectors, texts, metadatas) -> None:
        n = self.batch_size()
        for i in range(0, len(ids), n):
            self.col.upsert(
                ids=list(ids[i : i + n]),
                embeddings=[v for v in vectors[i : i + n]],
                documents=list(texts[i : i + n]),
                metadatas=[_clean(m) for m in metadatas[i : i + n]],
            )

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        n = self.batch_size()
        for i in range(0, len(ids), n):
            self.col.delete(ids=ids[i : i + n])

    def query(self, vector, k: int, where: Where | None = None) -> list[Hit]:
        count = self.col.count()
        if count == 0:
            return []
        res = self.col.query(
            query_embeddings=[vector],
            n_results=min(k, count),
            where=_where(where),
            include=["documents", "metadatas", "distances"],
        )
        return [
            Hit(text or "", 1.0 - float(dist), dict(meta or {}), id_)
            for id_, text, meta, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0])
        ]

    def get(self, where: Where | None = None, ids: Sequence[str] | None = None, vectors: bool = False) -> list[dict]:
        include = ["documents", "metadatas"] + (["embeddings"] if vectors else [])
        out = []
        for res in _pages(self.col, ids=ids, where=_where(where), include=include):
            for i, id_ in enumerate(res["ids"]):
                rec = {"id": id_, "text": res["documents"][i], "metadata": dict(res["metadatas"][i] or {})}
                if vectors:
                    rec["vector"] = res["embeddings"][i]
                out.append(rec)
        return out

    def count(self) -> int:
        return self.col.count()

    def info(self) -> dict:
        meta = self.col.metadata or {}
        return {k[len(INFO_PREFIX) :]: v for k, v in meta.items() if k.startswith(INFO_PREFIX)}

    def set_info(self, info: dict) -> None:
        meta = {k: v for k, v in (self.col.metadata or {}).items() if not k.startswith(INFO_PREFIX)}
        meta.update({INFO_PREFIX + k: v for k, v in info.items()})
        self.col.modify(metadata=meta)

    @property
    def manifest_col(self):
        """The server's manifest collection: id ``collection/key`` (names have no "/"), the entry as the document."""
        if self._manifest_col is None:
            self._manifest_col = self._client.get_or_create_collection(
                MANIFEST_COLLECTION, embedding_function=embedding_function_class()(self.embedder_name)
            )
        return self._manifest_col

    def manifest(self) -> dict[str, dict]:
        if self._db is None:
            pages = _pages(self.manifest_col, where={"collection": self.collection}, include=["documents", "metadatas"])
            return {m["key"]: json.loads(d) for res in pages for d, m in zip(res["documents"], res["metadatas"])}
        with self._db_lock:
            rows = self._db.execute("SELECT key, entry FROM manifest WHERE collection = ?", (self.collection,)).fetchall()
        return {k: json.loads(e) for k, e in rows}

    def set_manifest(self, key: str, entry: dict | None) -> None:
        if self._db is None:
            id_ = f"{self.collection}/{key}"
            if entry is None:
                self.manifest_col.delete(ids=[id_])
            else:  # one record per entry: a single upsert, atomic on the server
                self.manifest_col.upsert(ids=[id_], embeddings=[[1.0]], documents=[json.dumps(entry)], metadatas=[{"collection": self.collection, "key": key}])
            return
        with self._db_lock:
            if entry is None:
                self._db.execute("DELETE FROM manifest WHERE collection = ? AND key = ?", (self.collection, key))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO manifest (collection, key, entry) VALUES (?, ?, ?)",
                    (self.collection, key, json.dumps(entry)),
                )

    def drop(self) -> None:
        try:
            self._client.delete_collection(self.chroma_name)
        except Exception:  # noqa: BLE001 - already gone
            pass
        self._collection = None
        if self._db is None:
            self.manifest_col.delete(where={"collection": self.collection})
            return
        with self._db_lock:
            self._db.execute("DELETE FROM manifest WHERE collection = ?", (self.collection,))

    def hnsw(self) -> dict:
        """The HNSW settings the collection really uses (read back from Chroma)."""
        config = self.col.configuration_json or {}
        return dict(config.get("hnsw") or {})

    def close(self) -> None:
        if self._db is not None:
            with self._db_lock:
                self._db.close()


def _clean(meta: dict) -> dict:
    """Chroma keeps str/int/float/bool values; drop None and stringify the rest."""
    out = {}
    for k, v in meta.items():
        if v is None:
            continue
        out[k] = v if isinstance(v, (str, int, float, bool)) else str(v)
    return out or {"_": 0}


#: Records per read. Chroma 1.x reads with one SQL variable per record, and SQLite allows 32,766:
#: one ``get`` of a bigger collection fails with "too many SQL variables".
PAGE = 5000


def _pages(col, ids: Sequence[str] | None = None, **kwargs):
    """``col.get(...)`` results, PAGE records at a time: by slices of ``ids``, else by limit and offset."""
    if ids is not None:
        ids = list(ids)
        for start in range(0, len(ids), PAGE):
            yield col.get(ids=ids[start : start + PAGE], **kwargs)
        return
    offset = 0
    while True:
        res = col.get(limit=PAGE, offset=offset, **kwargs)
        yield res
        if len(res["ids"]) < PAGE:
            return
        offset += PAGE


def _where(where: Where | None) -> Where | None:
    """Chroma wants one key per filter dict: {'a': 1, 'b': 2} becomes an $and."""
    if not where:
        return None
    if len(where) > 1:
        return {"$and": [{k: v} for k, v in where.items()]}
    ((key, value),) = where.items()
    if key in ("$and", "$or"):
        parts = [w for w in (_where(p) for p in value) if w]
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return {key: parts}
    return where


@hookimpl
def register_vector_stores(register):
    register(ChromaStore)
