// @ts-check
/**
 * AttentionWidget front end: head, model, matrix and neuron views of one forward pass.
 *
 * Plain ES module, no dependencies, drawn on <canvas>. Attention arrives as bytes with
 * the "sqrt-uint8" code (weight = (byte / 255)²); queries and keys arrive as float16.
 * Layers that were not sent with the widget are asked for with custom messages
 * ({type: "get_layer" | "get_qk", request_id, layer}); Python answers with one buffer,
 * or with {type: "error", request_id, message}.
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
 */

const VIEWS = ["head", "model", "matrix", "neuron"];
const VIEW_LABELS = { head: "Head view", model: "Model view", matrix: "Matrix view", neuron: "Neuron view" };
const LEGENDS = {
  head:
    "Left: each token as a query (the token doing the looking). Right: the same tokens as keys (the tokens being looked at). " +
    "A line's opacity is the attention weight; its colour is the head. Only each query's top-k keys are drawn. " +
    "Hover a token to isolate its lines; click a left token to pick it for the neuron view; click a head's square to toggle it.",
  model:
    "Every layer (rows) × head (columns). Each square is that head's T×T pattern: rows are queries, columns are keys, " +
    "darker = more attention (max-pooled to fit). Heads that look at the previous token draw a diagonal; heads that park attention on the first token draw a column. Click a square to open it.",
  matrix:
    "Row i, column j: how much query token i attends to key token j. Each row sums to 1 (a softmax). " +
    "Colour ∝ √weight so small weights stay visible. Several selected heads are averaged.",
  neuron:
    "How one row of attention is made: the query vector q_i meets each key k_j; their elementwise product summed is the dot product q_i·k_j; " +
    "divided by √d_head it becomes a score; the softmax over all keys j turns scores into weights that sum to 1.",
};
const MIN_BYTE = 26; // (26/255)² ≈ 0.01: lighter lines are not drawn in the head view
const REQUEST_TIMEOUT_MS = 8000;

/** byte -> attention weight */
const WEIGHT = new Float32Array(256).map((_, b) => (b / 255) ** 2);

/** byte (√ scale) -> [r, g, b]: white through blue to navy */
const RAMP = (() => {
  const stops = [
    [0, [255, 255, 255]],
    [0.35, [158, 202, 225]],
    [0.7, [49, 130, 189]],
    [1, [8, 48, 107]],
  ];
  const lut = new Uint8Array(256 * 3);
  for (let b = 0; b < 256; b++) {
    const x = b / 255;
    let s = 0;
    while (s < stops.length - 2 && x > /** @type {number} */ (stops[s + 1][0])) s++;
    const [x0, c0] = /** @type {[number, number[]]} */ (stops[s]);
    const [x1, c1] = /** @type {[number, number[]]} */ (stops[s + 1]);
    const f = (x - x0) / (x1 - x0);
    for (let c = 0; c < 3; c++) lut[b * 3 + c] = Math.round(c0[c] + f * (c1[c] - c0[c]));
  }
  return lut;
})();
const MASKED = [232, 232, 232]; // causal mask: a query cannot see later keys

