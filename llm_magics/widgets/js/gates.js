// @ts-check
/**
 * GatesWidget front end: an LSTM's gates and states over a sequence.
 *
 * One heatmap per quantity (input, forget, output gates; candidate; cell and hidden state),
 * time along x (one column per character or token), hidden units along y. Hovering a cell
 * shows every quantity for that step and unit; clicking picks the unit, whose cell state then
 * colours the text above. Plain ES module, no dependencies. `data` arrives as float32 bytes,
 * (quantities, T, units) in C order.
 */

/** @typedef {{ get(name: string): any, set(name: string, value: any): void, save_changes(): void, on(e: string, cb: Function): void, off(e?: string, cb?: Function): void }} AnyModel */

/** @param {any} v @returns {Uint8Array} */
function bytesOf(v) {
  if (!v) return new Uint8Array(0);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return new Uint8Array(0);
}

/** @param {string} tag @param {string} [cls] @param {string} [text] */
function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** How a label is shown: whitespace made visible, byte-level BPE marks undone. */
const show = (/** @type {string} */ s) => s.replace(/^Ġ/, " ").replace(/^▁/, " ").replace(/Ċ/g, "\n").replace(/\n/g, "↵").replace(/ /g, "␣");

/** @param {string} c @returns {number[]} r, g, b, a of any CSS colour */
function rgbaOf(c) {
  const cv = document.createElement("canvas");
  cv.width = cv.height = 1;
  const x = /** @type {CanvasRenderingContext2D} */ (cv.getContext("2d"));
  x.fillStyle = "#000"; x.fillStyle = c; x.fillRect(0, 0, 1, 1);
  return Array.from(x.getImageData(0, 0, 1, 1).data);
}

/** The theme's colours, from the CSS variables on the root (gates.css sets them). @param {HTMLElement} root */
function themeOf(root) {
  const cs = getComputedStyle(root);
  const v = (/** @type {string} */ n, /** @type {string} */ fb) => cs.getPropertyValue(n).trim() || fb;
  let bg = rgbaOf(v("--llmm-bg", "#fff"));
  if (bg[3] < 128) bg = (window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches) ? [30, 30, 30, 255] : [255, 255, 255, 255];
  const dark = (0.2126 * bg[0] + 0.7152 * bg[1] + 0.0722 * bg[2]) / 255 < 0.4;
  return {
    dark, bg: bg.slice(0, 3), fg: v("--llmm-fg", dark ? "#e8e8e8" : "#1f1f1f"), fg2: v("--llmm-fg2", dark ? "#b0b0b0" : "#555"),
    pos: dark ? [255, 140, 60] : [214, 96, 0], neg: dark ? [90, 170, 255] : [20, 90, 190], accent: v("--llmm-accent", dark ? "#64b5f6" : "#0d47a1"),
  };
}

/** Blend from the background towards a colour: f in [0, 1]. @param {number[]} bg @param {number[]} to @param {number} f */
function mix(bg, to, f) {
  const g = Math.max(0, Math.min(1, f));
  return `rgb(${Math.round(bg[0] + g * (to[0] - bg[0]))}, ${Math.round(bg[1] + g * (to[1] - bg[1]))}, ${Math.round(bg[2] + g * (to[2] - bg[2]))})`;
}

const GATES = new Set(["input_gate", "forget_gate", "output_gate"]);
const SHORT = { input_gate: "i", forget_gate: "f", candidate: "g", output_gate: "o", cell: "c", hidden: "h" };

