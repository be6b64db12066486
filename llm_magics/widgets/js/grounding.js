// @ts-check
/**
 * GroundingWidget front end: which retrieved sources each generated token attended to.
 *
 * Left: the answer, one clickable span per sentence. Middle: a heatmap with a row per
 * answer token and a column per source; rows are grouped into words (a token that goes on
 * a word, like "es" after "In", is marked "+es" under it, and a line separates words).
 * Right: the sources, their tokens shaded by how much attention the selected sentence paid
 * to each; whitespace is never shaded. Plain ES module, no dependencies.
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

/** A token as text: byte-level BPE (Ġ = space, Ċ = newline) and SentencePiece (▁ = space) markers undone. @param {string} s */
const show = (s) => s.replace(/Ġ/g, " ").replace(/▁/g, " ").replace(/Ċ/g, "\n").replace(/ĉ/g, "\t");

/**
 * Where words start: a token starts a word when it begins with whitespace or punctuation,
 * or follows whitespace or punctuation; otherwise it continues the word before it
 * ("In" + "es" = "Ines"). BERT's "##" pieces continue a word too.
 * @param {string[]} tokens @returns {boolean[]}
 */
function wordStarts(tokens) {
  const word = /[\p{L}\p{N}]/u;
  return tokens.map((tok, i) => {
    if (i === 0) return true;
    if (tok.startsWith("##")) return false;
    const t = show(tok), prev = show(tokens[i - 1]);
    return !word.test(t.charAt(0)) || !word.test(prev.charAt(prev.length - 1));
  });
}

