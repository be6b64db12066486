"""Serve a chain or ``%%ask`` over HTTP, and export it as an app directory.

``serve("summarize", port=8000)`` starts a FastAPI app under uvicorn in the background;
``stop()`` ends it; ``export("summarize", "app/")`` writes a directory with a Dockerfile
that runs outside the notebook. FastAPI and uvicorn are imported on first use.
"""

from __future__ import annotations

from .export import export
from .server import Running, running, serve, serve_forever, stop

__all__ = ["serve", "serve_forever", "stop", "running", "Running", "export"]
