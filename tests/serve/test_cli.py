"""``llm-magics`` on the command line: real processes, the real models, exit codes and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import llm_magics

pytestmark = pytest.mark.slow

DEMO_DATA = Path(llm_magics.__file__).parent / "demo" / "data"


def cli(*args: str, cwd: Path, check: int | None = 0) -> subprocess.CompletedProcess:
    """Run ``llm-magics ARGS`` in ``cwd``, as a user's shell would (the console script's module)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([sys.executable, "-m", "llm_magics.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check is not None:
        assert out.returncode == check, (out.returncode, out.stdout[-2000:], out.stderr[-2000:])
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A project folder with the demo documents ingested through the command line."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "pyproject.toml").write_text('[tool.llm_magics]\ncollection = "demo"\nprogress = false\n', encoding="utf-8")
    out = cli("ingest", str(DEMO_DATA), "--recursive", "--json", cwd=folder)
    data = json.loads(out.stdout)
    assert data["collection"] == "demo" and data["stats"]["chunks"] > 0
    return folder


def test_ingest_is_idempotent_and_prints_text(workdir):
    out = cli("ingest", str(DEMO_DATA), "--recursive", cwd=workdir)
    assert "unchanged" in out.stdout and "Traceback" not in out.stderr


def test_ask_json(workdir):
    out = cli("ask", "Who gives the laser safety training?", "--max-tokens", "32", "--json", cwd=workdir)
    answer = json.loads(out.stdout)
    assert answer["answer"].strip() and any(s["source"].endswith("safety.pdf") for s in answer["sources"])


def test_ask_streams_text_and_lists_sources(workdir):
    out = cli("ask", "How many nodes does the Heron GPU cluster have?", "--max-tokens", "24", cwd=workdir)
    assert "[1]" in out.stdout and "cluster.html" in out.stdout


def test_chain_saved_by_one_process_runs_in_another(workdir):
    code = ("from llm_magics import Chain; Chain.define('shout', "
            "'- prompt: \"Repeat in capitals: {{ text }}\"\\n- llm: {max_tokens: 8}')")
    subprocess.run([sys.executable, "-c", code], cwd=workdir, check=True, timeout=120)
    assert "shout" in cli("chain", "list", cwd=workdir).stdout
    run = json.loads(cli("chain", "run", "shout", "--input", "text=hello", "--json", cwd=workdir).stdout)
    assert run["chain"] == "shout" and run["output"].strip()
    assert "Repeat in capitals" in cli("chain", "show", "shout", cwd=workdir).stdout


def test_models_json(workdir):
    rows = json.loads(cli("models", "--json", cwd=workdir).stdout)
    assert any("smollm2-135m-instruct" in json.dumps(r) for r in rows)


@pytest.mark.parametrize(
    "args, message",
    [
        (["ask"], "Ask a question"),
        (["ingest"], "Name what to ingest"),
        (["ingest", str(DEMO_DATA), "--chunk-size", "many"], "invalid int value"),
        (["chain", "run", "nope"], "No chain 'nope'"),
        (["ask", "what?", "--chain-type", "nonsense"], "nonsense"),
        (["install", "no-such-model"], "no-such-model"),
        (["frobnicate"], "no command 'frobnicate'"),
    ],
)
def test_errors_are_one_line_and_exit_2(workdir, args, message):
    out = cli(*args, cwd=workdir, check=2)
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_help_uses_the_magics_parser(workdir):
    out = cli("ingest", "--help", cwd=workdir)
    assert "usage: llm-magics ingest" in out.stdout and "--chunk-size" in out.stdout
    assert "--chain-type" in cli("ask", "--help", cwd=workdir).stdout
