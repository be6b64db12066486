"""Run the app under uvicorn in the background of a notebook (or in the foreground of a shell).

``serve(...)`` returns once the server accepts connections on its port, and the notebook
stays usable; ``stop(port)`` (or ``stop()`` for all) shuts it down. One server per port.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from ..errors import UsageError

_servers: dict[int, "Running"] = {}
_lock = threading.Lock()


@dataclass
class Running:
    """A server started by ``serve``: where it listens and what it serves."""

    host: str
    port: int
    chain: str | None
    collection: str | None
    server: object  # uvicorn.Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __repr__(self) -> str:
        what = f"chain {self.chain!r}" if self.chain else f"%%ask on {self.collection or 'the default collection'!r}"
        return f"<Serving {what} at {self.url} (docs: {self.url}/docs)>"


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise UsageError(f"Port {port} on {host} is in use ({e.strerror}). Pass another --port, or stop what uses it (%chain serve --stop --port {port}).") from None


def serve(chain: str | None = None, *, collection: str | None = None, model: str | None = None,
          host: str = "127.0.0.1", port: int = 8000, timeout: float = 30.0) -> Running:
    """Start serving ``chain`` (and ``/ask``) in a background thread; return when it is up."""
    import uvicorn

    from .app import create_app

    if not 0 < port < 65536:
        raise UsageError(f"--port {port}: use a port between 1 and 65535.")
    with _lock:
        if port in _servers:
            raise UsageError(f"Already serving at {_servers[port].url}. Stop it first: %chain serve --stop --port {port}.")
        _check_port_free(host, port)
        app = create_app(chain, collection=collection, model=model)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True, name=f"llm-magics-serve-{port}")
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise UsageError(f"The server on {host}:{port} did not start (see the log above).")
            if time.monotonic() > deadline:
                server.should_exit = True
                raise UsageError(f"The server on {host}:{port} did not start within {timeout:.0f} s.")
            time.sleep(0.02)
        running = Running(host, port, chain, collection, server, thread)
        _servers[port] = running
        return running


def stop(port: int | None = None) -> list[int]:
    """Stop the server on ``port`` (all servers when None); return the ports stopped."""
    with _lock:
        ports = list(_servers) if port is None else [port]
        if port is not None and port not in _servers:
            running = ", ".join(str(p) for p in _servers) or "none"
            raise UsageError(f"Nothing is served on port {port}. Running: {running}.")
        for p in ports:
            r = _servers.pop(p)
            r.server.should_exit = True
            r.thread.join(timeout=10)
        return ports


def running() -> list[Running]:
    """The servers started in this process."""
    with _lock:
        return list(_servers.values())


def serve_forever(chain: str | None = None, *, collection: str | None = None, model: str | None = None,
                  host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve in the foreground until Ctrl-C (the command line's ``llm-magics serve``)."""
    import uvicorn

    from .app import create_app

    _check_port_free(host, port)
    uvicorn.run(create_app(chain, collection=collection, model=model), host=host, port=port, log_level="info")
