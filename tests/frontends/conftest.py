"""Real front ends on loopback, driven by Playwright in Debian's Chromium.

One server per test module (JupyterLab, Notebook 7, marimo), each in a temporary root with
its own settings, a token, and 127.0.0.1 only. Screenshots go to ``.screenshots/`` (git
ignores it) so anyone can look at them after a run. The helpers live in ``servers.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # servers.py, next to this file

from servers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def pytest_collection_modifyitems(config, items):
    missing = [] if CHROMIUM.exists() else [f"{CHROMIUM} (apt-get install -y chromium)"]
    missing += [m for m in ("jupyterlab", "notebook", "marimo", "playwright") if importlib.util.find_spec(m) is None]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"missing {', '.join(missing)}: scripts/setup.sh --dev installs them")
    for item in items:
        if "frontends" in str(item.fspath):
            item.add_marker(skip)


