"""Fixtures for the HTTP server tests: the demo documents in a real Chroma collection."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import llm_magics

DEMO_DATA = Path(llm_magics.__file__).parent / "demo" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """The demo documents ingested once (real MiniLM, real Chroma); returns the store folder."""
    from llm_magics import Index, config

    folder = tmp_path_factory.mktemp("serve-store")
    s = config.LLMMagics()
    s.store_path = str(folder / "store")
    s.progress = False
    config.use(s)
    try:
        Index("demo").add([str(DEMO_DATA)], recursive=True)
    finally:
        config.use(None)
    return folder / "store"


@pytest.fixture
def settings(demo_store):
    """Default settings pointing at the demo store; the chains defined in a test are removed after it."""
    from llm_magics import chain, config

    s = config.LLMMagics()
    s.store_path = str(demo_store)
    s.collection = "demo"
    s.progress = False
    config.use(s)
    yield s
    chain.clear()
    config.use(None)


@pytest.fixture
def port():
    return free_port()
