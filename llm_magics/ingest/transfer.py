"""``Index.copy_to`` / ``%ingest --copy-to``: move a collection to another store as it is.

Records are copied with their ids, texts, metadata and vectors (nothing is re-embedded),
and the manifest with them, so the target answers the same searches and a later
``%ingest`` against it skips the unchanged sources. Each source goes through the same
protocol as ingest (manifest.py): ``begin`` (the copied version hidden), upsert its chunks,
``commit``, ``forget`` what the target held before. An interrupted copy leaves the target
consistent, and running it again copies only the sources not yet there. Sources the target
holds that the origin does not are kept (copying merges).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import config
from ..errors import UsageError
from .manifest import KEY, VERSION, Manifest

if TYPE_CHECKING:
    from .index import Index
    from .stores import VectorStore

BATCH = 1000  # records per get/upsert round trip
_ENTRY_STEPS = ("version", "pending", "stale")


def copy_index(index: "Index", store: "str | VectorStore", store_options: dict | None = None, collection: str | None = None, *, progress: bool | None = None) -> "Index":
    """Copy ``index``'s committed sources into ``store`` (a name or a ``VectorStore``); returns
    the target ``Index``, whose ``last_copy`` counts sources and chunks copied and unchanged."""
    import numpy as np

    src = index.store
    info = src.info()
    target = type(index)(collection or index.collection, store=store, embedder=info.get("embedder_name"), store_options=store_options)
    dst = target.store
    if type(dst) is type(src) and dst.path == src.path and dst.collection == src.collection and src.persistent:
        raise UsageError(f"--copy-to names the collection itself ({src.name} {src.collection!r}). Name another store (--store-option url=...) or --collection.")
    held = dst.info()
    if held.get("embedder") and info.get("embedder") and held["embedder"] != info["embedder"]:
        raise UsageError(
            f"Target collection {dst.collection!r} in {dst.name} was built with embedder {held['embedder']!r}, not {info['embedder']!r}: "
            "copy into another collection (Index.copy_to(..., collection=NAME) or %ingest --copy-to STORE -c NAME)."
        )
    if info and not held.get("embedder"):
        dst.set_info(info)
    entries = {k: e for k, e in src.manifest().items() if e.get("version")}
    before = dst.manifest()
    todo = {k: e for k, e in entries.items() if not (before.get(k) and Manifest.settled(before[k]) and before[k]["version"] == e["version"])}
    counts = {"sources": 0, "chunks": 0, "unchanged": len(entries) - len(todo)}
    bar = None
    if config.settings().progress if progress is None else progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(int(e.get("chunks") or 0) for e in todo.values()), desc=f"Copying {src.collection} to {dst.name}", unit="chunk", leave=False)
    manifest = Manifest(dst)
    try:
        for key, entry in todo.items():
            version, old = entry["version"], before.get(key)
            stale = manifest.begin(key, entry.get("source", key), version, old)  # 1: hidden until committed
            records = src.get(where={"$and": [{KEY: key}, {VERSION: version}]}, vectors=True)
            for i in range(0, len(records), BATCH):  # 2
                part = records[i : i + BATCH]
                vectors = np.asarray([r["vector"] for r in part], dtype=np.float32)
                dst.upsert([r["id"] for r in part], vectors, [r["text"] for r in part], [r["metadata"] for r in part])
                if bar is not None:
                    bar.update(len(part))
            manifest.commit(key, version, stale, **{k: v for k, v in entry.items() if k not in _ENTRY_STEPS})  # 3
            if old is not None:
                manifest.forget(key, keep=version)  # 4
            counts["sources"] += 1
            counts["chunks"] += len(records)
    finally:
        if bar is not None:
            bar.close()
    target.last_copy = counts
    return target
