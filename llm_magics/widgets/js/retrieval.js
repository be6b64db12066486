// @ts-check
/**
 * RetrievalWidget front end: the retrieved chunks, the final prompt, the citations,
 * timings and token counts of one %%ask. Clicking a chunk (or a [n] mark in the answer)
 * shows its full text inside the prompt the model saw. Plain ES module, DOM only.
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

/** @param {{ model: AnyModel, el: HTMLElement }} ctx */
function render({ model, el }) {
  const root = h("div", "llmm-retr");
  el.append(root);

  /** @param {number} i */
  const select = (i) => { model.set("chunk", i); model.save_changes(); };

  function draw() {
    const sources = /** @type {Source[]} */ (model.get("sources"));
    const chunk = model.get("chunk");
    const prompts = model.get("prompts");
    const answerText = model.get("answer");
    root.replaceChildren();

    // question and answer, with clickable [n] marks
    const qa = h("div", "llmm-qa");
    qa.append(h("div", "llmm-question", `Q: ${model.get("question")}`));
    const ans = h("div", "llmm-answer-text");
    let at = 0;
    for (const c of model.get("citations")) {
      ans.append(document.createTextNode(answerText.slice(at, c.start)));
      const idx = sources.findIndex((s) => s.number === c.number);
      const mark = /** @type {HTMLElement} */ (h("button", "llmm-cite" + (idx === chunk ? " on" : ""), `[${c.number}]`));
      mark.dataset.number = String(c.number);
      mark.title = idx >= 0 ? `from chunk ${c.number}: ${sources[idx].label}` : "";
      mark.onclick = () => idx >= 0 && select(idx);
      ans.append(mark);
      at = c.end;
    }
    ans.append(document.createTextNode(answerText.slice(at)));
    qa.append(ans);
    if (!model.get("grounded") || model.get("note")) qa.append(h("div", "llmm-note", `⚠ ${model.get("note") || "Not grounded in the sources."}`));
    root.append(qa);

    // timings and token counts
    const stats = h("div", "llmm-stats");
    const timings = model.get("timings");
    const usage = model.get("usage");
    const total = Number(timings.total || 0) || Math.max(0, ...Object.values(timings).map(Number).filter((v) => v < 1e6));
    const bars = h("div", "llmm-timings");
    for (const [k, v] of Object.entries(timings)) {
      if (typeof v !== "number" || k === "tokens_per_s") continue;
      const row = h("div", "llmm-timing");
      const bar = h("span", "llmm-bar");
      bar.style.width = `${total ? Math.max(2, (160 * v) / total) : 2}px`;
      row.append(h("span", "llmm-k", k), bar, h("span", "llmm-v", secs(v)));
      bars.append(row);
    }
    const tokens = h("div", "llmm-tokens",
      `${model.get("model_name") || "model"}${model.get("chain_type") ? ` · chain ${model.get("chain_type")}` : ""} · ` +
      `prompt ${usage.prompt_tokens ?? "?"} tokens → answer ${usage.completion_tokens ?? "?"} tokens` +
      `${timings.tokens_per_s ? ` · ${Number(timings.tokens_per_s).toFixed(1)} tokens/s` : ""}` +
      `${usage.calls ? ` · ${usage.calls} model call(s)` : ""}${usage.finish_reason ? ` · stopped: ${usage.finish_reason}` : ""}`);
    stats.append(tokens, bars);
    root.append(stats);

    const body = h("div", "llmm-body");
    // the chunks
    const list = h("div", "llmm-chunks");
    list.append(h("div", "llmm-head", `Retrieved chunks (${sources.length}), best first`));
    const top = Math.max(1e-9, ...sources.map((s) => s.score));
    sources.forEach((s, i) => {
      const card = /** @type {HTMLElement} */ (h("div", "llmm-chunk" + (i === chunk ? " on" : "") + (s.cited ? " cited" : "")));
      card.dataset.chunk = String(i);
      const head = h("div", "llmm-chunk-head");
      const score = h("span", "llmm-score");
      const bar = h("span", "llmm-bar");
      bar.style.width = `${Math.max(2, (60 * s.score) / top)}px`;
      score.append(bar, document.createTextNode(` ${s.score.toFixed(3)}`));
      head.append(h("b", "", `[${s.number}]`), document.createTextNode(` ${s.label} `), score);
      if (s.cited) head.append(h("span", "llmm-badge", "cited"));
      card.append(head, h("div", "llmm-preview", s.text.length > 180 ? s.text.slice(0, 180) + "…" : s.text));
      card.onclick = () => select(i);
      list.append(card);
    });
    for (const d of model.get("dropped")) list.append(h("div", "llmm-dropped", `did not fit the context window: ${d.label}`));
    body.append(list);

    // the chunk in full, and the final prompt with every chunk marked
    const detail = h("div", "llmm-detail");
    if (chunk >= 0 && chunk < sources.length) {
      const s = sources[chunk];
      const full = h("div", "llmm-full");
      full.append(h("div", "llmm-head", `Chunk [${s.number}] in full · ${s.label} · ${s.text.length} characters`), h("div", "llmm-full-text", s.text));
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
          const full = s.text.trim();
          while (b < m.content.length && b - a < full.length && m.content[b] === full[b - a]) b++;
          found.push([a, b, i]);
        });
        found.sort((x, y) => x[0] - y[0]);
        let pos = 0;
        for (const [a, b, i] of found) {
          if (a < pos) continue;
          text.append(document.createTextNode(m.content.slice(pos, a)));
          const mark = /** @type {HTMLElement} */ (h("mark", i === chunk ? "on" : "", m.content.slice(a, b)));
          mark.dataset.chunk = String(i);
          mark.title = `chunk [${sources[i].number}] ${sources[i].label}`;
          mark.onclick = () => select(i);
          text.append(mark);
          pos = b;
        }
        text.append(document.createTextNode(m.content.slice(pos)));
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
    if (selected && selected.scrollIntoView) selected.scrollIntoView({ block: "nearest" });
    root.dataset.rendered = `chunk:${chunk}`;
  }

  const events = ["change:chunk", "change:sources", "change:answer", "change:prompts", "change:timings", "change:usage"];
  for (const e of events) model.on(e, draw);
  draw();
  return () => { for (const e of events) model.off(e, draw); };
}

export default { render };
