// @ts-check
/**
 * AttentionWidget front end: head, model, matrix and neuron views of one forward pass.
 *
 * Longer than our ~400-line guide on purpose: anywidget loads exactly one ES module per
 * widget and we use no bundler, so the four views share this file. Each view is one
 * function (`drawHead`, `drawModel`, `drawMatrix`, `drawNeuron`) over a shared state
 * object made by `render`; the helpers above them (codecs, theme, the layer store) are
 * what they share.
 *
 * Attention arrives as bytes with the "sqrt-uint8" code (weight = (byte / 255)²); queries
 * and keys arrive as float16. Layers that were not sent with the widget are asked for with
 * custom messages ({type: "get_layer" | "get_qk", request_id, layer}); Python answers with
 * one buffer, or with {type: "error", request_id, message}. A {type: "ping"} at start tells
 * whether a kernel is there to answer at all.
 *
 * Colours follow the host's theme (CSS variables in attention.css); canvases read the
 * resolved colours from the root element and redraw when the theme or the width changes.
 */

/**
 * @typedef {{
 *   get(name: string): any,
 *   set(name: string, value: any): void,
 *   save_changes(): void,
 *   on(event: string, callback: Function): void,
 *   off(event?: string, callback?: Function): void,
 *   send(content: any, callbacks?: any, buffers?: ArrayBuffer[]): void,
 * }} AnyModel
 * @typedef {{ dark: boolean, fg: string, fg2: string, bg: string, bgRGB: number[], border: string, accent: string, ramp: Uint8Array, masked: number[] }} Theme
 */

const VIEWS = ["head", "model", "matrix", "neuron"];
const VIEW_LABELS = { head: "Head view", model: "Model view", matrix: "Matrix view", neuron: "Neuron view" };
const LEGENDS = {
  head:
    "Left: each token as a query (the token doing the looking). Right: the same tokens as keys (the tokens being looked at). " +
    "A line's opacity is the attention weight; its colour is the head. Only each query's top-k keys are drawn. " +
    "Hover a token to isolate its lines and see the weights beside the other side's tokens; hover a head's square to pick out its lines; " +
    "click a head's square to toggle it, double-click (or Alt-click, or Solo) to show only that head; click a left token to pick it for the neuron view.",
  model:
    "Every layer (rows) × head (columns). Each square is that head's T×T pattern: rows are queries, columns are keys, " +
    "stronger colour = more attention (max-pooled to fit). Heads that look at the previous token draw a diagonal; heads that park attention on the first token draw a column. Click a square to open it.",
  matrix:
    "Row i, column j: how much query token i attends to key token j. Each row sums to 1 (a softmax). " +
    "Colour ∝ √weight so small weights stay visible (scale on the right). Several selected heads are averaged.",
  neuron:
    "How one row of attention is made: the query vector q_i meets each key k_j; their elementwise product summed is the dot product q_i·k_j; " +
    "divided by √d_head it becomes a score; the softmax over all keys j turns scores into weights that sum to 1.",
};
const MIN_BYTE = 26; // (26/255)² ≈ 0.01: lighter lines are not drawn in the head view
const REQUEST_TIMEOUT_MS = 8000;

/** byte -> attention weight */
const WEIGHT = new Float32Array(256).map((_, b) => (b / 255) ** 2);

// ─── small helpers ──────────────────────────────────────────────────────────────────

/** @type {Float32Array | null} */
let HALF = null;
/** float16 bits -> float32, through a 65536-entry table built on first use */
function halfTable() {
  if (HALF) return HALF;
  HALF = new Float32Array(65536);
  for (let v = 0; v < 65536; v++) {
    const sign = v & 0x8000 ? -1 : 1;
    const e = (v >> 10) & 0x1f;
    const f = v & 0x3ff;
    HALF[v] = e === 0 ? sign * 2 ** -14 * (f / 1024) : e === 31 ? (f ? NaN : sign * Infinity) : sign * 2 ** (e - 15) * (1 + f / 1024);
  }
  return HALF;
}

/** @param {any} value a synced bytes trait or a message buffer @returns {Uint8Array} */
function bytesOf(value) {
  if (!value) return new Uint8Array(0);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return new Uint8Array(0);
}

