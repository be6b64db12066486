"""Drive a widget's real ES module in headless Chromium.

``Harness(page).mount(widget)`` loads the widget's ``_esm``/``_css`` in a page that
implements anywidget's model interface (``tests/widgets/harness.html``). Messages the
browser sends reach the real Python widget through its comm (``comm.handle_msg``), and
what the widget sends back is delivered to the browser as ``msg:custom``. Only the
transport is replaced: the comm's ``publish_msg`` records instead of talking to a kernel.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from ipywidgets.widgets.widget import _remove_buffers

HTML = (Path(__file__).parent / "harness.html").read_text(encoding="utf-8")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def b64(data) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def state_of(widget) -> tuple[dict, list]:
    """The widget's state as the front end receives it: JSON plus (path, base64) buffers."""
    state, paths, buffers = _remove_buffers(widget.get_state())
    return state, [[path, b64(buf)] for path, buf in zip(paths, buffers)]


def saved_state(entry: dict) -> tuple[dict, list]:
    """One model from a notebook's ``application/vnd.jupyter.widget-state+json`` metadata."""
    return dict(entry["state"]), [[b["path"], b["data"]] for b in entry.get("buffers", [])]


class Harness:
    def __init__(self, page):
        self.page = page
        self.widget = None
        self.replies: list[dict] = []  # what Python sent back
        self.requests: list[dict] = []  # what the browser asked
        self.network: list[str] = []
        page.on("request", lambda r: self.network.append(r.url))
        page.expose_function("pySend", self._from_browser)
        page.set_content(HTML)

    def _from_browser(self, content_json: str, buffers: list[str]):
        content = json.loads(content_json)
        self.requests.append(content)
        if self.widget is None:
            return []
        sent: list[dict] = []

        def publish_msg(msg_type, data=None, metadata=None, buffers=None, **keys):
            if msg_type == "comm_msg" and (data or {}).get("method") == "custom":
                sent.append({"content": data["content"], "buffers": [b64(b) for b in buffers or []]})

        comm = self.widget.comm
        comm.publish_msg = publish_msg
        msg = {"content": {"data": {"method": "custom", "content": content}}, "buffers": [base64.b64decode(b) for b in buffers]}
        comm.handle_msg(msg)
        self.replies.extend(s["content"] for s in sent)
        return sent

    def mount(self, widget=None, *, state=None, wait: str | None = "[data-rendered]", connected: bool = True) -> float:
        """Render ``widget`` (or a saved ``state``); returns render()'s own time in ms."""
        self.widget = widget if connected else None
        state, buffers = state if state is not None else state_of(widget)
        ms = self.page.evaluate("([s, b]) => window.mountWidget(s, b)", [state, buffers])
        if wait:
            self.page.wait_for_selector(wait, state="attached", timeout=15000)
        return ms

    def rendered(self) -> str:
        return self.page.get_attribute("[data-rendered]", "data-rendered") or ""

    def wait_rerender(self, before: str, timeout: float = 15000) -> str:
        """Wait until the view drew again after ``before`` (a previous ``rendered()``)."""
        self.page.wait_for_function(
            "(b) => { const e = document.querySelector('[data-rendered]'); return e && e.dataset.rendered !== b; }",
            arg=before,
            timeout=timeout,
        )
        return self.rendered()

    def saved(self) -> list[dict]:
        return self.page.evaluate("window.__saved")

    def sent(self) -> list[dict]:
        return self.page.evaluate("window.__sent")

    def errors(self) -> list[str]:
        return self.page.evaluate("window.__errors")

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def ink(self, selector: str, box: tuple[float, float, float, float] | None = None) -> int:
        """Pixels in a canvas (optionally a CSS-pixel box x, y, w, h) that are not white or transparent."""
        return self.page.evaluate(
            """([sel, box]) => {
              const c = document.querySelector(sel);
              const s = c.width / parseFloat(c.style.width || c.width);
              const [x, y, w, h] = box ? box.map(v => Math.round(v * s)) : [0, 0, c.width, c.height];
              const d = c.getContext('2d').getImageData(x, y, Math.max(1, w), Math.max(1, h)).data;
              let n = 0;
              for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 245 || d[i + 1] < 245 || d[i + 2] < 245)) n++;
              return n;
            }""",
            [selector, list(box) if box else None],
        )

    def pixel(self, selector: str, x: float, y: float) -> list[int]:
        """RGBA at CSS pixel (x, y) of a canvas."""
        return self.page.evaluate(
            """([sel, x, y]) => {
              const c = document.querySelector(sel);
              const s = c.width / parseFloat(c.style.width || c.width);
              return Array.from(c.getContext('2d').getImageData(Math.round(x * s), Math.round(y * s), 1, 1).data);
            }""",
            [selector, x, y],
        )

    def geometry(self, selector: str) -> dict:
        """The layout a canvas was drawn with (its ``data-geometry``), in CSS pixels."""
        return self.page.evaluate("(sel) => JSON.parse(document.querySelector(sel).dataset.geometry)", selector)

    def hover_canvas(self, selector: str, x: float, y: float) -> None:
        self.page.hover(selector, position={"x": x, "y": y})

    def click_canvas(self, selector: str, x: float, y: float) -> None:
        self.page.click(selector, position={"x": x, "y": y})


def random_attention(n_layers, n_heads, n_tokens, *, causal=False, seed=0, sharp=3.0):
    """Softmax rows of random scores, like a real pattern: (L, H, T, T), rows sum to 1."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_layers, n_heads, n_tokens, n_tokens)).astype(np.float32) * sharp
    if causal:
        scores = np.where(np.tril(np.ones((n_tokens, n_tokens), bool)), scores, -np.inf)
    scores -= scores.max(-1, keepdims=True)
    w = np.exp(scores)
    return w / w.sum(-1, keepdims=True)


def attention_from_qk(q, k, *, causal=False):
    """softmax(q·kᵀ/√d) per layer and head: the pattern the neuron view recomputes."""
    d = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d)
    if causal:
        t = q.shape[-2]
        scores = np.where(np.tril(np.ones((t, t), bool)), scores, -np.inf)
    scores -= scores.max(-1, keepdims=True)
    w = np.exp(scores)
    return (w / w.sum(-1, keepdims=True)).astype(np.float32)


#: Two retrieved chunks for the grounding tests: one answers the question, one does not.
SOURCES = [
    {"number": 1, "text": "The Eiffel Tower is in Paris. It was finished in 1889 and is 330 metres tall.", "source": "eiffel.md"},
    {"number": 2, "text": "Bananas are yellow fruit that grow in tropical countries.", "source": "fruit.md"},
]
