"""The default path sends nothing off the machine: ingest + ask with the local model, network blocked.

A subprocess installs an audit hook (PEP 578) before importing anything: every socket
connect, DNS look-up and sendto to a non-loopback address is recorded and refused. Then it
runs a real ingest of the demo documents into Chroma and a real answer from SmolLM2. A
library that swallowed the refusal would still be caught: the attempts are listed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SCRIPT = r'''
import ipaddress, json, sys

attempts = []

def _is_local(host):
    if host in (None, "", "localhost") or str(host).startswith("/"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False

def guard(event, args):
    if event in ("socket.connect", "socket.sendto", "socket.connect_ex"):
        address = args[1]
        host = address[0] if isinstance(address, tuple) else address
        if not _is_local(host):
            attempts.append([event, str(address)])
            raise ConnectionRefusedError(f"blocked by the test: {event} {address}")
    elif event == "socket.getaddrinfo":
        if not _is_local(args[0]):
            attempts.append([event, str(args[0])])
            raise OSError(f"blocked by the test: DNS look-up of {args[0]}")

sys.addaudithook(guard)

from llm_magics import Index, ask
from llm_magics.demo import DATA

index = Index(collection="offline", store="chroma", path=sys.argv[1])
report = index.add([str(DATA)], recursive=True, progress=False)
answer = ask("How many nodes does the Heron GPU cluster have?", index=index, memory=None, max_tokens=32)
print(json.dumps({"chunks": report.chunks_added, "answer": answer.answer, "sources": len(answer.sources), "attempts": attempts}))
'''


def test_ingest_and_ask_send_nothing_off_the_machine(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PROXY") and not k.endswith("_proxy")}
    env.update(ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "store")], capture_output=True, text=True,
                         timeout=900, cwd=tmp_path, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["chunks"] > 0 and result["sources"] > 0 and result["answer"]
    assert result["attempts"] == [], f"tried to reach the network: {result['attempts']}"


def test_the_guard_does_block_a_real_connection(tmp_path):
    """The same hook refuses a connection to a public address (so the test above can fail)."""
    probe = SCRIPT.split("from llm_magics import")[0] + r'''
import socket
try:
    s = socket.socket()
    s.settimeout(2)
    s.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed
except OSError as e:
    print(json.dumps({"error": str(e), "attempts": attempts}))
'''
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "blocked by the test" in result["error"] and result["attempts"][0][0] == "socket.connect"
