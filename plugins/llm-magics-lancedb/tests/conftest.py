import os

import pytest

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def fresh_settings():
    """Each test starts from default settings (another test may have changed them)."""
    from llm_magics import config

    config.use(None)
    yield
    config.use(None)


@pytest.fixture(autouse=True, scope="module")
def clean_shell():
    """The tests share IPython's one shell; other suites may have left %config values in it."""
    from IPython.core.interactiveshell import InteractiveShell

    if InteractiveShell.initialized():
        InteractiveShell.instance().config.pop("LLMMagics", None)
    yield


@pytest.fixture
def ip(tmp_path, monkeypatch):
    """A real InteractiveShell with llm_magics loaded, in a fresh folder."""
    from IPython.core.interactiveshell import InteractiveShell

    from llm_magics import config

    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext llm_magics").raise_error()
    try:
        yield shell
    finally:
        shell.run_cell("%unload_ext llm_magics")
        config.use(None)
