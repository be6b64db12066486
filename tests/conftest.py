"""Fixtures every test folder can use: a real IPython shell with the extension loaded."""

from __future__ import annotations

import copy
import os

import pytest

# Keep the tests offline and reproducible: no telemetry, no hub look-ups.
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole session, shared by tests/widgets and tests/frontends.

    Playwright's sync API allows one ``sync_playwright()`` at a time in a thread, so two
    session fixtures that each opened their own would break whichever came second.
    """
    from playwright.sync_api import sync_playwright

    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "widgets"))
    from widget_harness import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def fresh_state():
    """Each test starts from default settings, no conversation memory and no last answer."""
    from llm_magics import config
    from llm_magics.qa import session

    config.use(None)
    yield
    config.use(None)
    session.current().reset()
    from IPython.core.interactiveshell import InteractiveShell

    if InteractiveShell.initialized():  # tests share IPython's one shell: leave it clean
        shell = InteractiveShell.instance()
        shell.reset(new_session=False)
        shell.config.pop("LLMMagics", None)  # %config values outlive %unload_ext in a session


@pytest.fixture
def ip(tmp_path, monkeypatch):
    """A real ``InteractiveShell`` with ``%load_ext llm_magics``, working in a fresh folder.

    ``ip.run_cell(...).raise_error()`` re-raises what the cell raised.
    """
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    saved = copy.deepcopy(shell.config)  # %config writes into the one shell's config: undo it after
    shell.run_cell("%load_ext llm_magics").raise_error()
    try:
        yield shell
    finally:
        shell.run_cell("%unload_ext llm_magics")
        for section in [k for k in shell.config if k not in saved]:
            del shell.config[section]
        shell.config.update(saved)
        from llm_magics import config

        config.use(None)  # the next settings() reads this test's folder afresh


