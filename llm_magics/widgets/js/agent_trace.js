// @ts-check
/**
 * AgentTraceWidget front end: an agent run as a timeline of steps (thought → action →
 * observation, or the final answer). Clicking a step shows the prompt the model saw and
 * its raw output. Plain ES module, DOM only, no network.
 */

/** @typedef {{ get(name: string): any, set(name: string, value: any): void, save_changes(): void, on(e: string, cb: Function): void, off(e?: string, cb?: Function): void }} AnyModel */
/** @typedef {{ index: number, kind: string, thought: string, tool: string|null, tool_input: string, observation: string, answer: string, error: string|null, raw: string, prompt: {role: string, content: string}[], seconds: number, tokens: number, constrained: boolean }} Step */

/** @param {string} tag @param {string} [cls] @param {string} [text] */
function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** @param {number} s */
const secs = (s) => (s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(1)} s`);

const LABELS = /** @type {Record<string, string>} */ ({ action: "action", final: "final answer", invalid: "invalid", rejected: "rejected" });

/** @param {{ model: AnyModel, el: HTMLElement }} ctx */
function render({ model, el }) {
  const root = h("div", "llmm-agent");
  el.append(root);
  let draws = 0;

  /** @param {number} i */
  const select = (i) => { model.set("selected", model.get("selected") === i ? -1 : i); model.save_changes(); };

  function draw() {
    const steps = /** @type {Step[]} */ (model.get("steps"));
    const selected = model.get("selected");
    root.replaceChildren();

    const head = h("div", "llmm-agent-head");
    head.append(h("div", "llmm-agent-task", `Task: ${model.get("task")}`));
    const meta = `${steps.length} step(s) · ${model.get("finish_reason") || "?"} · ${secs(model.get("seconds"))} · ${model.get("model_name")} (${model.get("mode")})`;
    head.append(h("div", "llmm-agent-meta", meta));
    root.append(head);

    const line = h("ol", "llmm-timeline");
    steps.forEach((s, i) => {
      const item = /** @type {HTMLElement} */ (h("li", `llmm-step llmm-${s.kind}` + (i === selected ? " on" : "")));
      item.dataset.step = String(i);
      item.tabIndex = 0;
      item.setAttribute("role", "button");
      item.setAttribute("aria-expanded", String(i === selected));
      const top = h("div", "llmm-step-top");
      top.append(h("span", "llmm-step-no", `${s.index}`), h("span", "llmm-step-kind", LABELS[s.kind] || s.kind));
      top.append(h("span", "llmm-step-time", `${secs(s.seconds)} · ${s.tokens} tok${s.constrained ? " · grammar" : ""}`));
      item.append(top);
      if (s.thought) item.append(h("div", "llmm-thought", `💭 ${s.thought}`));
      if (s.kind === "final") item.append(h("div", "llmm-final", s.answer));
      else {
        if (s.tool) item.append(h("div", "llmm-call", `${s.tool}(${s.tool_input})`));
        if (s.error) item.append(h("div", "llmm-error", `⚠ ${s.error}`));
        if (s.observation) item.append(h("div", "llmm-obs", s.observation));
      }
      item.onclick = () => select(i);
      item.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(i); } };
      line.append(item);
    });
    root.append(line);

    const answer = model.get("answer");
    root.append(h("div", "llmm-agent-answer", answer ? `Answer: ${answer}` : "No answer."));
    const sources = model.get("sources");
    if (sources.length) {
      const list = h("ul", "llmm-agent-sources");
      for (const s of sources) list.append(h("li", "", `[${s.number}] ${s.source}`));
      root.append(list);
    }

    if (selected >= 0 && selected < steps.length) {
      const s = steps[selected];
      const detail = h("div", "llmm-detail");
      detail.append(h("div", "llmm-detail-title", `Step ${s.index}: the prompt the model saw`));
      for (const m of s.prompt) {
        const msg = h("div", `llmm-msg llmm-msg-${m.role}`);
        msg.append(h("span", "llmm-role", m.role), h("pre", "llmm-content", m.content));
        detail.append(msg);
      }
      detail.append(h("div", "llmm-detail-title", "Raw output"));
      detail.append(h("pre", "llmm-raw", s.raw));
      root.append(detail);
    }
    draws += 1;
    root.dataset.rendered = `steps:${steps.length}:selected:${selected}:${draws}`;
  }

  draw();
  const redraw = () => draw();
  for (const name of ["steps", "selected", "answer", "sources"]) model.on(`change:${name}`, redraw);
  return () => { for (const name of ["steps", "selected", "answer", "sources"]) model.off(`change:${name}`, redraw); };
}

export default { render };
