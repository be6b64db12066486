"""Fixtures for the widget tests: one headless Chromium per session, a fresh page per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # widget_harness, next to this file

from widget_harness import CHROMIUM, CHROMIUM_ARGS, SOURCES, Harness  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: apt-get install -y chromium (CI installs it)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser(chromium):
    """The session's one Chromium (tests/conftest.py)."""
    return chromium


@pytest.fixture
def harness(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    yield Harness(page)
    context.close()


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct through the runtime, loaded once (the shared loaded-model cache)."""
    from llm_magics.widgets import builders

    return builders.load_model("smollm2")


@pytest.fixture(scope="session")
def rag_generation(smollm2):
    """A real grounded generation with attention captured: (messages, Generation)."""
    context = "\n\n".join(f"[{s['number']}] {s['text']}" for s in SOURCES)
    messages = [
        {"role": "system", "content": "Answer from the sources and cite them like [1]."},
        {"role": "user", "content": f"Sources:\n{context}\n\nQuestion: When was the Eiffel Tower finished?"},
    ]
    generation = smollm2.generate(smollm2.chat_prompt(messages), max_new_tokens=16, capture_attention=True, stream=True)
    "".join(generation)
    return messages, generation


@pytest.fixture
def attn_shell():
    """A real InteractiveShell with the %attnviz magics registered."""
    from IPython.core.interactiveshell import InteractiveShell

    from llm_magics.magics.attnviz import AttnvizMagics

    shell = InteractiveShell.instance()
    shell.register_magics(AttnvizMagics)
    yield shell
    shell.user_ns.pop("_", None)
    shell.user_ns.get("Out", {}).clear()
