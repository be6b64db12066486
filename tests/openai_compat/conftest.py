"""Real servers on loopback for the openai backend.

``llama_server`` runs llama.cpp's server (the PyPI package ``llama-cpp-python[server]``,
installed by ``scripts/install_llama_server.sh``) on the default SmolLM2 GGUF, once per
session; in ``--embedding`` mode one server answers both chat and embeddings. ``scripted_server`` is a stdlib HTTP server in a
thread whose answers a test writes, for what llama.cpp never does on cue: 429s, 5xx,
stalls and OpenAI's own 404 for an unknown model.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import httpx
import pytest

from llm_magics import config

MODEL_ALIAS = "smollm2"
INSTALL = "run scripts/install_llama_server.sh .venv (CI does)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    return free_port()


@dataclass
class LlamaServer:
    base_url: str  # ends in /v1
    api_key: str | None
    model: str
    model_path: Path
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]


def _start_llama_server(tmp: Path, name: str, api_key: str | None, *extra: str) -> LlamaServer:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(f"llama-cpp-python is not installed, so there is no real OpenAI-compatible server: {INSTALL}")
    from llm_magics import models

    model_path = models.resolve("smollm2").path
    port = free_port()
    log_path = tmp / f"{name}.log"
    args = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", "1", "--n_threads_batch", "1", "--n_ctx", "2048", "--verbose", "false",
        *extra,
    ]  # fmt: skip
    if api_key:
        args += ["--api_key", api_key]
    log = log_path.open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", api_key, MODEL_ALIAS, model_path, process, log_path)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.base_url}/models", headers=headers, timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"llama_cpp.server did not answer within 120 s:\n{server.log_tail()}")
        time.sleep(0.2)


def _stop(server: LlamaServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama.cpp's server with SmolLM2 behind an API key, for chat and (``--embedding``) embeddings."""
    key = "sk-test-" + secrets.token_hex(12)
    server = _start_llama_server(tmp_path_factory.mktemp("llama"), "llama", key, "--embedding", "true")
    yield server
    _stop(server)


@pytest.fixture
def openai_settings(monkeypatch):
    """Settings and environment without any OpenAI configuration; tests set what they need."""
    from llm_magics.openai_compat.settings import OpenAICompat

    s = config.section(OpenAICompat)
    monkeypatch.setattr(s, "base_url", "")
    monkeypatch.setattr(s, "api_key", "")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return s


# ---------------------------------------------------------------------------
# A scripted stdlib HTTP server
# ---------------------------------------------------------------------------


@dataclass
class Seen:
    """One request the scripted server received."""

    method: str
    path: str
    headers: dict
    body: dict | None
    at: float  # time.monotonic() on arrival


class ScriptedHandler(BaseHTTPRequestHandler):
    """Hands each request to ``server.respond(handler, seen)``, with helpers to answer."""

    protocol_version = "HTTP/1.1"
    scripted: "ScriptedServer"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, dict(self.headers), json.loads(raw) if raw else None, time.monotonic())
        self.scripted.requests.append(seen)
        self.seen = seen
        try:
            self.scripted.respond(self, seen)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up (a timeout or an interrupt under test)

    do_GET = do_POST = _handle

    def log_message(self, *args) -> None:
        pass

    def json(self, status: int, data, headers: dict | None = None) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body)

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")  # no length: the end of the body is the close
        self.close_connection = True
        self.end_headers()

    def event(self, data) -> None:
        self.wfile.write(b": ping\n\n")  # SSE comments; clients skip them
        self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def chat(self, pieces: list[str], finish_reason: str = "stop", usage: dict | None = None) -> None:
        """A chat completion as OpenAI sends it: streamed (usage in a last choice-less chunk) or whole."""
        if not (self.seen.body or {}).get("stream"):
            message = {"role": "assistant", "content": "".join(pieces)}
            return self.json(200, {"choices": [{"index": 0, "message": message, "finish_reason": finish_reason}], "usage": usage})
        self.start_sse()
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            self.event({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": finish_reason if last else None}]})
        if usage:
            self.event({"choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


@dataclass
class ScriptedServer:
    """Answers each request with ``respond(handler, seen)``; records every request."""

    respond: Callable[[ScriptedHandler, Seen], None]
    requests: list[Seen] = field(default_factory=list)
    httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def chats(self) -> list[Seen]:
        """The chat-completion requests (not /models or tokenizer probes)."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def gaps(self) -> list[float]:
        """Seconds between consecutive chat-completion requests."""
        return [b.at - a.at for a, b in zip(self.chats, self.chats[1:])]


@pytest.fixture
def scripted_server():
    """``scripted_server(respond)`` starts one on a free loopback port; all stop after the test."""
    started: list[ScriptedServer] = []

    def start(respond) -> ScriptedServer:
        server = ScriptedServer(respond)
        handler = type("Handler", (ScriptedHandler,), {"scripted": server})
        server.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.httpd.daemon_threads = True
        threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.httpd.shutdown()
        server.httpd.server_close()
