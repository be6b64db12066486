"""``Manifest``: the crash-safety protocol of ingest, in one place.

Each source (a file, or a URL with its query) has a manifest entry in the store, keyed by
the loader's ``source_key``. A source is written in steps, and each step leaves the
collection consistent:

1. ``begin``: the entry records the new version as *pending* (its chunks are hidden from search);
2. the caller upserts the new chunks in batches, tagged with ``tag`` (ids from a content hash);
3. ``commit``: one manifest write makes the new version the committed one and the old ones *stale*;
4. ``forget``: the stale chunks are deleted, and the entry forgets them.

Deleting a source is ``hide`` (every version stale, so search drops it at once) then
``forget``. A crash or KeyboardInterrupt between any two steps leaves only hidden chunks
behind, and running the same ``add`` again finishes the job, reusing what was already
embedded. ``hidden_versions`` lists what search must not see, so it never sees half a file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stores import VectorStore

#: Chunk metadata the manifest adds for itself; search results do not show it.
KEY, VERSION = "_key", "_version"


class Manifest:
    """The store's manifest (source key -> entry) and the steps that change it."""

    def __init__(self, store: "VectorStore"):
        self.store = store

    # -- reading ---------------------------------------------------------------

    def entries(self) -> dict[str, dict]:
        return self.store.manifest()

    @staticmethod
    def settled(entry: dict) -> bool:
        """A committed version and nothing half-written or left to delete."""
        return bool(entry.get("version")) and not entry.get("pending") and not entry.get("stale")

    @staticmethod
    def versions(entry: dict) -> list[str]:
        return [v for v in (entry.get("version"), entry.get("pending"), *entry.get("stale", [])) if v]

    def hidden_versions(self) -> list[str]:
        """Versions search must not return: pending (being written) or stale (being removed)."""
        hidden = []
        for entry in self.entries().values():
            hidden.extend(v for v in (entry.get("pending"), *entry.get("stale", [])) if v)
        return hidden

    @staticmethod
    def tag(metadata: dict, key: str, version: str) -> dict:
        """Chunk metadata with the source key and version the protocol needs (step 2)."""
        return {**metadata, KEY: key, VERSION: version}

    # -- the steps ---------------------------------------------------------------

    def touch(self, key: str, entry: dict, fingerprint: str) -> None:
        """The same content under a new fingerprint (a touched file): remember the fingerprint only."""
        self.store.set_manifest(key, {**entry, "fingerprint": fingerprint})

    def begin(self, key: str, source: str, version: str, old: dict | None) -> list[str]:
        """Step 1: ``version`` is pending and hidden; the old version (if any) stays the committed one.

        Returns the versions that become stale once this one is committed.
        """
        old = old or {}
        stale = [v for v in self.versions(old) if v != version]
        self.store.set_manifest(key, {**old, "source": source, "version": old.get("version"), "pending": version, "stale": stale})
        return stale

    def commit(self, key: str, version: str, stale: list[str], **entry) -> None:
        """Step 3: ``version`` is the committed one (``entry``: source, fingerprint, chunks); ``stale`` stay hidden."""
        self.store.set_manifest(key, {**entry, "version": version, "pending": None, "stale": stale})

    def hide(self, key: str) -> dict:
        """Delete, step 1: every version of ``key`` stale, so search drops the source at once."""
        entry = self.entries()[key]
        self.store.set_manifest(key, {**entry, "version": None, "pending": None, "stale": self.versions(entry)})
        return entry

    def forget(self, key: str, keep: str | None = None) -> int:
        """Step 4: delete every chunk of ``key`` but version ``keep``; the entry then forgets them
        (no ``keep``: the entry goes too). Returns how many chunks were deleted."""
        ids = [r["id"] for r in self.store.get(where={KEY: key}) if keep is None or r["metadata"].get(VERSION) != keep]
        self.store.delete(ids)
        if keep is None:
            self.store.set_manifest(key, None)
        else:
            self.store.set_manifest(key, {**self.entries()[key], "stale": []})
        return len(ids)
