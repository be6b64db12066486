"""The ``chroma`` store against a real Chroma server (``chroma run`` from the venv, on loopback),
and ``Index.copy_to`` / ``%ingest --copy-to`` from the embedded store to that server.

The server is started once for the module and stopped after it; the vectors come from the
real all-MiniLM-L6-v2 embedder.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from llm_magics import UsageError, config
from llm_magics.ingest.index import Index
from llm_magics.ingest.stores.chroma import MANIFEST_COLLECTION, MANIFEST_FILE
from llm_magics.magics.ingest import parse_options

pytestmark = pytest.mark.server

DOCS = {
    "volcanoes.md": "# Volcanoes\n\nMagma rises through the crust and erupts as lava. Basalt forms when lava cools quickly.",
    "bees.md": "# Honey bees\n\nWorker bees collect nectar and pollen. The queen lays the eggs of the hive.",
    "tides.md": "# Tides\n\nThe Moon's gravity pulls the oceans, so the sea rises and falls twice a day.",
    "compilers.md": "# Compilers\n\nA parser turns source code into a syntax tree; the backend emits machine code.",
}
QUESTIONS = ["Why does the sea level change every day?", "What do worker bees gather?", "How is basalt made?", "What does a parser produce?"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], folder: Path, env: dict | None = None):
    """Start a server; (process, url) once its heartbeat answers."""
    import os

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(folder / "server.log", "wb") as log:  # the child keeps its own handle
        proc = subprocess.Popen([c.replace("PORT", str(port)) for c in cmd], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 180  # a busy machine: the wait is a limit, not a measurement
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{cmd[0]} exited with {proc.returncode}: {(folder / 'server.log').read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=5) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{cmd} did not answer its heartbeat: {(folder / 'server.log').read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """``chroma run --path TMP --host 127.0.0.1 --port FREE``; its URL once the heartbeat answers."""
    folder = tmp_path_factory.mktemp("chroma-server")
    exe = Path(sys.executable).with_name("chroma")
    proc, url = _start([str(exe), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", "PORT"], folder)
    yield url
    _stop(proc)


@pytest.fixture(scope="module")
def chroma_auth_server(tmp_path_factory):
    """Chroma's own Python server with its token authentication (``chromadb.app:app`` under uvicorn); its URL.

    Unlike ``chroma run``, the Python server rebuilds each collection's embedding function by name, so
    llm-magics must be importable where it runs and register ``llm_magics`` first (as here)."""
    folder = tmp_path_factory.mktemp("chroma-auth")
    env = {
        "IS_PERSISTENT": "TRUE", "PERSIST_DIRECTORY": str(folder / "data"), "ANONYMIZED_TELEMETRY": "False",
        "CHROMA_SERVER_AUTHN_PROVIDER": "chromadb.auth.token_authn.TokenAuthenticationServerProvider",
        "CHROMA_SERVER_AUTHN_CREDENTIALS": "s3cret-token",
    }  # fmt: skip
    serve = ("from llm_magics.ingest.stores.chroma import embedding_function_class; embedding_function_class(); "
             "import uvicorn; uvicorn.run('chromadb.app:app', host='127.0.0.1', port=PORT)")  # fmt: skip
    proc, url = _start([sys.executable, "-c", serve], folder, env)
    yield url
    _stop(proc)


def test_a_server_with_token_auth_takes_the_token_and_refuses_without_it(chroma_auth_server, docs, minilm, shell):
    import chromadb

    idx = Index("auth-docs", store="chroma", store_options={"url": chroma_auth_server, "token": "s3cret-token"}, embedder=minilm)
    report = idx.add(docs)
    assert report.files_read == 4 and idx.search(QUESTIONS[1], k=1, mode="dense")[0].metadata["source"].endswith("bees.md")
    # the server really checks: chromadb's own client without the token is refused
    port = int(chroma_auth_server.rsplit(":", 1)[1])
    with pytest.raises(Exception, match="Forbidden"):
        chromadb.HttpClient(host="127.0.0.1", port=port).get_collection("auth-docs")
    with_token = chromadb.HttpClient(host="127.0.0.1", port=port, headers={"Authorization": "Bearer s3cret-token"})
    assert with_token.get_collection("auth-docs").count() == report.chunks_added
    # no token, a wrong one, or the wrong header: one UsageError that names the options
    for options in ({}, {"token": "wrong"}, {"token": "s3cret-token", "token_header": "X-Chroma-Token"}):
        with pytest.raises(UsageError, match=r"refused the request .*--store-option token=TOKEN.*token_header=X-Chroma-Token"):
            Index("auth-docs", store="chroma", store_options={"url": chroma_auth_server, **options}, embedder=minilm)
    # the magic passes the token through --store-option; unchanged files add nothing
    again = shell.run_line_magic("ingest", f"{docs} --collection auth-docs --store-option url={chroma_auth_server} --store-option token=s3cret-token")
    assert again.last_report.files_unchanged == 4 and again.last_report.chunks_added == 0


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def shell(ip):
    ip.run_cell("%config LLMMagics.progress = False").raise_error()
    return ip


def test_ingest_search_reingest_delete_on_a_server(chroma_server, docs, minilm, shell):
    idx = Index("srv-docs", store="chroma", store_options={"url": chroma_server}, embedder=minilm)
    report = idx.add(docs)
    assert report.files_read == 4 and report.chunks_added >= 4
    assert idx.search(QUESTIONS[0], k=1, mode="dense")[0].metadata["source"].endswith("tides.md")

    # the data and the manifest live on the server, not in the local store folder
    import chromadb

    raw = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_server.rsplit(":", 1)[1]))
    col = raw.get_collection("srv-docs")
    assert col.count() == idx.store.count() == report.chunks_added
    config_json = col.configuration_json
    assert config_json["hnsw"]["ef_search"] == 128 and config_json["hnsw"]["space"] == "cosine"
    assert config_json["embedding_function"]["name"] == "llm_magics"  # never chromadb's downloading default
    manifest = raw.get_collection(MANIFEST_COLLECTION).get(where={"collection": "srv-docs"})
    assert len(manifest["ids"]) == 4
    assert not (Path(config.settings().store_path) / MANIFEST_FILE).exists()

    # the magic (and the CLI) pass --store-option the same way; unchanged files add nothing
    again = shell.run_line_magic("ingest", f"{docs} --collection srv-docs --store-option url={chroma_server}")
    report2 = again.last_report
    assert report2.chunks_added == 0 and report2.files_unchanged == 4 and again.store.path == chroma_server

    removed = idx.delete(str(docs / "tides.md"))
    assert removed >= 1
    assert col.count() == report.chunks_added - removed
    assert not any(h.metadata["source"].endswith("tides.md") for h in idx.search(QUESTIONS[0], k=10))
    assert len(raw.get_collection(MANIFEST_COLLECTION).get(where={"collection": "srv-docs"})["ids"]) == 3


def test_bad_server_options_say_how_to_fix_them():
    with pytest.raises(UsageError, match=r"chroma run --path DIR --host 127.0.0.1 --port PORT.*--store-option url="):
        Index("nowhere", store="chroma", store_options={"url": f"http://127.0.0.1:{_free_port()}"})
    with pytest.raises(UsageError, match=r"use http://HOST:PORT"):
        Index("nowhere", store="chroma", store_options={"url": "127.0.0.1:8000"})
    with pytest.raises(UsageError, match=r"Valid options: .*url"):
        Index("nowhere", store="chroma", store_options={"adress": "http://127.0.0.1:8000"})
    with pytest.raises(UsageError, match=r"--store-option wants KEY=VALUE"):
        parse_options(["http://127.0.0.1:8000"], "--store-option", "url=http://127.0.0.1:8000")
    assert parse_options(["url=http://h:1", 'headers={"X-A": "b"}', "ef_search=200"], "--store-option") == {"url": "http://h:1", "headers": {"X-A": "b"}, "ef_search": 200}


def test_copy_to_a_server_keeps_ids_manifest_and_hits(chroma_server, docs, minilm, shell, capsys):
    origin = Index("to-copy", embedder=minilm)  # the embedded default
    origin.add(docs)
    target = origin.copy_to("chroma", store_options={"url": chroma_server})
    assert target.store.path == chroma_server and target.last_copy["sources"] == 4
    assert target.store.count() == origin.store.count()
    assert target.store.manifest() == origin.store.manifest()
    assert target.store.info() == origin.store.info()
    src = {r["id"]: r for r in origin.store.get(vectors=True)}
    for rec in target.store.get(vectors=True):  # copied as they are, not re-embedded
        assert rec["text"] == src[rec["id"]]["text"] and rec["metadata"] == src[rec["id"]]["metadata"]
        assert max(abs(a - b) for a, b in zip(rec["vector"], src[rec["id"]]["vector"])) < 1e-6
    for question in QUESTIONS:
        for mode in ("dense", "hybrid"):
            assert [h.id for h in target.search(question, k=4, mode=mode)] == [h.id for h in origin.search(question, k=4, mode=mode)]

    # re-copying (here through the magic) finds every source there already, and says how to use it
    capsys.readouterr()
    again = shell.run_line_magic("ingest", f"--copy-to chroma --collection to-copy --store-option url={chroma_server}")
    out = capsys.readouterr().out
    assert again.last_copy == {"sources": 0, "chunks": 0, "unchanged": 4}
    assert "0 sources (0 chunks)" in out and "4 already there" in out and "LLMMagics.store_options" in out
    # what %%ask opens (Index(collection)) follows that setting to the server
    shell.run_cell(f"%config LLMMagics.store_options = {{'url': '{chroma_server}'}}").raise_error()
    assert Index("to-copy").store.path == chroma_server
    # the manifest came along: ingesting the same files into the server adds nothing
    report = Index("to-copy", store_options={"url": chroma_server}, embedder=minilm).add(docs)
    assert report.chunks_added == 0 and report.files_unchanged == 4