/** @param {Uint8Array} bytes little-endian float16 @returns {Float32Array} */
function decodeHalf(bytes) {
  const table = halfTable();
  const bits = new Uint16Array(bytes.slice().buffer); // slice: an aligned copy
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

/** @param {string} text a token as the tokenizer wrote it -> what a reader sees */
function show(text) {
  return text.replace(/\n/g, "⏎").replace(/\t/g, "⇥").replace(/^Ġ/, "·").replace(/^▁/, "·").replace(/ /g, "·") || "∅";
}

/** @param {string} tag @param {string} [cls] @param {string} [text] */
function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** @param {HTMLCanvasElement} canvas @param {number} w @param {number} ht */
function sizeCanvas(canvas, w, ht) {
  const dpr = Math.min(window.devicePixelRatio || 1, 2);
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(ht * dpr);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${ht}px`;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

// ─── theme ──────────────────────────────────────────────────────────────────────────

/** @type {CanvasRenderingContext2D | null} */
let PROBE = null;
/** Any CSS colour -> [r, g, b, a 0-255], as the canvas paints it. @param {string} css */
function rgbaOf(css) {
  if (!PROBE) {
    const c = document.createElement("canvas");
    c.width = c.height = 1;
    PROBE = /** @type {CanvasRenderingContext2D} */ (c.getContext("2d", { willReadFrequently: true }));
  }
  PROBE.clearRect(0, 0, 1, 1);
  PROBE.fillStyle = "#000";
  PROBE.fillStyle = css;
  PROBE.fillRect(0, 0, 1, 1);
  return Array.from(PROBE.getImageData(0, 0, 1, 1).data);
}

/** @param {number[]} c */
const luminance = (c) => {
  const lin = (/** @type {number} */ v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  return 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
};

/** @param {Array<[number, number[]]>} stops @returns {Uint8Array} byte (√ scale) -> rgb */
function rampOf(stops) {
  const lut = new Uint8Array(256 * 3);
  for (let b = 0; b < 256; b++) {
    const x = b / 255;
    let s = 0;
    while (s < stops.length - 2 && x > stops[s + 1][0]) s++;
    const [x0, c0] = stops[s];
    const [x1, c1] = stops[s + 1];
    const f = (x - x0) / (x1 - x0);
    for (let c = 0; c < 3; c++) lut[b * 3 + c] = Math.round(c0[c] + f * (c1[c] - c0[c]));
  }
  return lut;
}

/**
 * The resolved theme colours of a widget's root (its CSS variables), and a colour ramp
 * that starts at the background: white through blue to navy on light, dark through blue
 * to pale blue on dark.
 * @param {HTMLElement} root @returns {Theme}
 */
function themeOf(root) {
  const cs = getComputedStyle(root);
  const v = (/** @type {string} */ name, /** @type {string} */ fallback) => cs.getPropertyValue(name).trim() || fallback;
  const prefersDark = !!(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
  let bg = v("--llmm-bg", prefersDark ? "#1e1e1e" : "#fff");
  let bgRGB = rgbaOf(bg);
  if (bgRGB[3] < 128) { bg = prefersDark ? "#1e1e1e" : "#fff"; bgRGB = rgbaOf(bg); } // a transparent host background
  const dark = luminance(bgRGB) < 0.25;
  const fg = v("--llmm-fg", cs.color || (dark ? "#e8e8e8" : "#1f1f1f"));
  const base = bgRGB.slice(0, 3);
  const ramp = dark
    ? rampOf([[0, base], [0.35, [30, 84, 132]], [0.7, [72, 154, 220]], [1, [220, 238, 255]]])
    : rampOf([[0, [255, 255, 255]], [0.35, [158, 202, 225]], [0.7, [49, 130, 189]], [1, [8, 48, 107]]]);
  const masked = dark ? base.map((c) => Math.round(c * 0.75 + 128 * 0.25)) : [232, 232, 232];
  return { dark, fg, fg2: v("--llmm-fg2", fg), bg, bgRGB: base, border: v("--llmm-border", dark ? "#555" : "#ccc"), accent: v("--llmm-accent", dark ? "#64b5f6" : "#0d47a1"), ramp, masked };
}

/**
 * Head colours that stay apart for 12+ heads: hues spread evenly and visited in a stride
 * (neighbouring heads differ by about a third of the wheel), lightness alternating.
 * @param {number} head @param {number} n @param {boolean} dark
 */
function headColour(head, n, dark) {
  const m = Math.max(n, 1);
  let stride = Math.max(1, Math.round(m * 0.382));
  const gcd = (/** @type {number} */ a, /** @type {number} */ b) => (b ? gcd(b, a % b) : a);
  while (gcd(stride, m) !== 1) stride++;
  const hue = Math.round(((head * stride) % m) * (360 / m) + 200) % 360;
  const light = dark ? (head % 2 ? 72 : 60) : (head % 2 ? 30 : 44);
  return `hsl(${hue}, ${dark ? 80 : 85}%, ${light}%)`;
}

/** Black or white text on a colour: whichever contrasts more (at least 4.58:1 for any colour). @param {string} css */
const inkOn = (css) => {
  const l = luminance(rgbaOf(css));
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#000" : "#fff";
};

// ─── the arrays the browser holds ───────────────────────────────────────────────────

/** Filled from traits and from Python's answers; knows whether a kernel is answering. */
class Store {
  /** @param {AnyModel} model */
  constructor(model) {
    this.model = model;
    /** @type {Map<number, Uint8Array>} layer -> (H, T, T) sqrt-uint8 */
    this.layers = new Map();
    /** @type {Map<number, Float32Array>} layer -> (2, H, T, d_head) */
    this.qk = new Map();
    /** @type {Map<number, {resolve: Function, reject: Function, timer: any}>} */
    this.pending = new Map();
    /** @type {Map<string, Promise<any>>} */
    this.inflight = new Map();
    this.nextId = 1;
    this.connected = false; // a kernel answered at least once
    /** @type {(message: string) => void} */
    this.onSlow = () => {};
    this.onMessage = this.onMessage.bind(this);
    model.on("msg:custom", this.onMessage);
    this.reload();
    try { model.send({ type: "ping", request_id: 0 }); } catch (_) { /* no kernel: requests will say so */ }
  }

  get T() { return this.model.get("tokens").length; }
  get H() { return this.model.get("n_heads"); }

  reload() {
    const { T, H } = this;
    const all = bytesOf(this.model.get("attention"));
    const size = H * T * T;
    this.model.get("attention_layers").forEach((/** @type {number} */ layer, /** @type {number} */ i) => {
      if (all.length >= (i + 1) * size) this.layers.set(layer, all.subarray(i * size, (i + 1) * size));
    });
    const qkLayer = this.model.get("qk_layer");
    const qk = bytesOf(this.model.get("qk"));
    if (qkLayer >= 0 && qk.length) this.qk.set(qkLayer, decodeHalf(qk));
  }

  /** @param {number} layer @returns {Promise<Uint8Array>} */
  layer(layer) {
    const have = this.layers.get(layer);
    if (have) return Promise.resolve(have);
    return this.request("get_layer", layer).then(([content, buffers]) => {
      const data = bytesOf(buffers[0]).slice();
      this.layers.set(content.layer, data);
      return data;
    });
  }

  /** @param {number} layer @returns {Promise<Float32Array>} */
  qkOf(layer) {
    const have = this.qk.get(layer);
    if (have) return Promise.resolve(have);
    return this.request("get_qk", layer).then(([content, buffers]) => {
      const data = decodeHalf(bytesOf(buffers[0]));
      this.qk.set(content.layer, data);
      return data;
    });
  }

  /** What a saved notebook holds, in words. */
  saved() {
    const att = this.model.get("attention_layers");
    const qk = this.model.get("qk_layer");
    return `attention of layer${att.length === 1 ? "" : "s"} ${att.join(", ") || "none"}` +
      (this.model.get("has_qk") ? `, queries and keys of ${qk >= 0 ? `layer ${qk}` : "no layer"}` : "");
  }

  /**
   * Ask Python for a layer. After REQUEST_TIMEOUT_MS without an answer, `onSlow` says why
   * (no kernel, or a busy one); the request keeps waiting, so a late answer still draws.
   * @param {string} type @param {number} layer @returns {Promise<[any, any[]]>}
   */
  request(type, layer) {
    const key = `${type}:${layer}`;
    const running = this.inflight.get(key);
    if (running) return running;
    const request_id = this.nextId++;
    const what = type === "get_qk" ? `queries and keys of layer ${layer}` : `attention of layer ${layer}`;
    const promise = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.onSlow(this.connected
          ? `The kernel has not answered for ${REQUEST_TIMEOUT_MS / 1000} s: it is busy running a cell, or not connected (stopped or restarted). Still waiting for the ${what}; this output holds ${this.saved()}.`
          : `The kernel is not connected, so the ${what} cannot be fetched. This saved output holds ${this.saved()}; start the kernel and run the cell again to explore the rest.`);
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(request_id, { resolve, reject, timer });
      try {
        this.model.send({ type, request_id, layer });
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(request_id);
        reject(new Error(`The kernel is not connected (${/** @type {Error} */ (e).message || e}), so the ${what} cannot be fetched. This saved output holds ${this.saved()}.`));
      }
    });
    this.inflight.set(key, promise);
    promise.finally(() => this.inflight.delete(key)).catch(() => {});
    return /** @type {Promise<[any, any[]]>} */ (promise);
  }

  /** @param {any} content @param {any[]} buffers */
  onMessage(content, buffers) {
    if (content) this.connected = true;
    const waiting = this.pending.get(content && content.request_id);
    if (!waiting) return;
    this.pending.delete(content.request_id);
    clearTimeout(waiting.timer);
    if (content.type === "error") waiting.reject(new Error(content.message));
    else waiting.resolve([content, buffers || []]);
  }

  dispose() {
    this.model.off("msg:custom", this.onMessage);
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }
}

/**
 * Which tokens stand on the left (queries) and right (keys): everything, or one sentence
 * of an encoder pair on each side.
 * @param {string} filter @param {number} bStart @param {number} T
 */
function sides(filter, bStart, T) {
  const all = [...Array(T).keys()];
  if (bStart < 0 || filter === "all") return [all, all];
  const a = all.filter((i) => i < bStart);
  const b = all.filter((i) => i >= bStart);
  return { ab: [a, b], ba: [b, a], aa: [a, a], bb: [b, b] }[filter] || [all, all];
}

/**
 * The smallest byte among a row's top-k entries (k = 0: keep all), via a 256-bin histogram.
 * @param {Uint8Array} data @param {number} offset @param {number[]} cols @param {number} k
 */
function topKThreshold(data, offset, cols, k) {
  if (!k || k >= cols.length) return MIN_BYTE;
  const hist = new Uint16Array(256);
  for (const j of cols) hist[data[offset + j]]++;
  let seen = 0;
  for (let b = 255; b > 0; b--) {
    seen += hist[b];
    if (seen >= k) return Math.max(b, MIN_BYTE);
  }
  return MIN_BYTE;
}

/**
 * Mean weight over `heads` of query i -> key j.
 * @param {Uint8Array} att @param {number} T @param {number[]} heads @param {number} i @param {number} j
 */
function meanWeight(att, T, heads, i, j) {
  let s = 0;
  for (const head of heads) s += WEIGHT[att[head * T * T + i * T + j]];
  return heads.length ? s / heads.length : 0;
}

// ─── the shared state every view draws from ─────────────────────────────────────────

/**
 * @typedef {{
 *   model: AnyModel, store: Store, root: HTMLElement, stage: HTMLElement, status: HTMLElement,
 *   tooltip: HTMLElement, theme: Theme, hover: {side: "left" | "right", index: number} | null,
 *   focusHead: number, solo: boolean, say: (text: string) => void, width: () => number,
 *   lastWidth: number, headAtt: Uint8Array | null,
 * }} State
 */

// ─── head view ──────────────────────────────────────────────────────────────────────

/**
 * Queries on the left, keys on the right, one line per (query, key, head) above the
 * threshold. Redrawn in place on hover.
 * @param {State} s @param {Uint8Array} att
 */
function drawHead(s, att) {
  const { model, store, theme } = s;
  s.headAtt = att; // what the hover handlers redraw
  const T = store.T, H = store.H, tokens = model.get("tokens");
  const heads = /** @type {number[]} */ (model.get("heads"));
  const [left, right] = sides(model.get("pair_filter"), model.get("sentence_b_start"), T);
  const n = Math.max(left.length, right.length);
  const rowH = n <= 40 ? 18 : Math.max(2, Math.min(18, Math.floor(720 / n)));
  const labels = rowH >= 8;
  const avail = s.width();
  const numW = labels ? 40 : 0; // the weights shown beside tokens on hover
  const labelW = labels ? Math.max(70, Math.min(120, Math.floor(avail * 0.18))) : 16;
  const gap = Math.max(80, Math.min(360, avail - 2 * (labelW + numW)));
  const pad = 8;
  const x0 = numW + labelW, x1 = x0 + gap;
  const W = 2 * (numW + labelW) + gap, Ht = n * rowH + 2 * pad;
  let canvas = /** @type {HTMLCanvasElement | null} */ (s.stage.querySelector(".llmm-head-canvas"));
  if (!canvas) {
    canvas = /** @type {HTMLCanvasElement} */ (h("canvas", "llmm-canvas llmm-head-canvas"));
    const c = canvas;
    c.onmousemove = (ev) => {
      const g = JSON.parse(c.dataset.geometry || "{}");
      const r = c.getBoundingClientRect();
      const x = ev.clientX - r.left, y = ev.clientY - r.top;
      const row = Math.floor((y - g.pad) / g.rowH);
      const side = x < (g.x0 + g.x1) / 2 ? "left" : "right";
      const list = side === "left" ? g.left : g.right;
      const next = row >= 0 && row < list.length ? { side, index: list[row] } : null;
      if (JSON.stringify(next) !== JSON.stringify(s.hover) && s.headAtt) { s.hover = /** @type {any} */ (next); drawHead(s, s.headAtt); }
    };
    c.onmouseleave = () => { if (s.hover && s.headAtt) { s.hover = null; drawHead(s, s.headAtt); } };
    c.onclick = () => {
      if (s.hover && s.hover.side === "left") { model.set("token", s.hover.index); model.save_changes(); }
    };
    s.stage.replaceChildren(c);
  }
  canvas.dataset.geometry = JSON.stringify({ rowH, pad, x0, x1, labelW, numW, left, right });
  const ctx = sizeCanvas(canvas, W, Ht);
  ctx.clearRect(0, 0, W, Ht);
  const yOf = (/** @type {number} */ row) => pad + row * rowH + rowH / 2;
  const rowOfRight = new Int32Array(T).fill(-1);
  right.forEach((j, r) => (rowOfRight[j] = r));
  const rowOfLeft = new Int32Array(T).fill(-1);
  left.forEach((i, r) => (rowOfLeft[i] = r));
  const hover = s.hover;
  ctx.lineWidth = labels ? 2 : 1;
  let drawn = 0;
  for (const head of heads) {
    /** @type {Path2D[]} */
    const buckets = [...Array(16)].map(() => new Path2D());
    const base = head * T * T;
    const queries = hover && hover.side === "left" ? [hover.index] : left;
    for (const i of queries) {
      if (rowOfLeft[i] < 0) continue;
      const off = base + i * T;
      // a hovered token shows all its lines above 0.01; otherwise each query keeps its top-k keys
      const thr = hover ? MIN_BYTE : topKThreshold(att, off, right, model.get("top_k"));
      const yi = yOf(rowOfLeft[i]);
      const keys = hover && hover.side === "right" ? (rowOfRight[hover.index] >= 0 ? [hover.index] : []) : right;
      for (const j of keys) {
        const b = att[off + j];
        if (b < thr) continue;
        const bucket = Math.min(15, Math.floor(WEIGHT[b] * 16));
        buckets[bucket].moveTo(x0, yi);
        buckets[bucket].lineTo(x1, yOf(rowOfRight[j]));
        drawn++;
      }
    }
    ctx.strokeStyle = headColour(head, H, theme.dark);
    const dim = s.focusHead >= 0 && s.focusHead !== head ? 0.12 : 1; // a hovered head button picks out its lines
    buckets.forEach((path, bucket) => {
      ctx.globalAlpha = dim * Math.min(1, 0.12 + (0.88 * (bucket + 0.5)) / 16);
      ctx.stroke(path);
    });
  }
  ctx.globalAlpha = 1;
  // token labels (or ticks when rows are too thin for text), and the hovered token's weights
  ctx.font = `${Math.min(12, rowH - 3)}px ${getComputedStyle(s.root).getPropertyValue("--llmm-mono") || "monospace"}`;
  ctx.textBaseline = "middle";
  /** @type {Float32Array | null} */
  let weights = null; // weight of each token on the other side, for the hovered token
  if (hover && labels && heads.length) {
    weights = new Float32Array(T);
    for (let k = 0; k < T; k++) weights[k] = hover.side === "left" ? meanWeight(att, T, heads, hover.index, k) : meanWeight(att, T, heads, k, hover.index);
  }
  for (const [list, side] of /** @type {[number[], string][]} */ ([[left, "left"], [right, "right"]])) {
    list.forEach((i, r) => {
      const y = yOf(r);
      const isHover = hover && hover.side === side && hover.index === i;
      const isToken = side === "left" && i === model.get("token");
      const xl = side === "left" ? numW : x1;
      if (isHover || isToken) {
        ctx.fillStyle = isHover ? "rgba(255, 193, 7, 0.45)" : theme.dark ? "rgba(255, 255, 255, 0.12)" : "rgba(0, 0, 0, 0.08)";
        ctx.fillRect(xl, y - rowH / 2, labelW, rowH);
      }
      if (labels) {
        ctx.fillStyle = theme.fg;
        ctx.textAlign = side === "left" ? "right" : "left";
        ctx.fillText(show(tokens[i]).slice(0, Math.max(4, Math.floor(labelW / 7.5))), side === "left" ? x0 - 6 : x1 + 6, y);
      } else {
        ctx.fillStyle = theme.fg2;
        ctx.fillRect(side === "left" ? x0 - 6 : x1 + 2, y - 0.5, 4, 1);
      }
      if (weights && hover && side !== hover.side && weights[i] >= 0.005) {
        ctx.fillStyle = theme.fg2;
        ctx.textAlign = side === "left" ? "left" : "right";
        ctx.fillText(weights[i] >= 0.995 ? "1.00" : weights[i].toFixed(2).replace(/^0/, ""), side === "left" ? 2 : W - 2, y);
      }
    });
  }
  canvas.dataset.lines = String(drawn);
  if (!heads.length) s.say("No heads selected: click a head's square to show it (All shows every head).");
  else if (hover) s.say(describeToken(s, att, hover, heads));
  else s.say(`Layer ${model.get("layer")} · heads ${heads.join(", ")} · ${drawn} lines (top ${model.get("top_k") || "all"} keys per query)`);
}

/**
 * Where a hovered token's attention goes, in words.
 * @param {State} s @param {Uint8Array} att @param {{side: string, index: number}} hv @param {number[]} heads
 */
function describeToken(s, att, hv, heads) {
  const T = s.store.T, tokens = s.model.get("tokens");
  const sum = new Float32Array(T);
  for (let j = 0; j < T; j++) sum[j] = hv.side === "left" ? meanWeight(att, T, heads, hv.index, j) : meanWeight(att, T, heads, j, hv.index);
  const best = [...sum.keys()].sort((a, b) => sum[b] - sum[a]).slice(0, 4);
  const list = best.map((j) => `“${show(tokens[j])}” #${j} ${sum[j].toFixed(2)}`).join(" · ");
  return hv.side === "left"
    ? `“${show(tokens[hv.index])}” #${hv.index} as a query attends most to: ${list} (mean over heads ${heads.join(", ")})`
    : `“${show(tokens[hv.index])}” #${hv.index} as a key is looked at most by: ${list} (mean over heads ${heads.join(", ")})`;
}

// ─── model view ─────────────────────────────────────────────────────────────────────

/** Every layer × head as a thumbnail; a click opens one in the matrix view. @param {State} s */
function drawModel(s) {
  const { model, store, theme } = s;
  const L = model.get("n_layers"), H = store.H, S = model.get("thumb_size");
  const thumbs = bytesOf(model.get("thumbnails"));
  const gap = 4, left = 30, top = 18;
  const cell = Math.max(16, Math.min(64, Math.floor((s.width() - left) / H) - gap));
  const W = left + H * (cell + gap), Ht = top + L * (cell + gap);
  const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", "llmm-canvas llmm-model-canvas"));
  const ctx = sizeCanvas(canvas, W, Ht);
  const sheet = document.createElement("canvas");
  sheet.width = H * S; sheet.height = L * S;
  const sctx = /** @type {CanvasRenderingContext2D} */ (sheet.getContext("2d"));
  const img = sctx.createImageData(H * S, L * S);
  const ramp = theme.ramp;
  for (let l = 0; l < L; l++) for (let hh = 0; hh < H; hh++) for (let r = 0; r < S; r++) for (let c = 0; c < S; c++) {
    const b = thumbs[((l * H + hh) * S + r) * S + c] || 0;
    const p = ((l * S + r) * H * S + hh * S + c) * 4;
    img.data[p] = ramp[b * 3]; img.data[p + 1] = ramp[b * 3 + 1]; img.data[p + 2] = ramp[b * 3 + 2]; img.data[p + 3] = 255;
  }
  sctx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.font = "11px sans-serif"; ctx.fillStyle = theme.fg; ctx.textBaseline = "middle";
  const selected = new Set(model.get("heads"));
  for (let l = 0; l < L; l++) {
    ctx.textAlign = "right";
    ctx.fillStyle = theme.fg;
    ctx.fillText(`L${l}`, left - 4, top + l * (cell + gap) + cell / 2);
    for (let hh = 0; hh < H; hh++) {
      const x = left + hh * (cell + gap), y = top + l * (cell + gap);
      ctx.drawImage(sheet, hh * S, l * S, S, S, x, y, cell, cell);
      const on = l === model.get("layer") && selected.has(hh);
      ctx.strokeStyle = on ? "#e69500" : theme.border;
      ctx.lineWidth = on ? 2 : 1;
      ctx.strokeRect(x - 0.5, y - 0.5, cell + 1, cell + 1);
    }
  }
  ctx.textAlign = "center"; ctx.fillStyle = theme.fg;
  for (let hh = 0; hh < H; hh++) ctx.fillText(`H${hh}`, left + hh * (cell + gap) + cell / 2, top / 2);
  const at = (/** @type {MouseEvent} */ ev) => {
    const r = canvas.getBoundingClientRect();
    const hh = Math.floor((ev.clientX - r.left - left) / (cell + gap));
    const l = Math.floor((ev.clientY - r.top - top) / (cell + gap));
    return l >= 0 && l < L && hh >= 0 && hh < H ? [l, hh] : null;
  };
  canvas.onmousemove = (ev) => {
    const p = at(ev);
    s.say(p ? `Layer ${p[0]}, head ${p[1]}: click to open it in the matrix view` : `${L} layers × ${H} heads = ${L * H} attention patterns`);
  };
  canvas.onclick = (ev) => {
    const p = at(ev);
    if (!p) return;
    model.set("layer", p[0]);
    model.set("heads", [p[1]]);
    model.set("view", "matrix");
    model.save_changes();
  };
  canvas.dataset.cell = String(cell);
  canvas.dataset.geometry = JSON.stringify({ cell, gap, left, top });
  s.stage.replaceChildren(canvas);
  s.say(`${L} layers × ${H} heads = ${L * H} attention patterns, each ${store.T}×${store.T} shown at ${S}×${S}`);
}

// ─── matrix view ────────────────────────────────────────────────────────────────────

/** Query × key weights of the selected heads (mean), filling the box, with a colour scale. @param {State} s @param {Uint8Array} att */
function drawMatrix(s, att) {
  const { model, store, theme } = s;
  const T = store.T, H = store.H, tokens = model.get("tokens"), causal = model.get("causal");
  let heads = model.get("heads");
  if (!heads.length) heads = [...Array(H).keys()];
  const mean = new Float32Array(T * T);
  for (const head of heads) for (let p = 0; p < T * T; p++) mean[p] += WEIGHT[att[head * T * T + p]] / heads.length;
  const legendW = 78;
  const avail = s.width();
  const fit = (/** @type {number} */ margin) => Math.max(T, Math.min(900, avail - margin - legendW - 8));
  let margin = 90;
  let px = fit(margin) / T >= 10 ? Math.min(48, Math.floor(fit(margin) / T)) : 0;
  const labels = px >= 10;
  if (!labels) { margin = 4; px = Math.max(1, fit(margin) / T); }
  const side = T * px;
  const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", "llmm-canvas llmm-matrix-canvas"));
  const W = margin + side + legendW, Ht = margin + Math.max(side, 150) + 4;
  const ctx = sizeCanvas(canvas, W, Ht);
  const sheet = document.createElement("canvas");
  sheet.width = T; sheet.height = T;
  const sctx = /** @type {CanvasRenderingContext2D} */ (sheet.getContext("2d"));
  const img = sctx.createImageData(T, T);
  const ramp = theme.ramp;
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
    const p = (i * T + j) * 4;
    const b = Math.round(Math.sqrt(mean[i * T + j]) * 255);
    const rgb = causal && j > i ? theme.masked : [ramp[b * 3], ramp[b * 3 + 1], ramp[b * 3 + 2]];
    img.data[p] = rgb[0]; img.data[p + 1] = rgb[1]; img.data[p + 2] = rgb[2]; img.data[p + 3] = 255;
  }
  sctx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(sheet, 0, 0, T, T, margin, margin, side, side);
  ctx.strokeStyle = theme.border; ctx.strokeRect(margin - 0.5, margin - 0.5, side + 1, side + 1);
  const mono = getComputedStyle(s.root).getPropertyValue("--llmm-mono") || "monospace";
  if (labels) {
    ctx.font = `${Math.min(12, px - 1)}px ${mono}`; ctx.fillStyle = theme.fg; ctx.textBaseline = "middle";
    for (let i = 0; i < T; i++) {
      ctx.textAlign = "right";
      ctx.fillText(show(tokens[i]).slice(0, 12), margin - 4, margin + i * px + px / 2);
      ctx.save(); ctx.translate(margin + i * px + px / 2, margin - 4); ctx.rotate(-Math.PI / 2); ctx.textAlign = "left";
      ctx.fillText(show(tokens[i]).slice(0, 12), 0, 0); ctx.restore();
    }
  }
  // colour scale: √ spacing, as the cells
  const lx = margin + side + 14, ly = margin, lh = Math.max(120, Math.min(side, 260)), lw = 12;
  for (let y = 0; y < lh; y++) {
    const b = Math.round(255 * (1 - y / (lh - 1)));
    ctx.fillStyle = `rgb(${ramp[b * 3]}, ${ramp[b * 3 + 1]}, ${ramp[b * 3 + 2]})`;
    ctx.fillRect(lx, ly + y, lw, 1);
  }
  ctx.strokeStyle = theme.border; ctx.strokeRect(lx - 0.5, ly - 0.5, lw + 1, lh + 1);
  ctx.font = "11px sans-serif"; ctx.fillStyle = theme.fg; ctx.textAlign = "left"; ctx.textBaseline = "middle";
  for (const w of [1, 0.5, 0.25, 0.1, 0.01, 0]) {
    const y = ly + (1 - Math.sqrt(w)) * (lh - 1);
    ctx.fillRect(lx + lw, y, 3, 1);
    ctx.fillText(String(w), lx + lw + 5, y);
  }
  if (causal) {
    ctx.fillStyle = `rgb(${theme.masked.join(", ")})`; ctx.fillRect(lx, ly + lh + 10, lw, lw);
    ctx.fillStyle = theme.fg; ctx.fillText("masked", lx + lw + 5, ly + lh + 10 + lw / 2);
  }
  const headText = heads.length === 1 ? `head ${heads[0]}` : `mean of heads ${heads.join(", ")}`;
  const caption = h("div", "llmm-caption", `Layer ${model.get("layer")}, ${headText}: rows = queries (T = ${T}), columns = keys (T = ${T})`);
  canvas.onmousemove = (ev) => {
    const r = canvas.getBoundingClientRect();
    const j = Math.floor((ev.clientX - r.left - margin) / px), i = Math.floor((ev.clientY - r.top - margin) / px);
    if (i < 0 || j < 0 || i >= T || j >= T) { s.tooltip.hidden = true; return; }
    const text = causal && j > i
      ? `“${show(tokens[i])}” #${i} cannot see “${show(tokens[j])}” #${j}: it comes later (causal mask)`
      : `“${show(tokens[i])}” #${i} → “${show(tokens[j])}” #${j}: ${mean[i * T + j].toFixed(3)}`;
    s.tooltip.textContent = text;
    s.tooltip.hidden = false;
    const rr = s.root.getBoundingClientRect();
    const x = ev.clientX - rr.left + 12;
    s.tooltip.style.left = `${Math.max(0, Math.min(x, rr.width - s.tooltip.offsetWidth - 4))}px`;
    s.tooltip.style.top = `${ev.clientY - rr.top + 12}px`;
    s.say(text);
  };
  canvas.onmouseleave = () => { s.tooltip.hidden = true; };
  canvas.dataset.geometry = JSON.stringify({ margin, px, side, legend: [lx, ly, lw, lh] });
  s.stage.replaceChildren(caption, canvas);
  s.say(`Layer ${model.get("layer")}, ${headText}. Hover a cell for the token pair.`);
}

