"""Ingest: documents in, searchable chunks out.

``loaders/`` read sources into ``Document``s, ``splitters/`` cut them into ``Chunk``s,
``embedders/`` turn chunks into vectors and ``stores/`` keep them. ``index.py`` holds
``Index`` (open, add, search, delete, stats); ``report.py`` the ``IngestReport``.
"""