/** @type {Float32Array | null} */
let HALF = null;
/** float16 bits -> float32, through a 65536-entry table built on first use */
function halfTable() {
  if (HALF) return HALF;
  HALF = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    HALF[h] = e === 0 ? sign * 2 ** -14 * (f / 1024) : e === 31 ? (f ? NaN : sign * Infinity) : sign * 2 ** (e - 15) * (1 + f / 1024);
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

/** @param {number} h @param {number} n */
function headColour(h, n) {
  return `hsl(${Math.round(h * 137.508 + 210) % 360}, 70%, 42%)`; // golden angle: neighbours differ
}

/** @param {string} text */
function show(text) {
  return text.replace(/\n/g, "⏎").replace(/^Ġ/, "·").replace(/^▁/, "·").replace(/ /g, "·") || "∅";
}

/** @param {HTMLCanvasElement} canvas @param {number} w @param {number} h */
function sizeCanvas(canvas, w, h) {
  const dpr = Math.min(window.devicePixelRatio || 1, 2);
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** @param {string} tag @param {string} [cls] @param {string} [text] */
function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The arrays the browser holds, filled from traits and from Python's answers. */
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
    this.onMessage = this.onMessage.bind(this);
    model.on("msg:custom", this.onMessage);
    this.reload();
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

  /** @param {string} type @param {number} layer @returns {Promise<[any, any[]]>} */
  request(type, layer) {
    const key = `${type}:${layer}`;
    const running = this.inflight.get(key);
    if (running) return running;
    const request_id = this.nextId++;
    const promise = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(request_id);
        const saved = this.model.get("attention_layers").join(", ");
        reject(new Error(`No answer from Python for layer ${layer}. A saved notebook holds only layer(s) ${saved}; run the cell again to explore the others.`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(request_id, { resolve, reject, timer });
      this.model.send({ type, request_id, layer });
    });
    this.inflight.set(key, promise);
    promise.finally(() => this.inflight.delete(key)).catch(() => {});
    return /** @type {Promise<[any, any[]]>} */ (promise);
  }

  /** @param {any} content @param {any[]} buffers */
  onMessage(content, buffers) {
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

/** @param {{ model: AnyModel, el: HTMLElement }} ctx */
function render({ model, el }) {
  const t0 = performance.now();
  const store = new Store(model);
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

  /** @type {{ side: "left" | "right", index: number } | null} */
  let hover = null;
  let drawToken = 0; // drops stale async redraws

  function fillControls() {
    const T = store.T, H = store.H, L = model.get("n_layers"), d = model.get("d_head");
    const view = model.get("view");
    title.textContent = model.get("title") || "Attention";
    const kind = model.get("causal")
      ? "causal decoder: a token sees itself and earlier tokens only"
      : "encoder: every token sees every token";
    dims.textContent =
      `${model.get("model_name") ? model.get("model_name") + " · " : ""}${L} layers × ${H} heads · T = ${T} tokens` +
      `${d ? ` · d_head = ${d}` : ""} · one pattern per head: T×T = ${T}×${T} · ${kind}`;
    for (const b of tabs.querySelectorAll("button")) b.classList.toggle("on", b.dataset.view === view);
    const neuronTab = /** @type {HTMLButtonElement} */ (tabs.querySelector('[data-view="neuron"]'));
    neuronTab.disabled = !model.get("has_qk");
    neuronTab.title = model.get("has_qk") ? "" : "Queries and keys were not captured (pass q= and k=).";
    if (layerSelect.options.length !== L) {
      layerSelect.replaceChildren(...[...Array(L).keys()].map((l) => { const o = /** @type {HTMLOptionElement} */ (h("option", "", String(l))); o.value = String(l); return o; }));
    }
    layerSelect.value = String(model.get("layer"));
    const selected = new Set(model.get("heads"));
    if (headBox.childElementCount !== H + 1) {
      headBox.replaceChildren(h("span", "llmm-heads-label", "Heads "));
      for (let i = 0; i < H; i++) {
        const b = /** @type {HTMLButtonElement} */ (h("button", "llmm-head", String(i)));
        b.dataset.head = String(i);
        b.style.setProperty("--head", headColour(i, H));
        b.title = `Head ${i}: click to toggle`;
        b.onclick = () => {
          const now = new Set(model.get("heads"));
          if (now.has(i)) now.delete(i); else now.add(i);
          model.set("heads", [...now].sort((x, y) => x - y));
          model.save_changes();
        };
        headBox.append(b);
      }
    }
    for (const b of /** @type {NodeListOf<HTMLElement>} */ (headBox.querySelectorAll("button"))) b.classList.toggle("on", selected.has(Number(b.dataset.head)));
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

  async function redraw() {
    const token = ++drawToken;
    fillControls();
    const view = model.get("view");
    const layer = model.get("layer");
    root.dataset.view = view;
    tooltip.hidden = true;
    try {
      if (view === "model") {
        drawModel();
      } else if (view === "neuron") {
        if (!model.get("has_qk")) throw new Error("Queries and keys were not captured for this widget; pass q= and k= (the %attnviz magic does).");
        if (!store.qk.has(layer) || !store.layers.has(layer)) status.textContent = `Loading layer ${layer}…`;
        const [att, qk] = await Promise.all([store.layer(layer), store.qkOf(layer)]);
        if (token !== drawToken) return;
        drawNeuron(att, qk);
      } else {
        if (!store.layers.has(layer)) status.textContent = `Loading layer ${layer}…`;
        const att = await store.layer(layer);
        if (token !== drawToken) return;
        if (view === "head") drawHead(att); else drawMatrix(att);
      }
      done(view);
    } catch (e) {
      if (token !== drawToken) return;
      stage.replaceChildren(h("div", "llmm-error", String(/** @type {Error} */ (e).message || e)));
      status.textContent = "";
      root.dataset.error = String(/** @type {Error} */ (e).message || e);
      done(view);
    }
  }

  // ---- head view -------------------------------------------------------------------
  /** @type {HTMLCanvasElement | null} */
  let headCanvas = null;
  /** @type {any} */
  let headGeom = null;

  /** @param {Uint8Array} att */
  function drawHead(att, keepCanvas = false) {
    const T = store.T, H = store.H, tokens = model.get("tokens");
    const heads = model.get("heads");
    const [left, right] = sides(model.get("pair_filter"), model.get("sentence_b_start"), T);
    const n = Math.max(left.length, right.length);
    const rowH = n <= 40 ? 18 : Math.max(2, Math.min(18, Math.floor(720 / n)));
    const labels = rowH >= 8;
    const labelW = labels ? 120 : 16, gap = 260, pad = 8;
    const W = labelW * 2 + gap, Ht = n * rowH + 2 * pad;
    if (!keepCanvas || !headCanvas) {
      headCanvas = /** @type {HTMLCanvasElement} */ (h("canvas", "llmm-canvas llmm-head-canvas"));
      headCanvas.onmousemove = (ev) => {
        const g = headGeom;
        const r = /** @type {HTMLCanvasElement} */ (headCanvas).getBoundingClientRect();
        const x = ev.clientX - r.left, y = ev.clientY - r.top;
        const row = Math.floor((y - g.pad) / g.rowH);
        const side = x < g.labelW + g.gap / 2 ? "left" : "right";
        const list = side === "left" ? g.left : g.right;
        const next = row >= 0 && row < list.length ? { side, index: list[row] } : null;
        if (JSON.stringify(next) !== JSON.stringify(hover)) { hover = next; drawHead(att, true); }
      };
      headCanvas.onmouseleave = () => { if (hover) { hover = null; drawHead(att, true); } };
      headCanvas.onclick = () => {
        if (hover && hover.side === "left") { model.set("token", hover.index); model.save_changes(); }
      };
      stage.replaceChildren(headCanvas);
    }
    headGeom = { rowH, labelW, gap, pad, left, right };
    const ctx = sizeCanvas(headCanvas, W, Ht);
    ctx.clearRect(0, 0, W, Ht);
    const yOf = (/** @type {number} */ row) => pad + row * rowH + rowH / 2;
    const rowOfRight = new Int32Array(T).fill(-1);
    right.forEach((j, r) => (rowOfRight[j] = r));
    const rowOfLeft = new Int32Array(T).fill(-1);
    left.forEach((i, r) => (rowOfLeft[i] = r));
    const x0 = labelW, x1 = labelW + gap;
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
      ctx.strokeStyle = headColour(head, H);
      buckets.forEach((path, bucket) => {
        ctx.globalAlpha = Math.min(1, 0.12 + (0.88 * (bucket + 0.5)) / 16);
        ctx.stroke(path);
      });
    }
    ctx.globalAlpha = 1;
    // token labels (or ticks when rows are too thin for text)
    ctx.font = `${Math.min(12, rowH - 3)}px ui-monospace, SFMono-Regular, Menlo, monospace`;
    ctx.textBaseline = "middle";
    for (const [list, side] of /** @type {[number[], string][]} */ ([[left, "left"], [right, "right"]])) {
      list.forEach((i, r) => {
        const y = yOf(r);
        const isHover = hover && hover.side === side && hover.index === i;
        const isToken = side === "left" && i === model.get("token");
        if (isHover || isToken) {
          ctx.fillStyle = isHover ? "rgba(255, 200, 0, 0.45)" : "rgba(0, 0, 0, 0.08)";
          ctx.fillRect(side === "left" ? 0 : x1, y - rowH / 2, labelW, rowH);
        }
        if (labels) {
          ctx.fillStyle = "#222";
          ctx.textAlign = side === "left" ? "right" : "left";
          ctx.fillText(show(tokens[i]).slice(0, 16), side === "left" ? x0 - 6 : x1 + 6, y);
        } else {
          ctx.fillStyle = "#999";
          ctx.fillRect(side === "left" ? x0 - 6 : x1 + 2, y - 0.5, 4, 1);
        }
      });
    }
    headCanvas.dataset.lines = String(drawn);
    if (!heads.length) status.textContent = "No heads selected: click a head's square to show it.";
    else if (hover) status.textContent = describeToken(att, hover, heads);
    else status.textContent = `Layer ${model.get("layer")} · heads ${heads.join(", ")} · ${drawn} lines (top ${model.get("top_k") || "all"} keys per query)`;
  }

  /** Say in words where a hovered token's attention goes. @param {Uint8Array} att @param {{side: string, index: number}} hv @param {number[]} heads */
  function describeToken(att, hv, heads) {
    const T = store.T, tokens = model.get("tokens");
    const sum = new Float32Array(T);
    for (const head of heads) {
      for (let j = 0; j < T; j++) {
        const b = hv.side === "left" ? att[head * T * T + hv.index * T + j] : att[head * T * T + j * T + hv.index];
        sum[j] += WEIGHT[b] / heads.length;
      }
    }
    const best = [...sum.keys()].sort((a, b) => sum[b] - sum[a]).slice(0, 4);
    const list = best.map((j) => `“${show(tokens[j])}” #${j} ${sum[j].toFixed(2)}`).join(" · ");
    return hv.side === "left"
      ? `“${show(tokens[hv.index])}” #${hv.index} as a query attends most to: ${list} (mean over heads ${heads.join(", ")})`
      : `“${show(tokens[hv.index])}” #${hv.index} as a key is looked at most by: ${list} (mean over heads ${heads.join(", ")})`;
  }

  // ---- model view ------------------------------------------------------------------
  function drawModel() {
    const L = model.get("n_layers"), H = store.H, S = model.get("thumb_size");
    const thumbs = bytesOf(model.get("thumbnails"));
    const cell = Math.max(24, Math.min(56, Math.floor(640 / H) - 4)), gap = 4, left = 30, top = 18;
    const W = left + H * (cell + gap), Ht = top + L * (cell + gap);
    const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", "llmm-canvas llmm-model-canvas"));
    const ctx = sizeCanvas(canvas, W, Ht);
    const sheet = document.createElement("canvas");
    sheet.width = H * S; sheet.height = L * S;
    const sctx = /** @type {CanvasRenderingContext2D} */ (sheet.getContext("2d"));
    const img = sctx.createImageData(H * S, L * S);
    for (let l = 0; l < L; l++) for (let hh = 0; hh < H; hh++) for (let r = 0; r < S; r++) for (let c = 0; c < S; c++) {
      const b = thumbs[((l * H + hh) * S + r) * S + c] || 0;
      const p = ((l * S + r) * H * S + hh * S + c) * 4;
      img.data[p] = RAMP[b * 3]; img.data[p + 1] = RAMP[b * 3 + 1]; img.data[p + 2] = RAMP[b * 3 + 2]; img.data[p + 3] = 255;
    }
    sctx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.font = "10px sans-serif"; ctx.fillStyle = "#555"; ctx.textBaseline = "middle";
    const selected = new Set(model.get("heads"));
    for (let l = 0; l < L; l++) {
      ctx.textAlign = "right";
      ctx.fillText(`L${l}`, left - 4, top + l * (cell + gap) + cell / 2);
      for (let hh = 0; hh < H; hh++) {
        const x = left + hh * (cell + gap), y = top + l * (cell + gap);
        ctx.drawImage(sheet, hh * S, l * S, S, S, x, y, cell, cell);
        ctx.strokeStyle = l === model.get("layer") && selected.has(hh) ? "#e69500" : "#ccc";
        ctx.lineWidth = l === model.get("layer") && selected.has(hh) ? 2 : 1;
        ctx.strokeRect(x - 0.5, y - 0.5, cell + 1, cell + 1);
      }
    }
    ctx.textAlign = "center";
    for (let hh = 0; hh < H; hh++) ctx.fillText(`H${hh}`, left + hh * (cell + gap) + cell / 2, top / 2);
    const at = (/** @type {MouseEvent} */ ev) => {
      const r = canvas.getBoundingClientRect();
      const hh = Math.floor((ev.clientX - r.left - left) / (cell + gap));
      const l = Math.floor((ev.clientY - r.top - top) / (cell + gap));
      return l >= 0 && l < L && hh >= 0 && hh < H ? [l, hh] : null;
    };
    canvas.onmousemove = (ev) => {
      const p = at(ev);
      status.textContent = p ? `Layer ${p[0]}, head ${p[1]}: click to open it in the matrix view` : `${L} layers × ${H} heads = ${L * H} attention patterns`;
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
    stage.replaceChildren(canvas);
    status.textContent = `${L} layers × ${H} heads = ${L * H} attention patterns, each ${store.T}×${store.T} shown at ${S}×${S}`;
  }

  // ---- matrix view -----------------------------------------------------------------
  /** @param {Uint8Array} att */
  function drawMatrix(att) {
    const T = store.T, H = store.H, tokens = model.get("tokens"), causal = model.get("causal");
    let heads = model.get("heads");
    if (!heads.length) heads = [...Array(H).keys()];
    const mean = new Float32Array(T * T);
    for (const head of heads) for (let p = 0; p < T * T; p++) mean[p] += WEIGHT[att[head * T * T + p]] / heads.length;
    const px = Math.max(1, Math.min(24, Math.floor(640 / T)));
    const labels = px >= 10;
    const margin = labels ? 90 : 4;
    const side = T * px;
    const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", "llmm-canvas llmm-matrix-canvas"));
    const ctx = sizeCanvas(canvas, margin + side + 4, margin + side + 4);
    const sheet = document.createElement("canvas");
    sheet.width = T; sheet.height = T;
    const sctx = /** @type {CanvasRenderingContext2D} */ (sheet.getContext("2d"));
    const img = sctx.createImageData(T, T);
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
      const p = (i * T + j) * 4;
      const rgb = causal && j > i ? MASKED : (() => { const b = Math.round(Math.sqrt(mean[i * T + j]) * 255); return [RAMP[b * 3], RAMP[b * 3 + 1], RAMP[b * 3 + 2]]; })();
      img.data[p] = rgb[0]; img.data[p + 1] = rgb[1]; img.data[p + 2] = rgb[2]; img.data[p + 3] = 255;
    }
    sctx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(sheet, 0, 0, T, T, margin, margin, side, side);
    ctx.strokeStyle = "#bbb"; ctx.strokeRect(margin - 0.5, margin - 0.5, side + 1, side + 1);
    if (labels) {
      ctx.font = `${Math.min(11, px - 1)}px ui-monospace, monospace`; ctx.fillStyle = "#222"; ctx.textBaseline = "middle";
      for (let i = 0; i < T; i++) {
        ctx.textAlign = "right";
        ctx.fillText(show(tokens[i]).slice(0, 12), margin - 4, margin + i * px + px / 2);
        ctx.save(); ctx.translate(margin + i * px + px / 2, margin - 4); ctx.rotate(-Math.PI / 2); ctx.textAlign = "left";
        ctx.fillText(show(tokens[i]).slice(0, 12), 0, 0); ctx.restore();
      }
    }
    const headText = heads.length === 1 ? `head ${heads[0]}` : `mean of heads ${heads.join(", ")}`;
    const caption = h("div", "llmm-caption", `Layer ${model.get("layer")}, ${headText}: rows = queries (T = ${T}), columns = keys (T = ${T})`);
    canvas.onmousemove = (ev) => {
      const r = canvas.getBoundingClientRect();
      const j = Math.floor((ev.clientX - r.left - margin) / px), i = Math.floor((ev.clientY - r.top - margin) / px);
      if (i < 0 || j < 0 || i >= T || j >= T) { tooltip.hidden = true; return; }
      const text = causal && j > i
        ? `“${show(tokens[i])}” #${i} cannot see “${show(tokens[j])}” #${j}: it comes later (causal mask)`
        : `“${show(tokens[i])}” #${i} → “${show(tokens[j])}” #${j}: ${mean[i * T + j].toFixed(3)}`;
      tooltip.textContent = text;
      tooltip.hidden = false;
      const rr = root.getBoundingClientRect();
      tooltip.style.left = `${ev.clientX - rr.left + 12}px`;
      tooltip.style.top = `${ev.clientY - rr.top + 12}px`;
      status.textContent = text;
    };
    canvas.onmouseleave = () => { tooltip.hidden = true; };
    stage.replaceChildren(caption, canvas);
    status.textContent = `Layer ${model.get("layer")}, ${headText}. Hover a cell for the token pair.`;
  }

  // ---- neuron view -----------------------------------------------------------------
  /** @param {Uint8Array} att @param {Float32Array} qk */
  function drawNeuron(att, qk) {
    const T = store.T, H = store.H, d = model.get("d_head"), tokens = model.get("tokens"), causal = model.get("causal");
    const head = (model.get("heads")[0] ?? 0);
    const i = Math.min(model.get("token"), T - 1);
    const q = qk.subarray((head * T + i) * d, (head * T + i + 1) * d);
    const kAt = (/** @type {number} */ j) => qk.subarray(((H + head) * T + j) * d, ((H + head) * T + j + 1) * d);
    const scale = 1 / Math.sqrt(d);
    const dots = new Float32Array(T), scores = new Float32Array(T), weights = new Float32Array(T);
    let top = -Infinity;
    for (let j = 0; j < T; j++) {
      const k = kAt(j);
      let s = 0;
      for (let c = 0; c < d; c++) s += q[c] * k[c];
      dots[j] = s; scores[j] = s * scale;
      if (!(causal && j > i)) top = Math.max(top, scores[j]);
    }
    let total = 0;
    for (let j = 0; j < T; j++) { weights[j] = causal && j > i ? 0 : Math.exp(scores[j] - top); total += weights[j]; }
    for (let j = 0; j < T; j++) weights[j] /= total;
    const captured = (/** @type {number} */ j) => WEIGHT[att[head * T * T + i * T + j]];
    let maxDiff = 0;
    for (let j = 0; j < T; j++) maxDiff = Math.max(maxDiff, Math.abs(weights[j] - captured(j)));
    const limit = 16;
    const rows = T <= 24 ? [...Array(T).keys()] : [...weights.keys()].sort((a, b) => weights[b] - weights[a]).slice(0, limit).sort((a, b) => a - b);
    const cw = Math.max(3, Math.min(10, Math.floor(320 / d))), rh = 16, labelW = 96, gap = 14, numW = 240;
    const vecW = d * cw;
    const xK = labelW, xP = xK + vecW + gap, xN = xP + vecW + gap;
    const W = xN + numW, top0 = 44;
    const Ht = top0 + (rows.length + 1) * rh + 8;
    const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", "llmm-canvas llmm-neuron-canvas"));
    const ctx = sizeCanvas(canvas, W, Ht);
    let maxQK = 1e-6, maxP = 1e-6;
    for (const c of q) maxQK = Math.max(maxQK, Math.abs(c));
    for (const j of rows) { const k = kAt(j); for (let c = 0; c < d; c++) { maxQK = Math.max(maxQK, Math.abs(k[c])); maxP = Math.max(maxP, Math.abs(q[c] * k[c])); } }
    const div = (/** @type {number} */ v, /** @type {number} */ m) => {
      const f = Math.max(-1, Math.min(1, v / m));
      const [r, g, b] = f >= 0 ? [33, 102, 172] : [178, 24, 43];
      const a = Math.abs(f);
      return `rgb(${Math.round(255 + a * (r - 255))}, ${Math.round(255 + a * (g - 255))}, ${Math.round(255 + a * (b - 255))})`;
    };
    ctx.font = "11px sans-serif"; ctx.fillStyle = "#333"; ctx.textBaseline = "middle"; ctx.textAlign = "left";
    ctx.fillText(`k_j (1×${d})`, xK, 10);
    ctx.fillText(`q_i ⊙ k_j (1×${d})`, xP, 10);
    ctx.fillText(`q_i·k_j   ÷√${d}   softmax   captured`, xN, 10);
    // the query row
    const yq = 26;
    ctx.textAlign = "right"; ctx.fillText(`q_i: #${i} ${show(tokens[i]).slice(0, 8)}`, labelW - 6, yq + rh / 2 - 2);
    for (let c = 0; c < d; c++) { ctx.fillStyle = div(q[c], maxQK); ctx.fillRect(xK + c * cw, yq, cw - (cw > 4 ? 1 : 0), rh - 4); }
    ctx.font = "11px ui-monospace, monospace";
    rows.forEach((j, r) => {
      const y = top0 + r * rh;
      const masked = causal && j > i;
      const k = kAt(j);
      ctx.globalAlpha = masked ? 0.35 : 1;
      ctx.fillStyle = "#222"; ctx.textAlign = "right";
      ctx.fillText(`#${j} ${show(tokens[j]).slice(0, 9)}`, labelW - 6, y + rh / 2);
      for (let c = 0; c < d; c++) {
        ctx.fillStyle = div(k[c], maxQK); ctx.fillRect(xK + c * cw, y + 1, cw - (cw > 4 ? 1 : 0), rh - 3);
        ctx.fillStyle = div(q[c] * k[c], maxP); ctx.fillRect(xP + c * cw, y + 1, cw - (cw > 4 ? 1 : 0), rh - 3);
      }
      ctx.fillStyle = "#222"; ctx.textAlign = "right";
      ctx.fillText(dots[j].toFixed(1), xN + 40, y + rh / 2);
      ctx.fillText(masked ? "−∞" : scores[j].toFixed(2), xN + 90, y + rh / 2);
      ctx.fillStyle = "rgba(33, 102, 172, 0.8)";
      ctx.fillRect(xN + 98, y + 3, 50 * weights[j], rh - 6);
      ctx.fillStyle = "#222"; ctx.textAlign = "right";
      ctx.fillText(weights[j].toFixed(3), xN + 190, y + rh / 2);
      ctx.fillStyle = "#777";
      ctx.fillText(captured(j).toFixed(3), xN + 236, y + rh / 2);
      ctx.globalAlpha = 1;
    });
    canvas.onmousemove = (ev) => {
      const rect = canvas.getBoundingClientRect();
      const x = ev.clientX - rect.left, y = ev.clientY - rect.top;
      const r = Math.floor((y - top0) / rh);
      const inK = x >= xK && x < xK + vecW, inP = x >= xP && x < xP + vecW;
      if (r < 0 || r >= rows.length || !(inK || inP)) return;
      const c = Math.floor((x - (inK ? xK : xP)) / cw), j = rows[r];
      status.textContent = `dimension ${c}: q_i[${c}] = ${q[c].toFixed(3)} · k_j[${c}] = ${kAt(j)[c].toFixed(3)} · product = ${(q[c] * kAt(j)[c]).toFixed(3)} (key #${j} “${show(tokens[j])}”)`;
    };
    const shapes = h("div", "llmm-caption",
      `Layer ${model.get("layer")}, head ${head}, query #${i} “${show(tokens[i])}”. ` +
      `Q: T×d_head = ${T}×${d} · K: ${T}×${d} · q_i: 1×${d} · scores q_i·Kᵀ/√${d}: 1×${T} · attention row: 1×${T}.`);
    const formula = h("div", "llmm-formula",
      `attention(i→j) = softmax_j(q_i·k_j / √${d})${causal ? ", with keys after i masked to −∞" : ""}. ` +
      `${rows.length < T ? `Showing the ${rows.length} keys with the most attention out of ${T}. ` : ""}` +
      `Recomputed here vs captured by the model: max |Δ| = ${maxDiff.toFixed(3)} (float16 q/k, 8-bit weights).`);
    stage.replaceChildren(shapes, canvas, formula);
    canvas.dataset.maxDiff = String(maxDiff);
    status.textContent = `q_i · k_j adds up ${d} elementwise products; hover a cell to see one.`;
  }

  const onChange = () => { hover = null; redraw(); };
  const onData = () => { store.reload(); redraw(); };
  const events = ["change:view", "change:layer", "change:heads", "change:top_k", "change:pair_filter", "change:token", "change:tokens"];
  for (const e of events) model.on(e, onChange);
  model.on("change:attention", onData);
  model.on("change:qk", onData);
  model.on("change:thumbnails", onChange);
  redraw();
  return () => {
    for (const e of events) model.off(e, onChange);
    model.off("change:attention", onData);
    model.off("change:qk", onData);
    model.off("change:thumbnails", onChange);
    store.dispose();
  };
}

export default { render };
