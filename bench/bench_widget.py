"""Attention widget: payload bytes and first-view time in headless Chromium.

Ours: ``AttentionWidget`` state as Jupyter sends it (JSON traits + binary buffers: one
layer of sqrt-uint8 attention and 48×48 thumbnails; other layers on demand), rendered by
the real ES module (head view, layer 0, all heads, top-3 lines per query).

Peer: what a bertviz-style view sends, the whole (layers, heads, T, T) array as nested
JSON lists (``json.dumps(attention.tolist())``), and a naive page that parses it and
draws the head view as SVG lines (one ``<line>`` per query/key pair with weight ≥ 0.001,
opacity = weight), as bertviz does. Full-precision JSON of 12 × 12 × 512 is about 530 MB,
right at V8's longest string (2^29 - 24 characters), so the timed peer gets the same
array rounded to 3 decimals (a smaller, kinder payload); the full-precision size is
reported too.

Both pages fetch their payload from the same loopback HTTP server, so transfer is part
of both times. Median of N alternating repeats after a warm-up.

    .venv/bin/python bench/bench_widget.py                 # 12 × 12 × 512
    .venv/bin/python bench/bench_widget.py --tokens 64 --repeats 2   # CI smoke
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm_magics.widgets import AttentionWidget  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
V8_MAX_STRING = (1 << 29) - 24  # characters

OURS_PAGE = """<!doctype html><meta charset="utf-8"><body><div id="mount"></div><script type="module">
window.run = async () => {
  const t0 = performance.now();
  const [state, meta] = await Promise.all([fetch('/state.json').then(r => r.json()), fetch('/buffers.json').then(r => r.json())]);
  const bins = await Promise.all(meta.map(m => fetch('/' + m.file).then(r => r.arrayBuffer())));
  meta.forEach((m, i) => { state[m.path[0]] = new DataView(bins[i]); });
  const listeners = {};
  const model = { get: k => state[k], set: (k, v) => { state[k] = v; }, save_changes() {}, send() {},
                  on: (e, cb) => { (listeners[e] ||= []).push(cb); }, off() {} };
  const style = document.createElement('style'); style.textContent = state._css; document.head.append(style);
  const mod = await import(URL.createObjectURL(new Blob([state._esm], {type: 'text/javascript'})));
  const el = document.createElement('div'); document.getElementById('mount').append(el);
  mod.default.render({ model, el });
  while (!document.querySelector('[data-rendered]')) await new Promise(r => setTimeout(r, 1));
  await new Promise(r => requestAnimationFrame(() => r()));
  return performance.now() - t0;
};
</script>"""

PEER_PAGE = """<!doctype html><meta charset="utf-8"><body><div id="mount"></div><script>
window.run = async () => {
  const t0 = performance.now();
  const text = await fetch('/attention.json').then(r => r.text());
  const tParse = performance.now();
  const attn = JSON.parse(text);                    // (L, H, T, T) nested lists
  const parsed = performance.now() - tParse;
  const layer = attn[0], T = layer[0].length, rowH = Math.max(2, Math.floor(720 / T));
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('width', 500); svg.setAttribute('height', T * rowH);
  const frag = document.createDocumentFragment();
  layer.forEach((head, h) => head.forEach((row, i) => row.forEach((w, j) => {
    if (w < 0.001) return;
    const l = document.createElementNS(NS, 'line');
    l.setAttribute('x1', 100); l.setAttribute('y1', i * rowH); l.setAttribute('x2', 400); l.setAttribute('y2', j * rowH);
    l.setAttribute('stroke', `hsl(${h * 30}, 70%, 45%)`); l.setAttribute('stroke-opacity', w);
    frag.appendChild(l);
  })));
  svg.appendChild(frag);
  document.getElementById('mount').replaceChildren(svg);
  await new Promise(r => requestAnimationFrame(() => r()));
  return [performance.now() - t0, parsed, svg.childElementCount];
};
</script>"""


def attention(n_layers: int, n_heads: int, n_tokens: int, seed: int = 0) -> np.ndarray:
    """Causal softmax rows of random scores: the shape and row sums of a real pattern."""
    rng = np.random.default_rng(seed)
    mask = np.tril(np.ones((n_tokens, n_tokens), bool))
    out = np.empty((n_layers, n_heads, n_tokens, n_tokens), dtype=np.float32)
    for layer in range(n_layers):
        s = rng.normal(size=(n_heads, n_tokens, n_tokens)).astype(np.float32) * 4
        s = np.where(mask, s, -np.inf)
        s -= s.max(-1, keepdims=True)
        w = np.exp(s)
        out[layer] = w / w.sum(-1, keepdims=True)
    return out


def json_size(att: np.ndarray, decimals: int | None = None) -> int:
    """Bytes of ``json.dumps(att.tolist())`` (rounded first if asked), layer by layer to bound memory."""
    total = 2 + (att.shape[0] - 1) * 2  # outer [ ] and ", " separators
    for layer in att:
        values = np.round(layer.astype(np.float64), decimals) if decimals is not None else layer
        total += len(json.dumps(values.tolist()))
    return total


def write_payloads(folder: Path, att: np.ndarray, tokens: list[str]) -> dict:
    from ipywidgets.widgets.widget import _remove_buffers

    widget = AttentionWidget(att, tokens, top_k=3)
    state, paths, buffers = _remove_buffers(widget.get_state())
    state_json = json.dumps(state)
    (folder / "state.json").write_text(state_json, encoding="utf-8")
    meta = []
    for i, (path, buf) in enumerate(zip(paths, buffers)):
        (folder / f"buf{i}.bin").write_bytes(bytes(buf))
        meta.append({"path": path, "file": f"buf{i}.bin"})
    (folder / "buffers.json").write_text(json.dumps(meta), encoding="utf-8")
    esm_css = len(state["_esm"].encode()) + len(state["_css"].encode())
    ours = len(state_json.encode()) - esm_css + sum(len(bytes(b)) for b in buffers)
    peer_text = json.dumps(np.round(att.astype(np.float64), 3).tolist())
    (folder / "attention.json").write_text(peer_text, encoding="utf-8")
    (folder / "ours.html").write_text(OURS_PAGE, encoding="utf-8")
    (folder / "peer.html").write_text(PEER_PAGE, encoding="utf-8")
    return {"ours": ours, "esm_css": esm_css, "all_layers": att.size, "peer_rounded": len(peer_text), "widget": widget}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(folder: Path):
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--peer-timeout", type=float, default=120.0, help="seconds before a peer render counts as failed")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    L, H, T = args.layers, args.heads, args.tokens
    att = attention(L, H, T)
    tokens = [f"tok{i}" for i in range(T)]
    t0 = time.perf_counter()
    full_json = json_size(att)
    json_seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sizes = write_payloads(folder, att, tokens)
        server = serve(folder)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        ours_ms, peer_ms, parse_ms, peer_lines = [], [], [], 0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)

            def once(which: str):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(args.peer_timeout * 1000)
                page.goto(f"{base}/{which}.html")
                try:
                    return page.evaluate("window.run()")
                except Exception as e:  # noqa: BLE001 - a peer that cannot render is a result
                    return f"failed: {str(e).splitlines()[0][:80]}"
                finally:
                    page.close()

            once("ours"), once("peer")  # warm-up
            for _ in range(args.repeats):
                ours_ms.append(once("ours"))
                r = once("peer")
                if isinstance(r, list):
                    peer_ms.append(r[0]), parse_ms.append(r[1])
                    peer_lines = r[2]
            browser.close()
        server.shutdown()

    def med(xs):
        xs = [x for x in xs if isinstance(x, (int, float))]
        return statistics.median(xs) if xs else float("nan")

    fits = "fits" if full_json < V8_MAX_STRING else "exceeds V8's max string length: cannot be parsed in one JSON.parse"
    rows = [
        ("Payload, first view (bytes)", f"{sizes['ours']:,}", f"{full_json:,} (full precision, {fits})", f"{sizes['ours'] / full_json:.4f}"),
        ("Payload vs 3-decimal JSON", f"{sizes['ours']:,}", f"{sizes['peer_rounded']:,}", f"{sizes['ours'] / sizes['peer_rounded']:.4f}"),
        ("Every layer fetched (bytes)", f"{sizes['all_layers'] + sizes['ours']:,}", f"{full_json:,}", f"{(sizes['all_layers'] + sizes['ours']) / full_json:.4f}"),
        ("First view, median ms", f"{med(ours_ms):.0f}", f"{med(peer_ms):.0f} (3-decimal JSON; JSON.parse alone {med(parse_ms):.0f})", f"{med(ours_ms) / med(peer_ms):.3f}"),
    ]
    print(f"\nAttention widget, {L} layers × {H} heads × {T} tokens; {args.repeats} alternating repeats after a warm-up")
    print(f"(JS + CSS module, sent once per notebook and not counted above: {sizes['esm_css']:,} bytes; "
          f"peer lines drawn: {peer_lines:,}; json.dumps of the full array took {json_seconds:.1f} s)\n")  # fmt: skip
    print("| What | Ours | Peer (bertviz-style JSON) | Ratio ours/peer |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nours ms: {[round(x) if isinstance(x, float) else x for x in ours_ms]}")
    print(f"peer ms: {[round(x) for x in peer_ms]}  parse ms: {[round(x) for x in parse_ms]}")
    goal_time = med(ours_ms) < 2000
    goal_size = sizes["ours"] < full_json / 4
    print(f"\nGoal: first view < 2 s: {'met' if goal_time else 'MISSED'}; payload < 1/4 of the JSON: {'met' if goal_size else 'MISSED'}")


if __name__ == "__main__":
    main()