/** The whole word a token belongs to. @param {string[]} tokens @param {boolean[]} starts @param {number} i */
function wordOf(tokens, starts, i) {
  let a = i, b = i + 1;
  while (a > 0 && !starts[a]) a--;
  while (b < tokens.length && !starts[b]) b++;
  return tokens.slice(a, b).map((t) => show(t).replace(/^##/, "")).join("").trim();
}

/** @param {HTMLElement} root */
function isDark(root) {
  const c = document.createElement("canvas").getContext("2d");
  if (!c) return false;
  c.fillStyle = getComputedStyle(root).backgroundColor || "#fff";
  c.fillRect(0, 0, 1, 1);
  const [r, g, b, a] = c.getImageData(0, 0, 1, 1).data;
  if (a < 128) return !!(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b < 110;
}

/** WCAG relative luminance of [r, g, b] @param {number[]} c */
function luminance(c) {
  const f = (/** @type {number} */ v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}

/** background -> orange, t in [0, 1] @param {number} t @param {number[]} base */
function warm(t, base) {
  const f = Math.max(0, Math.min(1, t));
  const hot = [255, 140, 0];
  return base.map((c, k) => Math.round(c + f * (hot[k] - c)));
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
    const dark = isDark(root);
    const cs = getComputedStyle(root);
    const fg = cs.color, fg2 = cs.getPropertyValue("--llmm-fg2").trim() || fg;
    const bgProbe = document.createElement("canvas").getContext("2d");
    let base = dark ? [30, 30, 30] : [255, 255, 255];
    if (bgProbe) {
      bgProbe.fillStyle = cs.backgroundColor; bgProbe.fillRect(0, 0, 1, 1);
      const d = bgProbe.getImageData(0, 0, 1, 1).data;
      if (d[3] > 128) base = [d[0], d[1], d[2]];
    }
    // the text colour's luminance, to keep shaded words readable on whatever theme this is
    let ink = dark ? 0.8 : 0.02;
    if (bgProbe) {
      bgProbe.clearRect(0, 0, 1, 1); bgProbe.fillStyle = fg; bgProbe.fillRect(0, 0, 1, 1);
      const d = bgProbe.getImageData(0, 0, 1, 1).data;
      if (d[3] > 128) ink = luminance([d[0], d[1], d[2]]);
    }
    const contrast = (/** @type {number} */ a, /** @type {number} */ b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const starts = wordStarts(tokens);

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
    const rowH = n <= 60 ? 16 : Math.max(3, Math.floor(840 / n)), cellW = 36, labelW = rowH >= 10 ? 110 : 8, top = 18;
    const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", "llmm-heat-canvas"));
    const W = labelW + m * cellW + 2, H = top + n * rowH + 2;
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    canvas.width = W * dpr; canvas.height = H * dpr; canvas.style.width = `${W}px`; canvas.style.height = `${H}px`;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    let max = 1e-9;
    for (const v of matrix) max = Math.max(max, v);
    ctx.font = "11px sans-serif"; ctx.textBaseline = "middle"; ctx.fillStyle = fg; ctx.textAlign = "center";
    sources.forEach((s, j) => ctx.fillText(`[${s.number}]`, labelW + j * cellW + cellW / 2, top / 2));
    const [sa, sb] = sentences[sel] || [0, 0];
    const mono = cs.getPropertyValue("--llmm-mono").trim() || "monospace";
    for (let i = 0; i < n; i++) {
      const y = top + i * rowH;
      if (i >= sa && i < sb) { ctx.fillStyle = "#f5b400"; ctx.fillRect(0, y, 4, rowH); } // the selected sentence: a bar, so labels keep their contrast
      if (labelW > 8) {
        const text = show(tokens[i]).replace(/\n/g, "⏎").trim() || "␣";
        ctx.font = `11px ${mono}`;
        ctx.textAlign = "right";
        ctx.fillStyle = starts[i] ? fg : fg2;
        ctx.fillText(starts[i] ? text.slice(0, 14) : `+${text.replace(/^##/, "").slice(0, 13)}`, labelW - 4, y + rowH / 2);
        if (starts[i] && i > 0) { ctx.fillStyle = fg2; ctx.globalAlpha = 0.35; ctx.fillRect(4, y, labelW - 8 + m * cellW, 1); ctx.globalAlpha = 1; }
      }
      for (let j = 0; j < m; j++) {
        const [r, g, b] = warm(Math.sqrt(matrix[i * m + j] / max), base);
        ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
        ctx.fillRect(labelW + j * cellW, y + (rowH > 4 ? 1 : 0), cellW - 1, rowH - (rowH > 4 ? 1 : 0));
      }
    }
    const tip = h("div", "llmm-status");
    canvas.onmousemove = (ev) => {
      const rc = canvas.getBoundingClientRect();
      const i = Math.floor((ev.clientY - rc.top - top) / rowH), j = Math.floor((ev.clientX - rc.left - labelW) / cellW);
      if (i < 0 || i >= n || j < 0 || j >= m) return;
      const piece = show(tokens[i]).trim(), word = wordOf(tokens, starts, i);
      const text = `“${piece}”${word && word !== piece ? ` (in “${word}”)` : ""} spent ${(100 * matrix[i * m + j]).toFixed(1)}% of its attention on [${sources[j].number}] ${sources[j].label}`;
      tip.textContent = text;
      tip.title = text;
    };
    canvas.onclick = (ev) => {
      const rc = canvas.getBoundingClientRect();
      const i = Math.floor((ev.clientY - rc.top - top) / rowH);
      const s = sentences.findIndex(([a, b]) => i >= a && i < b);
      if (s >= 0) { model.set("sentence", s); model.save_changes(); }
    };
    canvas.dataset.geometry = JSON.stringify({ rowH, cellW, labelW, top });
    canvas.dataset.words = String(starts.filter(Boolean).length);
    heat.append(canvas, tip);

    // sources, shaded by the selected sentence's attention to each token (never their whitespace)
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
        const t = show(tok);
        const [, lead, core, trail] = /** @type {RegExpMatchArray} */ (t.match(/^(\s*)([\s\S]*?)(\s*)$/));
        if (lead) text.append(document.createTextNode(lead));
        if (core) {
          const span = h("span", w > 0.5 ? "hot" : "", core);
          if (w > 0.02) {
            const alpha = 0.1 + 0.65 * Math.sqrt(w);
            span.style.background = `rgba(255, 140, 0, ${alpha.toFixed(3)})`;
            // the shade over this background: where the theme's text would not read on it (WCAG AA 4.5:1), black does
            const under = luminance(base.map((c, k) => c + alpha * ([255, 140, 0][k] - c)));
            if (contrast(ink, under) < 4.5 && contrast(0, under) > contrast(ink, under)) span.style.color = "#000";
          }
          span.title = `${(100 * per[offset + k]).toFixed(2)}%`;
          text.append(span);
        }
        if (trail) text.append(document.createTextNode(trail));
      });
      offset += srcTokens[j].length;
      card.append(head, text);
      srcBox.append(card);
    });

    body.append(answer, heat, srcBox);
    const legend = h("p", "llmm-legend",
      "Each generated token looks back over the whole prompt. A cell is the share of its attention that landed on one source's tokens. " +
      "Rows are the answer's tokens; a token marked + continues the word above it, and a line separates words. " +
      "Shares do not add up to 100%: the rest went to the instructions, the question and the answer so far (and often to the first token, an 'attention sink'). " +
      "Attention shows where the model looked, not proof of why it answered.");
    root.replaceChildren(title, dims, body, legend);
    root.dataset.rendered = `sentence:${sel}`;
    root.dataset.theme = dark ? "dark" : "light";
  }

  const events = ["change:sentence", "change:matrix", "change:token_weights", "change:answer_tokens", "change:sources"];
  for (const e of events) model.on(e, draw);
  const watch = new MutationObserver(() => { if ((root.dataset.theme === "dark") !== isDark(root)) draw(); });
  watch.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name", "class", "data-theme"] });
  draw();
  return () => { for (const e of events) model.off(e, draw); watch.disconnect(); };
}

export default { render };
