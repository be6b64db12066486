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
    ip.run_cell('%config LLMMagics.openai_api_key = "sk-secret-123"').raise_error()
    text = str(ip.run_cell("%llm settings").result)
    assert "sk-secret-123" not in text and "***" in text


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
        "heavy = [m for m in ('torch', 'chromadb', 'transformers', 'tokenizers', 'spacy') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
