// @ts-check
/**
 * RetrievalWidget front end: the retrieved chunks, the final prompt, the citations,
 * timings and counts of one %%ask. A [n] mark in the answer is a link to chunk n: it
 * scrolls to the chunk and highlights it. Clicking a chunk shows its full text inside the
 * prompt the model saw. Text from PDFs keeps its hard line breaks in the data; the view
 * joins them into paragraphs (a checkbox shows the raw text). Plain ES module, DOM only.
 */

/** @typedef {{ get(name: string): any, set(name: string, value: any): void, save_changes(): void, on(e: string, cb: Function): void, off(e?: string, cb?: Function): void }} AnyModel */
/** @typedef {{ number: number, text: string, score: number, source: string, page: any, start_index: any, label: string, cited: boolean }} Source */

/** @param {string} tag @param {string} [cls] @param {string} [text] */
function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** @param {number} s */
const secs = (s) => (s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`);

/** Keys of `timings` that are counts or rates, for widgets saved before they were split out. */
const COUNT = /(calls|tokens|count|_n|_per_s)$/;

/**
 * Join the hard line breaks that PDF text keeps inside paragraphs: a single newline between
 * two lines of text becomes a space. Blank lines, list items, headings, table rows, quoted
 * lines, "[n]" chunk marks and indented (code) lines keep their breaks.
 * @param {string} text
 */
function reflow(text) {
  return text.replace(/([^\n])[ \t]*\n(?![ \t]*\n|[ \t]*(?:[-*•+▪◦]\s|\d+[.)]\s|#|\||>|\[\d+\])| {4}|\t)[ \t]*(?=\S)/g,
    (_, before) => (before === "-" ? "-" : `${before} `));
}

/** @param {{ model: AnyModel, el: HTMLElement }} ctx */
function render({ model, el }) {
  const root = h("div", "llmm-retr");
  el.append(root);
  let raw = false; // show the text as stored, hard line breaks and all
  let scrollTo = -1; // a [n] link was followed: bring that chunk into view after drawing

  /** @param {number} i */
  const select = (i) => { model.set("chunk", i); model.save_changes(); };
  /** @param {string} text */
  const shown = (text) => (raw ? text : reflow(text));

  function draw() {
    const sources = /** @type {Source[]} */ (model.get("sources"));
    const chunk = model.get("chunk");
    const prompts = model.get("prompts");
    const answerText = model.get("answer");
    root.replaceChildren();

    // question and answer; each [n] is a link to its chunk
    const qa = h("div", "llmm-qa");
    qa.append(h("div", "llmm-question", `Q: ${model.get("question")}`));
    const ans = h("div", "llmm-answer-text");
    let at = 0;
    for (const c of model.get("citations")) {
      ans.append(document.createTextNode(shown(answerText.slice(at, c.start))));
      const idx = sources.findIndex((s) => s.number === c.number);
      const link = /** @type {HTMLAnchorElement} */ (h("a", "llmm-cite" + (idx === chunk ? " on" : ""), `[${c.number}]`));
      link.href = `#llmm-chunk-${c.number}`;
      link.dataset.number = String(c.number);
      link.title = idx >= 0 ? `go to chunk [${c.number}]: ${sources[idx].label}` : "";
      link.onclick = (ev) => {
        ev.preventDefault(); // no navigation: the notebook's URL stays as it is
        if (idx < 0) return;
        scrollTo = idx;
        if (idx === model.get("chunk")) draw(); else select(idx);
      };
      ans.append(link);
      at = c.end;
    }
    ans.append(document.createTextNode(shown(answerText.slice(at))));
    qa.append(ans);
    if (!model.get("grounded") || model.get("note")) qa.append(h("div", "llmm-note", `⚠ ${model.get("note") || "Not grounded in the sources."}`));
    root.append(qa);

    // timings (seconds, as bars) and counts (numbers, not bars)
    const stats = h("div", "llmm-stats");
    const all = model.get("timings") || {};
    const counts = { ...(model.get("counts") || {}) };
    /** @type {[string, number][]} */
    const seconds = [];
    for (const [k, v] of Object.entries(all)) {
      if (typeof v !== "number") continue;
      if (COUNT.test(k)) counts[k] = v; else seconds.push([k, v]);
    }
    const usage = model.get("usage");
    const rate = counts.tokens_per_s;
    const tokens = h("div", "llmm-tokens",
      `${model.get("model_name") || "model"}${model.get("chain_type") ? ` · chain ${model.get("chain_type")}` : ""} · ` +
      `prompt ${usage.prompt_tokens ?? "?"} tokens → answer ${usage.completion_tokens ?? "?"} tokens` +
      `${typeof rate === "number" ? ` · ${rate.toFixed(1)} tokens/s` : ""}` +
      `${usage.calls ? ` · ${usage.calls} model call(s)` : ""}${usage.finish_reason ? ` · stopped: ${usage.finish_reason}` : ""}`);
    const bars = h("div", "llmm-timings");
    bars.append(h("div", "llmm-head llmm-span", "Time (seconds)"));
    const total = Number(all.total || 0) || Math.max(0, ...seconds.map(([, v]) => v));
    for (const [k, v] of seconds) {
      const track = h("span", "llmm-track");
      const bar = h("span", "llmm-bar");
      bar.style.width = `${total ? Math.max(1, Math.min(100, (100 * v) / total)) : 1}%`;
      track.append(bar);
      const key = h("span", "llmm-k", k);
      key.title = k;
      bars.append(key, track, h("span", "llmm-v", secs(v)));
    }
    const countBox = h("div", "llmm-counts");
    const countRows = Object.entries(counts).filter(([k]) => k !== "tokens_per_s");
    if (countRows.length) {
      countBox.append(h("div", "llmm-head llmm-span", "Counts"));
      for (const [k, v] of countRows) countBox.append(h("span", "llmm-k", k), h("span", "llmm-v", String(v)));
    }
    stats.append(tokens, bars, countBox);
    root.append(stats);

    const body = h("div", "llmm-body");
    // the chunks
    const list = h("div", "llmm-chunks");
    list.append(h("div", "llmm-head", `Retrieved chunks (${sources.length}), best first`));
    const top = Math.max(1e-9, ...sources.map((s) => s.score));
    sources.forEach((s, i) => {
      const card = /** @type {HTMLElement} */ (h("div", "llmm-chunk" + (i === chunk ? " on" : "") + (s.cited ? " cited" : "")));
      card.dataset.chunk = String(i);
      card.id = `llmm-chunk-${s.number}`;
      card.tabIndex = 0;
      const head = h("div", "llmm-chunk-head");
      const score = h("span", "llmm-score");
      const bar = h("span", "llmm-bar");
      bar.style.width = `${Math.max(2, (60 * s.score) / top)}px`;
      score.append(bar, document.createTextNode(` ${s.score.toFixed(3)}`));
      head.append(h("b", "", `[${s.number}]`), document.createTextNode(` ${s.label} `), score);
      if (s.cited) head.append(h("span", "llmm-badge", "cited"));
      const text = shown(s.text);
      card.append(head, h("div", "llmm-preview", text.length > 180 ? text.slice(0, 180) + "…" : text));
      card.onclick = () => select(i);
      card.onkeydown = (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(i); } };
      list.append(card);
    });
    for (const d of model.get("dropped")) list.append(h("div", "llmm-dropped", `did not fit the context window: ${d.label}`));
    body.append(list);

    // the chunk in full, and the final prompt with every chunk marked
    const detail = h("div", "llmm-detail");
    const rawBox = /** @type {HTMLLabelElement} */ (h("label", "llmm-raw"));
    const rawInput = /** @type {HTMLInputElement} */ (h("input"));
    rawInput.type = "checkbox";
    rawInput.checked = raw;
    rawInput.onchange = () => { raw = rawInput.checked; draw(); };
    rawBox.append(rawInput, document.createTextNode(" raw line breaks"));
    rawBox.title = "Show the text as stored (PDF text keeps its hard line breaks); otherwise lines are joined into paragraphs";
    detail.append(rawBox);
    if (chunk >= 0 && chunk < sources.length) {
      const s = sources[chunk];
      const full = h("div", "llmm-full");
      full.append(h("div", "llmm-head", `Chunk [${s.number}] in full · ${s.label} · ${s.text.length} characters`), h("div", "llmm-full-text", shown(s.text)));
      detail.append(full);
    }
    const final = prompts[prompts.length - 1];
    if (final) {
      const box = h("div", "llmm-prompt");
      box.append(h("div", "llmm-head", `Final prompt (${final.step || "answer"}; ${prompts.length} call${prompts.length > 1 ? "s" : ""}), as chat messages`));
      for (const m of final.messages) {
        const msg = h("div", `llmm-msg llmm-${m.role}`);
        msg.append(h("div", "llmm-role", m.role));
        const text = h("div", "llmm-content");
        // mark each chunk where it appears in the message
        /** @type {[number, number, number][]} */
        const found = [];
        sources.forEach((s, i) => {
          const probe = s.text.trim().slice(0, 200);
          const a = probe ? m.content.indexOf(probe) : -1;
          if (a < 0) return;
          let b = a + probe.length;
          const whole = s.text.trim();
          while (b < m.content.length && b - a < whole.length && m.content[b] === whole[b - a]) b++;
          found.push([a, b, i]);
        });
        found.sort((x, y) => x[0] - y[0]);
        let pos = 0;
        for (const [a, b, i] of found) {
          if (a < pos) continue;
          text.append(document.createTextNode(shown(m.content.slice(pos, a))));
          const mark = /** @type {HTMLElement} */ (h("mark", i === chunk ? "on" : "", shown(m.content.slice(a, b))));
          mark.dataset.chunk = String(i);
          mark.title = `chunk [${sources[i].number}] ${sources[i].label}`;
          mark.onclick = () => select(i);
          text.append(mark);
          pos = b;
        }
        text.append(document.createTextNode(shown(m.content.slice(pos))));
        msg.append(text);
        box.append(msg);
      }
      detail.append(box);
    } else {
      detail.append(h("div", "llmm-note", "No prompt was recorded (nothing relevant was retrieved, so the model was not called)."));
    }
    body.append(detail);
    root.append(body);
    const selected = /** @type {HTMLElement | null} */ (root.querySelector("mark.on"));
    const box = /** @type {HTMLElement | null} */ (root.querySelector(".llmm-prompt"));
    if (selected && box) box.scrollTop = Math.max(0, selected.offsetTop - box.offsetTop - 24); // inside the prompt box only
    if (scrollTo >= 0) {
      const card = /** @type {HTMLElement | null} */ (root.querySelector(`.llmm-chunk[data-chunk="${scrollTo}"]`));
      if (card) {
        card.classList.add("flash");
        card.scrollIntoView?.({ block: "nearest", behavior: "smooth" });
        card.focus({ preventScroll: true });
      }
      scrollTo = -1;
    }
    root.dataset.rendered = `chunk:${chunk}`;
  }

  const events = ["change:chunk", "change:sources", "change:answer", "change:prompts", "change:timings", "change:counts", "change:usage"];
  for (const e of events) model.on(e, draw);
  draw();
  return () => { for (const e of events) model.off(e, draw); };
}

export default { render };
