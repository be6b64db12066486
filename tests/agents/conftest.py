"""Fixtures for the agent tests: a real SQLite database, the real SmolLM2 backend, a scripted
backend plugin (for the loop's failure paths, where a real model cannot be made to fail on cue),
and llama.cpp's server with a chat format that supports function calling."""

from __future__ import annotations

import importlib.util
import sqlite3
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import httpx
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def planets_db(tmp_path) -> str:
    """A SQLite file with the eight planets (NASA fact sheet) and the first ten elements; its URL."""
    path = tmp_path / "planets.db"
    with sqlite3.connect(path) as connection:
        connection.executescript((DATA / "planets.sql").read_text())
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def smollm2_backend():
    """The local backend on SmolLM2-135M-Instruct (loaded once per session)."""
    from llm_magics.backends import get_model

    backend = get_model("smollm2")
    backend.runtime_model  # load now, not inside the first timed step
    return backend


@pytest.fixture
def scripted():
    """A backend plugin named ``scripted`` whose replies the test enqueues: ``scripted.replies.append(text)``.

    It also records the messages of every call in ``scripted.calls``. Registered through the
    ``register_backends`` hook like any backend, removed after the test.
    """
    from llm_magics import hookimpl, plugins
    from llm_magics.backends import Backend

    class ScriptedBackend(Backend):
        name = "scripted"
        replies: deque = deque()
        calls: list = []

        def stream(self, messages, params, usage):
            type(self).calls.append([dict(m) for m in messages])
            text = type(self).replies.popleft() if type(self).replies else "Final Answer: (no script left)"
            usage.completion_tokens = len(text.split())
            usage.finish_reason = "stop"
            yield text

    ScriptedBackend.replies, ScriptedBackend.calls = deque(), []

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register(ScriptedBackend)

    plugins.register(Plugin(), "scripted-backend")
    try:
        yield ScriptedBackend
    finally:
        plugins.unregister("scripted-backend")


@pytest.fixture(scope="session")
def function_calling_server(tmp_path_factory):
    """llama.cpp's server (llama-cpp-python) on SmolLM2 with ``chatml-function-calling``, on loopback."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: run scripts/install_llama_server.sh .venv (CI does)")
    import socket

    from llm_magics import models

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path_factory.mktemp("llama-fc") / "server.log"
    args = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(models.resolve("smollm2").path),
        "--model_alias", "smollm2", "--chat_format", "chatml-function-calling",
        "--host", "127.0.0.1", "--port", str(port), "--n_threads", "2", "--n_ctx", "4096", "--verbose", "false",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not answer within 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
