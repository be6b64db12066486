"""The extension in a real InteractiveShell: load, help, %llm, settings, errors, unload."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.error import UsageError as IPythonUsageError

MAGICS = {"line": {"llm", "ingest", "ask", "chain", "attnviz"}, "cell": {"ask", "chain"}}


def test_load_ext_registers_every_magic(ip):
    for kind, names in MAGICS.items():
        assert names <= set(ip.magics_manager.magics[kind]), kind


def test_unload_removes_them(ip):
    ip.run_cell("%unload_ext llm_magics").raise_error()
    for kind, names in MAGICS.items():
        assert not names & set(ip.magics_manager.magics[kind])
    ip.run_cell("%load_ext llm_magics").raise_error()
    assert "ask" in ip.magics_manager.magics["cell"]


@pytest.mark.parametrize("magic", sorted(MAGICS["line"]))
def test_every_magic_has_argument_help(ip, magic):
    doc = ip.magics_manager.magics["line"][magic].__doc__
    usage = doc.lstrip(": \n")
    assert usage.startswith(f"%{magic} "), usage[:80]
    assert "options:" in doc or "positional arguments:" in doc


def test_llm_lists_models_and_plugins(ip):
    listing = ip.run_cell("%llm models").result
    names = [row[0] for row in listing]
    assert "smollm2-135m-instruct" in names and "all-minilm-l6-v2" in names
    plugins = ip.run_cell("%llm plugins").result
    assert ["llm_magics.models.builtin", "builtin", "register_models", "ok"] in plugins.rows
    assert "<table>" in plugins._repr_html_()


def test_llm_size(ip):
    report = ip.run_cell("%llm size --layers 96 --heads 96 --head-dim 128").result
    assert 174.5e9 < report.total < 175.5e9
    assert "698.4 GB" in report.table()


def test_user_mistakes_are_one_line_usage_errors(ip):
    result = ip.run_cell("%llm colours")
    assert isinstance(result.error_in_exec, IPythonUsageError)
    assert "No %llm command 'colours'. Known:" in str(result.error_in_exec)


def test_config_magic_changes_settings(ip):
    from llm_magics import config

    ip.run_cell('%config LLMMagics.k = 7').raise_error()
    assert config.settings().k == 7
    settings = ip.run_cell("%llm settings").result
    assert ["k", "7"] in settings.rows


def test_api_key_is_never_shown(ip):
    ip.run_cell('%config OpenAICompat.api_key = "sk-secret-123"').raise_error()
    listing = ip.run_cell("%llm settings").result
    assert "sk-secret-123" not in str(listing) and ["OpenAICompat.api_key", "***"] in listing.rows


def test_a_plugin_owns_its_settings_section(ip, tmp_path, monkeypatch):
    """The openai plugin's settings live in its OpenAICompat section: %config before the plugin
    loads, pyproject sub-tables, the %config listing, and the old LLMMagics names forwarded."""
    from llm_magics import config
    from llm_magics.errors import UsageError
    from llm_magics.openai_compat.settings import OpenAICompat, current

    assert not any(k.startswith("openai") for k in config.LLMMagics.class_own_traits())  # the core names none
    config.use(config.settings())  # drop sections made by earlier tests: the next use makes them anew
    ip.run_cell('%config OpenAICompat.timeout = 7.5').raise_error()  # before the section exists
    assert current().timeout == 7.5 and current() is config.section(OpenAICompat)
    assert "OpenAICompat" in [type(c).__name__ for c in ip.configurables]  # so %config OpenAICompat lists it
    ip.run_cell('%config OpenAICompat.timeout = 9').raise_error()  # after: the instance updates
    assert current().timeout == 9.0
    with pytest.warns(DeprecationWarning, match=r"moved: use %config OpenAICompat.base_url"):
        ip.run_cell('%config LLMMagics.openai_base_url = "http://127.0.0.1:9/v1"').raise_error()
    assert current().base_url == "http://127.0.0.1:9/v1"

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.llm_magics]\nk = 5\n\n[tool.llm_magics.OpenAICompat]\ncontext-window = 2048\ntimeout = 3\n')
    config.use(config.settings())
    config.apply_pyproject(config.settings())  # sub-tables are skipped by the core ...
    section = current()  # ... and read by the section: pyproject below %config (timeout stays 9)
    assert (section.context_window, section.timeout) == (2048, 9.0)
    (tmp_path / "pyproject.toml").write_text("[tool.llm_magics.OpenAICompat]\ncolour = 1\n")
    config.use(config.settings())
    with pytest.raises(UsageError, match=r"Unknown setting 'colour' in \[tool.llm_magics.OpenAICompat\]. Known: api_key, base_url"):
        current()
    (tmp_path / "pyproject.toml").write_text('[tool.llm_magics]\nopenai_embedding_model = "e5"\n')
    config.use(config.settings())
    with pytest.warns(DeprecationWarning, match="OpenAICompat.embedding_model"):
        config.apply_pyproject(config.settings())
    assert current().embedding_model == "e5"
    config.use(config.settings())


def test_a_third_party_plugin_registers_its_settings(ip):
    """The register_settings hook: the section is listed by %llm settings (keys masked) and set by %config."""
    from traitlets import Unicode
    from traitlets.config import Configurable

    from llm_magics import config, hookimpl, plugins

    class Weather(Configurable):
        """Settings of a weather tool."""

        units = Unicode("metric", help="metric or imperial.").tag(config=True)
        service_key = Unicode("", help="Never shown.").tag(config=True)

    class Plugin:
        @hookimpl
        def register_settings(register):
            register(Weather)

    name = plugins.register(Plugin, "weather-settings")
    try:
        ip.run_cell('%config Weather.units = "imperial"').raise_error()
        ip.run_cell('%config Weather.service_key = "wk-secret"').raise_error()
        listing = ip.run_cell("%llm settings").result
        assert ["Weather.units", "'imperial'"] in listing.rows and ["Weather.service_key", "***"] in listing.rows
        assert config.section(Weather).units == "imperial" and "wk-secret" not in str(listing)
        assert ["weather-settings", "registered at runtime", "register_settings", "ok"] in ip.run_cell("%llm plugins").result.rows
    finally:
        plugins.unregister(name)


def test_pyproject_settings_next_to_the_notebook(tmp_path, monkeypatch):
    from llm_magics import config
    from llm_magics.errors import UsageError

    (tmp_path / "pyproject.toml").write_text('[tool.llm_magics]\nk = 9\nchain-type = "refine"\n')
    s = config.LLMMagics()
    config.apply_pyproject(s, tmp_path)
    assert (s.k, s.chain_type) == (9, "refine")
    (tmp_path / "pyproject.toml").write_text("[tool.llm_magics]\ncolour = 1\n")
    with pytest.raises(UsageError, match="Unknown setting 'colour'"):
        config.apply_pyproject(config.LLMMagics(), tmp_path)


def test_pyproject_is_read_when_the_extension_loads(tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    from llm_magics import config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.llm_magics]\nmodel = "openai:gpt-4o-mini"\n')
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext llm_magics").raise_error()
    try:
        assert config.settings().model == "openai:gpt-4o-mini"
    finally:
        shell.run_cell("%unload_ext llm_magics")
        config.use(None)


def test_import_and_load_ext_do_not_import_heavy_packages():
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import llm_magics\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_cell('%load_ext llm_magics').raise_error()\n"
        "shell.run_cell('%llm plugins').raise_error()\n"
        "heavy = [m for m in ('torch', 'chromadb', 'transformers', 'tokenizers', 'spacy', 'ray', 'lancedb') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
