"""Servers, console capture and contrast measurement for the front-end tests.

One server per test module (JupyterLab, Notebook 7, marimo), each in a temporary root with
its own settings, a token, and 127.0.0.1 only. Screenshots go to ``.screenshots/`` (git
ignores it) so anyone can look at them after a run.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "widgets"))  # the Chromium settings of the widget harness

from widget_harness import CHROMIUM, CHROMIUM_ARGS  # noqa: E402,F401

SHOTS = HERE.parent.parent / ".screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Until ``GET path`` on 127.0.0.1:port answers below 500 (or the server dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server on port {port} did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


class Server:
    """A subprocess serving on loopback; stopped (and waited for) on ``stop()``."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict, port: int, ready_path: str, token: str = ""):
        self.port, self.token, self.cwd = port, token, cwd
        self.log = cwd / "server.log"
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        try:
            wait_http(port, ready_path, self.proc, self.log)
        except Exception:
            self.stop()
            raise

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}{path}" + (f"{sep}token={self.token}" if self.token else "")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def quiet_env(root: Path) -> dict:
    """Jupyter's user folders inside ``root``; offline model hubs; no telemetry."""
    env = dict(os.environ)
    for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                      ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("MARIMO_HOME", "marimo")):  # fmt: skip
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(root / sub)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False", TOKENIZERS_PARALLELISM="false",
               MARIMO_SKIP_UPDATE_CHECK="1", PYTHONUNBUFFERED="1", XDG_CONFIG_HOME=str(root / "config"))  # fmt: skip
    return env


def jupyter_settings(root: Path) -> None:
    """Lab/Notebook user settings: every cell in the DOM (no windowing), no news or update checks."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    }
    for name, value in settings.items():
        path = root / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def start_jupyter(app: str, root: Path) -> Server:
    """``jupyter lab`` or ``jupyter notebook`` in ``root`` on a free loopback port, with a token."""
    env = quiet_env(root)
    jupyter_settings(root)
    port, token = free_port(), secrets.token_hex(16)
    flag = "LabApp" if app == "lab" else "JupyterNotebookApp"
    cmd = [
        sys.executable, "-m", "jupyter", app, "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", f"--{flag}.expose_app_in_browser=True",
        "--ServerApp.allow_remote_access=False", "--ServerApp.terminals_enabled=False", "--LabApp.extension_manager=readonly",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    return Server(cmd, root, env, port, f"/api/status?token={token}", token)


class Console:
    """Console errors and uncaught exceptions of a page; ``ours()`` are those from our widgets."""

    OURS = ("llmm", "llm_magics", "anywidget", "blob:", "attention.js", "grounding.js", "retrieval.js")

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"{m.text} @ {m.location.get('url', '')}"))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e} {getattr(e, 'stack', '') or ''}"))

    #: anywidget gives a model 2 s to initialise, then logs this; on a machine whose cores are
    #: all busy that is a loader timeout, not our code (a widget that never drew fails elsewhere).
    LOADER_TIMEOUT = "[anywidget] Failed to initialize model."

    def ours(self) -> list[str]:
        return [e for e in self.errors if any(k in e for k in self.OURS) and self.LOADER_TIMEOUT not in e]


def shot(page_or_locator, name: str) -> bytes:
    SHOTS.mkdir(exist_ok=True)
    return page_or_locator.screenshot(path=str(SHOTS / f"{name}.png"))


# ─── contrast, measured from pixels ──────────────────────────────────────────────


def _luminance(rgb) -> float:
    def lin(v):
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = rgb[:3]
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def contrast(a, b) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def pixel_contrast(png: bytes) -> float:
    """Text against background in a screenshot of one text element: the background is the
    commonest colour, the text the pixel that differs most from it (anti-aliasing only
    lightens edges, so glyph cores reach the text's colour)."""
    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(img, axis=0, return_counts=True)
    bg = colours[counts.argmax()]
    return max(contrast(c, bg) for c in colours)


#: Every text element in a widget, by computed style: its colour (alpha blended) against
#: the nearest painted background; the worst ratio and where.
CONTRAST_JS = """(root) => {
  const rgb = (css) => { const c = document.createElement('canvas').getContext('2d'); c.fillStyle = css; c.fillRect(0, 0, 1, 1); return Array.from(c.getImageData(0, 0, 1, 1).data); };
  const lum = (c) => { const f = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const over = (top, a, under) => under.map((v, i) => i < 3 ? top[i] * a + v * (1 - a) : 255);
  const backOf = (e) => {  // backgrounds composited from the first opaque one up to the element
    const layers = [];
    for (let p = e; p; p = p.parentElement) { const b = rgb(getComputedStyle(p).backgroundColor); if (b[3]) layers.push(b); if (b[3] === 255) break; }
    let back = layers.length && layers[layers.length - 1][3] === 255 ? layers.pop() : [255, 255, 255, 255];
    while (layers.length) { const l = layers.pop(); back = over(l, l[3] / 255, back); }
    return back;
  };
  let worst = {ratio: 99, text: ''}, n = 0;
  for (const e of [root, ...root.querySelectorAll('*')]) {
    if (![...e.childNodes].some((x) => x.nodeType === 3 && x.textContent.trim())) continue;
    if (!e.getClientRects().length || e.closest('[hidden]') || e.disabled) continue;
    const cs = getComputedStyle(e);
    const back = backOf(e);
    const c = rgb(cs.color);
    const fg = over(c, c[3] / 255 * parseFloat(cs.opacity), back);
    const [l1, l2] = [lum(fg), lum(back)].sort((x, y) => y - x);
    const ratio = (l1 + 0.05) / (l2 + 0.05); n++;
    if (ratio < worst.ratio) worst = {ratio, text: `${e.tagName}.${e.className}: ${e.textContent.trim().slice(0, 40)}`};
  }
  return {...worst, n};
}"""

