"""Every hook is documented in docs/plugin_hooks.md and exercised by a test (as datasette does)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from llm_magics import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = sorted(name for name, fn in vars(hookspecs).items() if inspect.isfunction(fn) and name.startswith("register_"))


def test_there_are_hooks():
    assert {"register_loaders", "register_splitters", "register_embedders", "register_vector_stores", "register_backends", "register_callbacks"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hooks_have_docstrings(hook):
    doc = getattr(hookspecs, hook).__doc__ or ""
    assert "called" in doc.lower() and "return" in doc.lower(), f"{hook}: say when it is called and what it returns"


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hooks_are_documented(hook):
    docs = (ROOT / "docs" / "plugin_hooks.md").read_text()
    section = re.search(rf"^## {hook}\n(.*?)(?=^## |\Z)", docs, re.S | re.M)
    assert section, f"docs/plugin_hooks.md has no '## {hook}' section"
    assert "```python" in section.group(1) and f"def {hook}(register)" in section.group(1), f"{hook}: add a runnable example"


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hooks_have_tests(hook):
    """Some test implements the hook, so it is exercised through the registry."""
    pattern = re.compile(rf"def {hook}\((self, )?register\)")
    sources = [p for p in (ROOT / "tests").rglob("test_*.py")] + [p for p in (ROOT / "plugins").rglob("*.py")]
    assert any(pattern.search(p.read_text(errors="replace")) for p in sources), f"no test implements {hook}"


def test_doc_examples_run_register_and_work(tmp_path):
    """The examples in docs/plugin_hooks.md are real code: run each, call its hook, use what it registers."""
    from llm_magics import Document
    from llm_magics.backends import GenerationParams

    docs = (ROOT / "docs" / "plugin_hooks.md").read_text()
    registered = {}
    for hook in ("register_models", "register_loaders", "register_splitters", "register_embedders", "register_backends", "register_callbacks"):
        section = re.search(rf"^## {hook}\n(.*?)(?=^## |\Z)", docs, re.S | re.M).group(1)
        code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
        namespace: dict = {}
        exec(compile(code, f"docs:{hook}", "exec"), namespace)
        collected = []
        namespace[hook](register=lambda *a, **k: collected.append(a))
        assert collected, hook
        registered[hook] = collected[0]

    rst = tmp_path / "a.rst"
    rst.write_text("Title\n=====\n\nSome text.")
    (doc,) = list(registered["register_loaders"][0]().load(str(rst)))
    assert doc.text.startswith("Title") and doc.metadata["source"] == str(rst)

    chunks = list(registered["register_splitters"][0]().split([Document("One. Two! Three?", {"source": "s"})]))
    assert [c.text for c in chunks] == ["One.", "Two!", "Three?"]

    vectors = registered["register_embedders"][0]().embed(["a b", "b c"])
    assert vectors.shape == (2, 64)

    completion = registered["register_backends"][0]().complete("hello there", GenerationParams())
    assert completion.text == "hello there" and completion.usage.finish_reason == "stop"

    handler = registered["register_callbacks"][0]()
    handler.on_llm_new_token(token="x")
    assert type(handler).tokens == 1


def test_the_register_settings_example_runs():
    from llm_magics import config

    docs = (ROOT / "docs" / "plugin_hooks.md").read_text()
    section = re.search(r"^## register_settings\n(.*?)(?=^## |\Z)", docs, re.S | re.M).group(1)
    namespace: dict = {}
    exec(compile(re.search(r"```python\n(.*?)```", section, re.S).group(1), "docs:register_settings", "exec"), namespace)
    collected = []
    namespace["register_settings"](register=collected.append)
    assert collected == [namespace["Weather"]] and namespace["units"]() == "metric"
    config.section(namespace["Weather"]).units = "imperial"
    assert namespace["units"]() == "imperial"