/** @param {{ model: AnyModel, el: HTMLElement }} ctx */
function render({ model, el }) {
  const root = h("div", "llmm-gates");
  el.append(root);

  function draw() {
    const tokens = /** @type {string[]} */ (model.get("tokens"));
    const units = /** @type {number[]} */ (model.get("units"));
    const quantities = /** @type {string[]} */ (model.get("quantities"));
    const labels = model.get("labels") || {};
    const T = tokens.length, U = units.length, Q = quantities.length;
    const raw = bytesOf(model.get("data")).slice();
    const data = new Float32Array(raw.buffer, 0, Math.floor(raw.byteLength / 4));
    const at = (/** @type {number} */ q, /** @type {number} */ t, /** @type {number} */ u) => data[(q * T + t) * U + u];
    const unit = model.get("unit");
    const unitRow = units.indexOf(unit);
    const theme = themeOf(root);

    const title = h("div", "llmm-title", model.get("title") || "LSTM gates and states");
    const dims = h("div", "llmm-dims",
      `${T} steps × ${U} of ${model.get("hidden_size")} hidden units · gates in (0, 1): background → colour; g, c, h signed: blue < 0 < orange`);

    // the text, one span per step, coloured by the chosen unit's cell state
    const text = h("div", "llmm-gates-text");
    const cq = quantities.indexOf("cell");
    let cmax = 1e-9;
    if (cq >= 0 && unitRow >= 0) for (let t = 0; t < T; t++) cmax = Math.max(cmax, Math.abs(at(cq, t, unitRow)));
    /** @type {HTMLElement[]} */
    const spans = tokens.map((tok, t) => {
      const s = h("span", "llmm-tok", tok);
      s.dataset.t = String(t);
      if (cq >= 0 && unitRow >= 0) {
        const c = at(cq, t, unitRow);
        s.style.background = mix(theme.bg, c >= 0 ? theme.pos : theme.neg, Math.abs(c) / cmax);
        s.title = `c = ${c.toFixed(3)}`;
      }
      return s;
    });
    text.append(...spans);
    const textHead = h("div", "llmm-head", unitRow >= 0 ? `Text coloured by unit ${unit}'s cell state (max |c| = ${cmax.toFixed(2)})` : "Text (click a heatmap row to colour it by that unit's cell state)");

    // one heatmap per quantity
    const colW = Math.max(3, Math.min(14, Math.floor(1100 / Math.max(T, 1))));
    const rowH = Math.max(2, Math.min(8, Math.floor(192 / Math.max(U, 1))));
    const labelW = 40, W = labelW + T * colW + 1, H = U * rowH + 1;
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    const maps = h("div", "llmm-gates-maps");
    const status = h("div", "llmm-status", "Hover a cell for every gate's value at that step and unit.");

    /** @param {number} t @param {number} u */
    function describe(t, u) {
      const parts = quantities.map((q, i) => `${SHORT[q] || q} ${at(i, t, u).toFixed(2)}`);
      return `t=${t} “${show(tokens[t])}” · unit ${units[u]}: ${parts.join(" · ")}`;
    }

    quantities.forEach((q, qi) => {
      const box = h("div", "llmm-gates-map");
      box.append(h("div", "llmm-head", labels[q] || q));
      const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", "llmm-gates-canvas"));
      canvas.dataset.quantity = q;
      canvas.width = W * dpr; canvas.height = H * dpr; canvas.style.width = `${W}px`; canvas.style.height = `${H}px`;
      const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.fillStyle = `rgb(${theme.bg.join(", ")})`;
      ctx.fillRect(0, 0, W, H);
      let scale = 1;
      if (q === "cell") { scale = 1e-9; for (let t = 0; t < T; t++) for (let u = 0; u < U; u++) scale = Math.max(scale, Math.abs(at(qi, t, u))); }
      for (let u = 0; u < U; u++) {
        for (let t = 0; t < T; t++) {
          const v = at(qi, t, u);
          ctx.fillStyle = GATES.has(q) ? mix(theme.bg, theme.pos, v) : mix(theme.bg, v >= 0 ? theme.pos : theme.neg, Math.abs(v) / scale);
          ctx.fillRect(labelW + t * colW, u * rowH, colW - (colW > 4 ? 1 : 0), rowH - (rowH > 3 ? 1 : 0));
        }
      }
      ctx.fillStyle = theme.fg2; ctx.font = `${Math.min(10, Math.max(rowH, 8))}px sans-serif`; ctx.textBaseline = "middle"; ctx.textAlign = "right";
      const every = Math.max(1, Math.ceil(10 / rowH));
      for (let u = 0; u < U; u += every) ctx.fillText(String(units[u]), labelW - 4, u * rowH + rowH / 2);
      if (unitRow >= 0) { ctx.strokeStyle = theme.accent; ctx.lineWidth = 1; ctx.strokeRect(labelW - 0.5, unitRow * rowH - 0.5, T * colW + 1, rowH + 1); }
      if (q === "cell") box.append(h("div", "llmm-scale", `scale ±${scale.toFixed(2)}`));

      const cellAt = (/** @type {MouseEvent} */ ev) => {
        const rc = canvas.getBoundingClientRect();
        const t = Math.floor((ev.clientX - rc.left - labelW) / colW), u = Math.floor((ev.clientY - rc.top) / rowH);
        return t >= 0 && t < T && u >= 0 && u < U ? [t, u] : null;
      };
      canvas.onmousemove = (ev) => {
        const hit = cellAt(ev);
        spans.forEach((s) => s.classList.remove("hover"));
        if (!hit) return;
        status.textContent = describe(hit[0], hit[1]);
        spans[hit[0]].classList.add("hover");
      };
      canvas.onclick = (ev) => {
        const hit = cellAt(ev);
        if (!hit) return;
        model.set("selected", [hit[0], units[hit[1]]]);
        model.set("unit", units[hit[1]]);
        model.save_changes();
      };
      box.append(canvas);
      maps.append(box);
    });

    const legend = h("p", "llmm-legend",
      "c = f·c_prev + i·g and h = o·tanh(c). A forget gate near 1 keeps the memory; an input gate near 1 writes the candidate. " +
      "Units whose cell state tracks something readable (inside quotes, the position in a line) show as long runs of one colour.");
    root.replaceChildren(title, dims, textHead, text, status, maps, legend);
    root.dataset.rendered = `unit:${unit}`;
    root.dataset.geometry = JSON.stringify({ labelW, colW, rowH, T, U, Q });
  }

  const events = ["change:unit", "change:data", "change:tokens", "change:units", "change:quantities"];
  for (const e of events) model.on(e, draw);
  draw();
  return () => { for (const e of events) model.off(e, draw); };
}

export default { render };
