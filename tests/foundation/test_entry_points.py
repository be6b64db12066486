"""Third-party plugins found through real entry points (a dist-info folder on sys.path)."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from llm_magics import plugins, registry


def make_distribution(root, name, module, body, entry=None):
    """Write an installed distribution (module + dist-info with entry_points.txt) under ``root``."""
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"  # as wheels name it (PEP 427)
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[llm_magics]\n{entry or module} = {module}\n")
    importlib.invalidate_caches()  # the metadata finder caches folder listings by mtime


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reset()
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("lmtest_")]:
        del sys.modules[name]
    monkeypatch.undo()
    plugins.reset()


GOOD = """
from llm_magics import hookimpl
from llm_magics.ingest.splitters import Splitter

class Halves(Splitter):
    name = "halves"

    def spans(self, text, metadata):
        mid = len(text) // 2
        return [(0, mid), (mid, len(text))]

@hookimpl
def register_splitters(register):
    register(Halves)
"""


def test_entry_point_plugin_is_loaded_and_its_source_recorded(site):
    make_distribution(site, "lmtest-good", "lmtest_good", GOOD)
    assert "halves" in registry.names("splitter")
    info = plugins.info["lmtest_good"]
    assert info.source == "entry point lmtest-good 1.0"
    assert info.hooks == ["register_splitters"]
    assert registry.entries("splitter")["halves"].plugin == "lmtest_good"
    from llm_magics import Document

    chunks = list(registry.get("splitter", "halves")().split([Document("abcdefgh", {"source": "x"})]))
    assert [(c.text, c.metadata["start_index"]) for c in chunks] == [("abcd", 0), ("efgh", 4)]


def test_broken_import_is_reported_by_name_and_the_rest_load(site):
    make_distribution(site, "lmtest-good", "lmtest_good", GOOD)
    make_distribution(site, "lmtest-broken", "lmtest_broken", "import does_not_exist_anywhere\n")
    assert "halves" in registry.names("splitter")
    assert "No module named 'does_not_exist_anywhere'" in plugins.errors["lmtest_broken"]
    assert "lmtest_good" not in plugins.errors


def test_load_plugins_variable_limits_which_entry_points_load(site, monkeypatch):
    make_distribution(site, "lmtest-good", "lmtest_good", GOOD)
    monkeypatch.setenv("LLM_MAGICS_LOAD_PLUGINS", "")
    assert "halves" not in registry.names("splitter")
    assert "llm_magics.models.builtin" in plugins.info  # built-ins always load
    plugins.reset()
    monkeypatch.setenv("LLM_MAGICS_LOAD_PLUGINS", "lmtest_good, other")
    assert "halves" in registry.names("splitter")


def test_unknown_hook_name_in_a_plugin_is_reported(site):
    make_distribution(site, "lmtest-typo", "lmtest_typo", """
        from llm_magics import hookimpl

        @hookimpl
        def register_loaderz(register):
            pass
    """)
    plugins.load_plugins()
    assert "register_loaderz" in plugins.errors["lmtest_typo"]