// ─── neuron view ────────────────────────────────────────────────────────────────────

/** q_i, each k_j, their product, and the numbers from dot product to softmax. @param {State} s @param {Uint8Array} att @param {Float32Array} qk */
function drawNeuron(s, att, qk) {
  const { model, store, theme } = s;
  const T = store.T, H = store.H, d = model.get("d_head"), tokens = model.get("tokens"), causal = model.get("causal");
  const head = model.get("heads")[0] ?? 0;
  const i = Math.min(model.get("token"), T - 1);
  const q = qk.subarray((head * T + i) * d, (head * T + i + 1) * d);
  const kAt = (/** @type {number} */ j) => qk.subarray(((H + head) * T + j) * d, ((H + head) * T + j + 1) * d);
  const scale = 1 / Math.sqrt(d);
  const dots = new Float32Array(T), scores = new Float32Array(T), weights = new Float32Array(T);
  let top = -Infinity;
  for (let j = 0; j < T; j++) {
    const k = kAt(j);
    let v = 0;
    for (let c = 0; c < d; c++) v += q[c] * k[c];
    dots[j] = v; scores[j] = v * scale;
    if (!(causal && j > i)) top = Math.max(top, scores[j]);
  }
  let total = 0;
  for (let j = 0; j < T; j++) { weights[j] = causal && j > i ? 0 : Math.exp(scores[j] - top); total += weights[j]; }
  for (let j = 0; j < T; j++) weights[j] /= total;
  const captured = (/** @type {number} */ j) => WEIGHT[att[head * T * T + i * T + j]];
  let maxDiff = 0;
  for (let j = 0; j < T; j++) maxDiff = Math.max(maxDiff, Math.abs(weights[j] - captured(j)));
  const rows = T <= 24 ? [...Array(T).keys()] : [...weights.keys()].sort((a, b) => weights[b] - weights[a]).slice(0, 16).sort((a, b) => a - b);
  // Columns, each with its header over it: label | k_j | q_i ⊙ k_j | q·k | ÷√d | softmax bar | weight | captured.
  // The vectors take what width is left after the numbers, so the canvas fits the output area.
  const rh = 16, labelW = 96, gap = 12, top0 = 44;
  const num = [["q·k", 44], [`÷√${d}`, 52], ["softmax", 56], ["weight", 48], ["captured", 60]];
  const numW = num.reduce((a, [, w]) => a + /** @type {number} */ (w), 0) + 4;
  const avail = s.width() - labelW - numW - 2 * gap;
  const both = avail >= 2 * d; // room for both vectors at ≥ 1 px per dimension
  const cw = Math.max(1, Math.min(10, Math.floor(avail / ((both ? 2 : 1) * d))));
  const vecW = d * cw;
  const xK = labelW, xP = xK + vecW + gap, xN = (both ? xP + vecW : xK + vecW) + gap;
  const W = xN + numW, Ht = top0 + (rows.length + 1) * rh + 8;
  const colX = []; // right edge of each numeric column
  let x = xN;
  for (const [, w] of num) { x += /** @type {number} */ (w); colX.push(x); }
  const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", "llmm-canvas llmm-neuron-canvas"));
  const ctx = sizeCanvas(canvas, W, Ht);
  let maxQK = 1e-6, maxP = 1e-6;
  for (const c of q) maxQK = Math.max(maxQK, Math.abs(c));
  for (const j of rows) { const k = kAt(j); for (let c = 0; c < d; c++) { maxQK = Math.max(maxQK, Math.abs(k[c])); maxP = Math.max(maxP, Math.abs(q[c] * k[c])); } }
  const [br, bgc, bb] = theme.bgRGB;
  const div = (/** @type {number} */ v, /** @type {number} */ m) => { // diverging: background -> blue (+) or red (−)
    const f = Math.max(-1, Math.min(1, v / m));
    const [r, g, b] = f >= 0 ? (theme.dark ? [100, 170, 240] : [33, 102, 172]) : (theme.dark ? [240, 110, 110] : [178, 24, 43]);
    const a = Math.abs(f);
    return `rgb(${Math.round(br + a * (r - br))}, ${Math.round(bgc + a * (g - bgc))}, ${Math.round(bb + a * (b - bb))})`;
  };
  const mono = getComputedStyle(s.root).getPropertyValue("--llmm-mono") || "monospace";
  ctx.font = "11px sans-serif"; ctx.fillStyle = theme.fg; ctx.textBaseline = "middle"; ctx.textAlign = "left";
  ctx.fillText(`k_j (1×${d})`, xK, 10);
  if (both) ctx.fillText(`q_i ⊙ k_j (1×${d})`, xP, 10);
  ctx.textAlign = "right";
  num.forEach(([name], c) => ctx.fillText(/** @type {string} */ (name), colX[c] - 2, 10));
  // the query row
  const yq = 26;
  ctx.fillText(`q_i: #${i} ${show(tokens[i]).slice(0, 8)}`, labelW - 6, yq + rh / 2 - 2);
  const cellW = cw - (cw > 4 ? 1 : 0);
  for (let c = 0; c < d; c++) { ctx.fillStyle = div(q[c], maxQK); ctx.fillRect(xK + c * cw, yq, cellW, rh - 4); }
  ctx.font = `11px ${mono}`;
  rows.forEach((j, r) => {
    const y = top0 + r * rh;
    const masked = causal && j > i;
    const k = kAt(j);
    ctx.globalAlpha = masked ? 0.4 : 1;
    ctx.fillStyle = theme.fg; ctx.textAlign = "right";
    ctx.fillText(`#${j} ${show(tokens[j]).slice(0, 9)}`, labelW - 6, y + rh / 2);
    for (let c = 0; c < d; c++) {
      ctx.fillStyle = div(k[c], maxQK); ctx.fillRect(xK + c * cw, y + 1, cellW, rh - 3);
      if (both) { ctx.fillStyle = div(q[c] * k[c], maxP); ctx.fillRect(xP + c * cw, y + 1, cellW, rh - 3); }
    }
    ctx.fillStyle = theme.fg; ctx.textAlign = "right";
    ctx.fillText(dots[j].toFixed(1), colX[0] - 2, y + rh / 2);
    ctx.fillText(masked ? "−∞" : scores[j].toFixed(2), colX[1] - 2, y + rh / 2);
    ctx.fillStyle = theme.accent;
    ctx.fillRect(colX[1] + 4, y + 3, (colX[2] - colX[1] - 8) * weights[j], rh - 6);
    ctx.fillStyle = theme.fg;
    ctx.fillText(weights[j].toFixed(3), colX[3] - 2, y + rh / 2);
    ctx.fillStyle = theme.fg2;
    ctx.fillText(captured(j).toFixed(3), colX[4] - 2, y + rh / 2);
    ctx.globalAlpha = 1;
  });
  canvas.onmousemove = (ev) => {
    const rect = canvas.getBoundingClientRect();
    const px = ev.clientX - rect.left, py = ev.clientY - rect.top;
    const r = Math.floor((py - top0) / rh);
    const inK = px >= xK && px < xK + vecW, inP = both && px >= xP && px < xP + vecW;
    if (r < 0 || r >= rows.length || !(inK || inP)) return;
    const c = Math.floor((px - (inK ? xK : xP)) / cw), j = rows[r];
    s.say(`dimension ${c}: q_i[${c}] = ${q[c].toFixed(3)} · k_j[${c}] = ${kAt(j)[c].toFixed(3)} · product = ${(q[c] * kAt(j)[c]).toFixed(3)} (key #${j} “${show(tokens[j])}”)`);
  };
  const shapes = h("div", "llmm-caption",
    `Layer ${model.get("layer")}, head ${head}, query #${i} “${show(tokens[i])}”. ` +
    `Q: T×d_head = ${T}×${d} · K: ${T}×${d} · q_i: 1×${d} · scores q_i·Kᵀ/√${d}: 1×${T} · attention row: 1×${T}.`);
  const formula = h("div", "llmm-formula",
    `attention(i→j) = softmax_j(q_i·k_j / √${d})${causal ? ", with keys after i masked to −∞" : ""}. ` +
    `${rows.length < T ? `Showing the ${rows.length} keys with the most attention out of ${T}. ` : ""}` +
    `${both ? "" : "(Too narrow for q_i ⊙ k_j: widen the output to see it.) "}` +
    `Recomputed here vs captured by the model: max |Δ| = ${maxDiff.toFixed(3)} (float16 q/k, 8-bit weights).`);
  s.stage.replaceChildren(shapes, canvas, formula);
  canvas.dataset.maxDiff = String(maxDiff);
  canvas.dataset.geometry = JSON.stringify({ xK, xP: both ? xP : -1, xN, colX, cw, top0, rh, W });
  s.say(`q_i · k_j adds up ${d} elementwise products; hover a cell to see one.`);
}

