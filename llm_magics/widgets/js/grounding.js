// @ts-check
/**
 * GroundingWidget front end: which retrieved sources each generated token attended to.
 *
 * Left: the answer, one clickable span per sentence. Middle: a heatmap with a row per
 * answer token and a column per source. Right: the sources, their tokens shaded by how
 * much attention the selected sentence paid to each. Plain ES module, no dependencies.
 * `matrix` arrives as float32 bytes, `token_weights` as sqrt-uint8 bytes (w = (b/255)²).
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

/** @param {string} s */
const show = (s) => s.replace(/^Ġ/, " ").replace(/^▁/, " ").replace(/Ċ/g, "\n");

/** white -> orange: t in [0, 1] */
function warm(/** @type {number} */ t) {
  const f = Math.max(0, Math.min(1, t));
  return [Math.round(255 - f * 25), Math.round(255 - f * 135), Math.round(255 - f * 235)];
}

/** @param {{ model: AnyModel, el: HTMLElement }} ctx */
function render({ model, el }) {
  const root = h("div", "llmm-ground");
  el.append(root);

  function draw() {
    const tokens = /** @type {string[]} */ (model.get("answer_tokens"));
    const sources = /** @type {{label: string, number: number}[]} */ (model.get("sources"));
    const srcTokens = /** @type {string[][]} */ (model.get("source_tokens"));
    const sentences = /** @type {number[][]} */ (model.get("sentences"));
    const n = tokens.length, m = sources.length;
    const raw = bytesOf(model.get("matrix")).slice();
    const matrix = new Float32Array(raw.buffer, 0, Math.floor(raw.byteLength / 4));
    const tw = bytesOf(model.get("token_weights"));
    const total = srcTokens.reduce((a, s) => a + s.length, 0);
    const sel = Math.min(Math.max(model.get("sentence"), 0), Math.max(sentences.length - 1, 0));
    const layers = model.get("layers");

    const title = h("div", "llmm-title", model.get("title") || "Where the answer looked");
    const dims = h("div", "llmm-dims",
      `${n} answer tokens × ${m} sources · attention averaged over ${layers.length ? `layer${layers.length > 1 ? "s" : ""} ${layers.length > 6 ? `${layers[0]}–${layers[layers.length - 1]}` : layers.join(", ")}` : "all layers"} and all heads, summed over each source's tokens`);
    const body = h("div", "llmm-ground-body");

    // answer sentences
    const answer = h("div", "llmm-answer");
    answer.append(h("div", "llmm-head", "Answer (click a sentence)"));
    sentences.forEach(([a, b], s) => {
      const span = /** @type {HTMLElement} */ (h("span", "llmm-sentence" + (s === sel ? " on" : ""), tokens.slice(a, b).map(show).join("")));
      span.dataset.sentence = String(s);
      span.onclick = () => { model.set("sentence", s); model.save_changes(); };
      answer.append(span);
    });

    // heatmap: rows = answer tokens, columns = sources
    const heat = h("div", "llmm-heat");
    heat.append(h("div", "llmm-head", "Answer token × source"));
    const rowH = n <= 60 ? 14 : Math.max(3, Math.floor(840 / n)), cellW = 36, labelW = rowH >= 10 ? 90 : 8, top = 18;
    const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", "llmm-heat-canvas"));
    const W = labelW + m * cellW + 2, H = top + n * rowH + 2;
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    canvas.width = W * dpr; canvas.height = H * dpr; canvas.style.width = `${W}px`; canvas.style.height = `${H}px`;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    let max = 1e-9;
    for (const v of matrix) max = Math.max(max, v);
    ctx.font = "10px sans-serif"; ctx.textBaseline = "middle"; ctx.fillStyle = "#444"; ctx.textAlign = "center";
    sources.forEach((s, j) => ctx.fillText(`[${s.number}]`, labelW + j * cellW + cellW / 2, top / 2));
    const [sa, sb] = sentences[sel] || [0, 0];
    for (let i = 0; i < n; i++) {
      const y = top + i * rowH;
      if (i >= sa && i < sb) { ctx.fillStyle = "rgba(255, 200, 0, 0.35)"; ctx.fillRect(0, y, labelW, rowH); }
      if (labelW > 8) { ctx.fillStyle = "#222"; ctx.textAlign = "right"; ctx.fillText(show(tokens[i]).trim().slice(0, 12), labelW - 4, y + rowH / 2); }
      for (let j = 0; j < m; j++) {
        const [r, g, b] = warm(Math.sqrt(matrix[i * m + j] / max));
        ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
        ctx.fillRect(labelW + j * cellW, y, cellW - 1, rowH - (rowH > 4 ? 1 : 0));
      }
    }
    const tip = h("div", "llmm-status");
    canvas.onmousemove = (ev) => {
      const rc = canvas.getBoundingClientRect();
      const i = Math.floor((ev.clientY - rc.top - top) / rowH), j = Math.floor((ev.clientX - rc.left - labelW) / cellW);
      if (i < 0 || i >= n || j < 0 || j >= m) return;
      tip.textContent = `“${show(tokens[i]).trim()}” spent ${(100 * matrix[i * m + j]).toFixed(1)}% of its attention on [${sources[j].number}] ${sources[j].label}`;
    };
    canvas.onclick = (ev) => {
      const rc = canvas.getBoundingClientRect();
      const i = Math.floor((ev.clientY - rc.top - top) / rowH);
      const s = sentences.findIndex(([a, b]) => i >= a && i < b);
      if (s >= 0) { model.set("sentence", s); model.save_changes(); }
    };
    heat.append(canvas, tip);

    // sources, shaded by the selected sentence's attention to each token
    const srcBox = h("div", "llmm-sources");
    srcBox.append(h("div", "llmm-head", "Sources, shaded by what the selected sentence read"));
    const per = new Float32Array(total);
    for (let i = sa; i < sb; i++) for (let k = 0; k < total; k++) per[k] += ((tw[i * total + k] || 0) / 255) ** 2 / Math.max(sb - sa, 1);
    let pmax = 1e-9;
    for (const v of per) pmax = Math.max(pmax, v);
    const share = new Float32Array(m);
    for (let i = sa; i < sb; i++) for (let j = 0; j < m; j++) share[j] += matrix[i * m + j] / Math.max(sb - sa, 1);
    let offset = 0;
    sources.forEach((s, j) => {
      const card = h("div", "llmm-source");
      card.dataset.source = String(j);
      const head = h("div", "llmm-source-head", `[${s.number}] ${s.label} · ${(100 * share[j]).toFixed(1)}% of the sentence's attention`);
      const text = h("div", "llmm-source-text");
      srcTokens[j].forEach((tok, k) => {
        const w = per[offset + k] / pmax;
        const span = h("span", w > 0.5 ? "hot" : "", show(tok));
        if (w > 0.02) { const [r, g, b] = warm(Math.sqrt(w)); span.style.background = `rgb(${r}, ${g}, ${b})`; }
        span.title = `${(100 * per[offset + k]).toFixed(2)}%`;
        text.append(span);
      });
      offset += srcTokens[j].length;
      card.append(head, text);
      srcBox.append(card);
    });

    body.append(answer, heat, srcBox);
    const legend = h("p", "llmm-legend",
      "Each generated token looks back over the whole prompt. A cell is the share of its attention that landed on one source's tokens. " +
      "Shares do not add up to 100%: the rest went to the instructions, the question and the answer so far (and often to the first token, an 'attention sink'). " +
      "Attention shows where the model looked, not proof of why it answered.");
    root.replaceChildren(title, dims, body, legend);
    root.dataset.rendered = `sentence:${sel}`;
  }

  const events = ["change:sentence", "change:matrix", "change:token_weights", "change:answer_tokens", "change:sources"];
  for (const e of events) model.on(e, draw);
  draw();
  return () => { for (const e of events) model.off(e, draw); };
}

export default { render };
