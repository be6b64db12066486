// @ts-check
/**
 * LossChart front end: one SVG line per series (train, validation) of [step, loss] points,
 * redrawn whenever `series` changes, so the chart grows while the run trains.
 * Plain ES module, DOM only; colours from the theme (loss.css).
 */

/** @typedef {{ get(name: string): any, on(e: string, cb: Function): void, off(e?: string, cb?: Function): void }} AnyModel */

const NS = "http://www.w3.org/2000/svg";
const W = 600, H = 240, PAD = { l: 48, r: 12, t: 10, b: 28 };

/** @param {string} tag @param {Record<string, string | number>} attrs */
function svg(tag, attrs) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** @param {Record<string, [number, number][]>} series */
const all_count = (series) => Object.values(series).reduce((n, p) => n + p.length, 0);

/** @param {{ model: AnyModel, el: HTMLElement }} ctx */
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "llmm-loss";
  const head = document.createElement("div");
  head.className = "llmm-loss-head";
  const title = document.createElement("span");
  title.className = "llmm-loss-title";
  const status = document.createElement("span");
  status.className = "llmm-loss-status";
  head.append(title, status);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  root.append(head, chart);
  el.append(root);

  function draw() {
    /** @type {Record<string, [number, number][]>} */
    const series = model.get("series") || {};
    const all = Object.values(series).flat();
    title.textContent = model.get("title") || "loss";
    const last = (series.train || []).at(-1);
    status.textContent = `${model.get("status")}` + (last ? ` · step ${last[0]} · loss ${last[1].toFixed(3)}` : "");
    chart.replaceChildren();
    root.dataset.rendered = `points:${all_count(series)}`;
    chart.append(svg("line", { class: "axis", x1: PAD.l, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b }));
    chart.append(svg("line", { class: "axis", x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: H - PAD.b }));
    if (!all.length) return;
    const steps = all.map((p) => p[0]), values = all.map((p) => p[1]);
    const x0 = Math.min(...steps), x1 = Math.max(...steps, x0 + 1);
    const y0 = Math.min(...values), y1 = Math.max(...values, y0 + 1e-6);
    const x = (/** @type {number} */ s) => PAD.l + ((s - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
    const y = (/** @type {number} */ v) => H - PAD.b - ((v - y0) / (y1 - y0)) * (H - PAD.t - PAD.b);
    for (const v of [y0, (y0 + y1) / 2, y1]) {
      const label = svg("text", { x: PAD.l - 4, y: y(v) + 3, "text-anchor": "end" });
      label.textContent = v.toFixed(2);
      chart.append(label);
    }
    for (const s of [x0, x1]) {
      const label = svg("text", { x: x(s), y: H - 8, "text-anchor": "middle" });
      label.textContent = `step ${s}`;
      chart.append(label);
    }
    for (const [name, points] of Object.entries(series)) {
      if (!points.length) continue;
      const d = points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
      const path = svg("path", { class: name === "validation" ? "validation" : "train", d });
      const tip = svg("title", {});
      tip.textContent = name;
      path.append(tip);
      chart.append(path);
    }
  }
  draw();
  model.on("change:series", draw);
  model.on("change:status", draw);
  model.on("change:title", draw);
  return () => {
    model.off("change:series", draw);
    model.off("change:status", draw);
    model.off("change:title", draw);
  };
}

export default { render };