// ─── the widget ─────────────────────────────────────────────────────────────────────

/** @param {{ model: AnyModel, el: HTMLElement }} ctx */
function render({ model, el }) {
  const t0 = performance.now();
  const root = h("div", "llmm-attn");
  const header = h("div", "llmm-header");
  const title = h("div", "llmm-title");
  const dims = h("div", "llmm-dims");
  header.append(title, dims);
  const toolbar = h("div", "llmm-toolbar");
  const tabs = h("div", "llmm-tabs");
  for (const v of VIEWS) {
    const b = /** @type {HTMLButtonElement} */ (h("button", "llmm-tab", VIEW_LABELS[/** @type {keyof VIEW_LABELS} */ (v)]));
    b.dataset.view = v;
    b.onclick = () => { model.set("view", v); model.save_changes(); };
    tabs.append(b);
  }
  const layerLabel = h("label", "llmm-field", "Layer ");
  const layerSelect = /** @type {HTMLSelectElement} */ (h("select", "llmm-layer"));
  layerLabel.append(layerSelect);
  layerSelect.onchange = () => { model.set("layer", Number(layerSelect.value)); model.save_changes(); };
  const headBox = h("div", "llmm-heads");
  const allHeads = /** @type {HTMLButtonElement} */ (h("button", "llmm-all", "All"));
  allHeads.title = "Show every head";
  const solo = /** @type {HTMLButtonElement} */ (h("button", "llmm-solo", "Solo"));
  solo.title = "Solo: a click on a head shows only that head (double-click or Alt-click does this any time)";
  solo.setAttribute("aria-pressed", "false");
  const topkLabel = h("label", "llmm-field", "top-k ");
  const topkInput = /** @type {HTMLInputElement} */ (h("input", "llmm-topk"));
  topkInput.type = "number"; topkInput.min = "0"; topkInput.title = "Keys drawn per query (0 = all)";
  topkInput.onchange = () => { model.set("top_k", Math.max(0, Number(topkInput.value) || 0)); model.save_changes(); };
  topkLabel.append(topkInput);
  const pairLabel = h("label", "llmm-field", "Sentences ");
  const pairSelect = /** @type {HTMLSelectElement} */ (h("select", "llmm-pair"));
  for (const [v, text] of [["all", "all ↔ all"], ["ab", "A → B"], ["ba", "B → A"], ["aa", "A → A"], ["bb", "B → B"]]) {
    const o = /** @type {HTMLOptionElement} */ (h("option", "", text)); o.value = v; pairSelect.append(o);
  }
  pairSelect.onchange = () => { model.set("pair_filter", pairSelect.value); model.save_changes(); };
  pairLabel.append(pairSelect);
  const tokenLabel = h("label", "llmm-field", "Query token ");
  const tokenSelect = /** @type {HTMLSelectElement} */ (h("select", "llmm-token"));
  tokenSelect.onchange = () => { model.set("token", Number(tokenSelect.value)); model.save_changes(); };
  tokenLabel.append(tokenSelect);
  toolbar.append(tabs, layerLabel, headBox, topkLabel, pairLabel, tokenLabel);
  const stage = h("div", "llmm-stage");
  const tooltip = h("div", "llmm-tooltip");
  tooltip.hidden = true;
  const legend = h("p", "llmm-legend");
  const status = h("div", "llmm-status");
  status.setAttribute("aria-live", "polite");
  root.append(header, toolbar, stage, legend, status, tooltip);
  el.append(root);

  /** @type {State} */
  const s = {
    model, root, stage, status, tooltip,
    store: new Store(model),
    theme: themeOf(root),
    hover: null,
    focusHead: -1,
    solo: false,
    lastWidth: 0,
    headAtt: null,
    say(text) { status.textContent = text; status.title = text; },
    width() {
      this.lastWidth = stage.clientWidth; // 0 while not in the page yet: the resize observer redraws then
      return Math.max(200, (stage.clientWidth || root.clientWidth || el.clientWidth || 900) - 10); // inside the stage's padding
    },
  };
  s.store.onSlow = (message) => {
    if (!stage.querySelector(".llmm-error")) stage.replaceChildren(h("div", "llmm-error", message));
    root.dataset.error = message;
    s.say("");
  };
  let drawToken = 0; // drops stale async redraws

  /** Heads a view draws: the neuron view draws one; the matrix view with none selected averages all. */
  const drawnHeads = () => {
    const heads = model.get("heads"), view = model.get("view");
    if (view === "neuron") return [heads[0] ?? 0];
    return view === "matrix" && !heads.length ? [...Array(s.store.H).keys()] : heads;
  };
  /** @param {number} i @param {boolean} only */
  const pickHead = (i, only) => {
    let next;
    if (only || s.solo || model.get("view") === "neuron") next = [i];
    else {
      const now = new Set(model.get("heads"));
      if (now.has(i)) now.delete(i); else now.add(i);
      next = [...now].sort((x, y) => x - y);
    }
    model.set("heads", next);
    model.save_changes();
  };
  allHeads.onclick = () => { model.set("heads", [...Array(s.store.H).keys()]); model.save_changes(); };
  solo.onclick = () => {
    s.solo = !s.solo;
    solo.setAttribute("aria-pressed", String(s.solo));
    const heads = model.get("heads");
    if (s.solo && heads.length > 1) { model.set("heads", [heads[0]]); model.save_changes(); }
  };

  function fillControls() {
    const T = s.store.T, H = s.store.H, L = model.get("n_layers"), d = model.get("d_head");
    const view = model.get("view");
    title.textContent = model.get("title") || "Attention";
    const kind = model.get("causal")
      ? "causal decoder: a token sees itself and earlier tokens only"
      : "encoder: every token sees every token";
    dims.textContent =
      `${model.get("model_name") ? model.get("model_name") + " · " : ""}${L} layers × ${H} heads · T = ${T} tokens` +
      `${d ? ` · d_head = ${d}` : ""} · one pattern per head: T×T = ${T}×${T} · ${kind}`;
    for (const b of /** @type {NodeListOf<HTMLButtonElement>} */ (tabs.querySelectorAll("button"))) {
      b.classList.toggle("on", b.dataset.view === view);
      b.setAttribute("aria-pressed", String(b.dataset.view === view));
    }
    const neuronTab = /** @type {HTMLButtonElement} */ (tabs.querySelector('[data-view="neuron"]'));
    neuronTab.disabled = !model.get("has_qk");
    neuronTab.title = model.get("has_qk") ? "" : "Queries and keys were not captured (pass q= and k=).";
    if (layerSelect.options.length !== L) {
      layerSelect.replaceChildren(...[...Array(L).keys()].map((l) => { const o = /** @type {HTMLOptionElement} */ (h("option", "", String(l))); o.value = String(l); return o; }));
    }
    layerSelect.value = String(model.get("layer"));
    const buttons = () => /** @type {NodeListOf<HTMLButtonElement>} */ (headBox.querySelectorAll(".llmm-head"));
    if (buttons().length !== H || headBox.dataset.dark !== String(s.theme.dark)) {
      headBox.replaceChildren(h("span", "llmm-heads-label", "Heads "));
      headBox.dataset.dark = String(s.theme.dark);
      for (let i = 0; i < H; i++) {
        const b = /** @type {HTMLButtonElement} */ (h("button", "llmm-head", String(i)));
        const colour = headColour(i, H, s.theme.dark);
        b.dataset.head = String(i);
        b.style.setProperty("--head", colour);
        b.style.setProperty("--head-ink", inkOn(colour));
        b.title = `Head ${i}: click to toggle · double-click or Alt-click: only this head`;
        b.onclick = (ev) => pickHead(i, ev.altKey);
        b.ondblclick = () => pickHead(i, true);
        b.onmouseenter = () => { if (model.get("view") === "head") { s.focusHead = i; redrawHover(); } };
        b.onmouseleave = () => { if (s.focusHead >= 0) { s.focusHead = -1; redrawHover(); } };
        headBox.append(b);
      }
      headBox.append(allHeads, solo);
    }
    const shown = new Set(drawnHeads()); // buttons say what is drawn
    for (const b of buttons()) {
      const on = shown.has(Number(b.dataset.head));
      b.classList.toggle("on", on);
      b.setAttribute("aria-pressed", String(on));
    }
    allHeads.hidden = view === "neuron";
    solo.hidden = view === "neuron";
    layerLabel.hidden = view === "model";
    headBox.hidden = view === "model";
    topkLabel.hidden = view !== "head";
    topkInput.value = String(model.get("top_k"));
    pairLabel.hidden = view !== "head" || model.get("sentence_b_start") < 0;
    pairSelect.value = model.get("pair_filter");
    tokenLabel.hidden = view !== "neuron";
    if (tokenSelect.options.length !== T) {
      tokenSelect.replaceChildren(...model.get("tokens").map((/** @type {string} */ tok, /** @type {number} */ i) => { const o = /** @type {HTMLOptionElement} */ (h("option", "", `#${i} ${show(tok)}`)); o.value = String(i); return o; }));
    }
    tokenSelect.value = String(model.get("token"));
    legend.textContent = LEGENDS[/** @type {keyof LEGENDS} */ (view)];
  }

  /** @param {string} view */
  function done(view) {
    root.dataset.rendered = `${view}:${model.get("layer")}:${drawToken}`;
    if (!root.dataset.firstRenderMs) root.dataset.firstRenderMs = String(Math.round(performance.now() - t0));
  }

  /** The head view again with the current hover or focused head, if it is showing. */
  function redrawHover() {
    const att = s.store.layers.get(model.get("layer"));
    if (model.get("view") === "head" && att && stage.querySelector(".llmm-head-canvas")) drawHead(s, att);
  }

  async function redraw() {
    const token = ++drawToken;
    s.theme = themeOf(root);
    root.dataset.theme = s.theme.dark ? "dark" : "light";
    fillControls();
    const view = model.get("view");
    const layer = model.get("layer");
    root.dataset.view = view;
    delete root.dataset.error;
    tooltip.hidden = true;
    try {
      if (view === "model") {
        drawModel(s);
      } else if (view === "neuron") {
        if (!model.get("has_qk")) throw new Error("Queries and keys were not captured for this widget; pass q= and k= (the %attnviz magic does).");
        if (!s.store.qk.has(layer) || !s.store.layers.has(layer)) s.say(`Loading layer ${layer}…`);
        const [att, qk] = await Promise.all([s.store.layer(layer), s.store.qkOf(layer)]);
        if (token !== drawToken) return;
        drawNeuron(s, att, qk);
      } else {
        if (!s.store.layers.has(layer)) s.say(`Loading layer ${layer}…`);
        const att = await s.store.layer(layer);
        if (token !== drawToken) return;
        if (view === "head") {
          stage.querySelector(".llmm-head-canvas") || stage.replaceChildren();
          drawHead(s, att);
        } else drawMatrix(s, att);
      }
      delete root.dataset.error;
      done(view);
    } catch (e) {
      if (token !== drawToken) return;
      const message = String(/** @type {Error} */ (e).message || e);
      stage.replaceChildren(h("div", "llmm-error", message));
      s.say("");
      root.dataset.error = message;
      done(view);
    }
  }

  const onChange = () => {
    s.hover = null;
    if (model.get("view") !== "head") stage.querySelector(".llmm-head-canvas")?.remove();
    redraw();
  };
  const onData = () => { s.store.reload(); stage.replaceChildren(); redraw(); };
  const events = ["change:view", "change:layer", "change:heads", "change:top_k", "change:pair_filter", "change:token", "change:tokens"];
  for (const e of events) model.on(e, onChange);
  model.on("change:attention", onData);
  model.on("change:qk", onData);
  model.on("change:thumbnails", onChange);

  // Follow the output area's width and the host's theme.
  // A wider box, or one narrower by more than a few pixels, redraws (a shrink-to-fit host
  // that follows the canvas would otherwise shrink it step by step).
  let frame = 0;
  const later = () => { cancelAnimationFrame(frame); frame = requestAnimationFrame(() => redraw()); };
  const resize = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => {
    const w = stage.clientWidth, was = s.lastWidth;
    if (w && (w > was + 2 || w < was - 16)) later();
  });
  resize?.observe(stage);
  const themeWatch = new MutationObserver(() => { if (themeOf(root).dark !== s.theme.dark) later(); });
  themeWatch.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name", "class", "data-theme"] });
  themeWatch.observe(document.documentElement, { attributes: true, attributeFilter: ["class", "data-theme"] });
  const media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  media?.addEventListener?.("change", later);

  redraw();
  return () => {
    for (const e of events) model.off(e, onChange);
    model.off("change:attention", onData);
    model.off("change:qk", onData);
    model.off("change:thumbnails", onChange);
    resize?.disconnect();
    themeWatch.disconnect();
    media?.removeEventListener?.("change", later);
    cancelAnimationFrame(frame);
    s.store.dispose();
  };
}

export default { render };
