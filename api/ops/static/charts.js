// Small SVG charts for the operator dashboard: time-series lines and horizontal bars.
// No library: every element is built here, so the page works with no network at all.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2"];

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  // A "nice" upper bound and tick step for values up to max.
  function niceScale(max, ticks) {
    if (!(max > 0)) return { top: 1, step: 0.25 };
    const raw = max / ticks;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    return { top: step * Math.ceil(max / step), step };
  }

  function fmt(v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1000) return (v / 1000).toFixed(a >= 10000 ? 0 : 1) + "k";
    if (a >= 10) return v.toFixed(0);
    if (a >= 1) return v.toFixed(1);
    if (a >= 0.01) return v.toFixed(2);
    return v.toExponential(0);
  }

  function clock(t) {
    const d = new Date(t * 1000);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  function empty(svg, w, h, text) {
    el("text", { x: w / 2, y: h / 2, "text-anchor": "middle", class: "empty" }, svg).textContent = text;
  }

  // series: [{name, points: [[t, v], ...], color?, dash?}]; x spans [from, to] (epoch s).
  function lines(container, series, opts) {
    const o = Object.assign({ width: 560, height: 220, from: null, to: null, unit: "" }, opts || {});
    const m = { l: 44, r: 12, t: 12, b: 40 };
    const w = o.width, h = o.height, pw = w - m.l - m.r, ph = h - m.t - m.b;
    container.replaceChildren();
    const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", class: "chart-svg", "data-chart": o.id || "" }, container);
    el("title", {}, svg).textContent = o.title || "";
    const all = series.flatMap((s) => s.points);
    const to = o.to ?? Math.max(...all.map((p) => p[0]), 1);
    const from = o.from ?? Math.min(...all.map((p) => p[0]), to - 60);
    const { top, step } = niceScale(Math.max(0, ...all.map((p) => p[1])), 4);
    const x = (t) => m.l + ((t - from) / Math.max(1, to - from)) * pw;
    const y = (v) => m.t + ph - (v / top) * ph;

    const grid = el("g", { class: "grid" }, svg);
    for (let v = 0; v <= top + step / 2; v += step) {
      el("line", { x1: m.l, x2: m.l + pw, y1: y(v), y2: y(v) }, grid);
      el("text", { x: m.l - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, grid).textContent = fmt(v) + o.unit;
    }
    for (let i = 0; i <= 4; i++) {
      const t = from + ((to - from) * i) / 4;
      el("text", { x: x(t), y: m.t + ph + 16, "text-anchor": "middle", class: "tick" }, grid).textContent = clock(t);
    }
    if (!all.length) {
      empty(svg, w, h - 20, "no data in this window");
    }
    series.forEach((s, i) => {
      if (!s.points.length) return;
      const color = s.color || PALETTE[i % PALETTE.length];
      const d = s.points.map((p, j) => (j ? "L" : "M") + x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join("");
      const path = el("path", { d, class: "series", stroke: color, "data-series": s.name, "data-points": s.points.length }, svg);
      if (s.dash) path.setAttribute("stroke-dasharray", s.dash);
      el("title", {}, path).textContent = `${s.name}: last ${fmt(s.points[s.points.length - 1][1])}${o.unit}`;
      if (s.points.length === 1) el("circle", { cx: x(s.points[0][0]), cy: y(s.points[0][1]), r: 3, fill: color }, svg);
    });
    // legend under the axis
    let lx = m.l;
    series.forEach((s, i) => {
      const color = s.color || PALETTE[i % PALETTE.length];
      el("rect", { x: lx, y: h - 12, width: 10, height: 3, fill: color }, svg);
      const label = el("text", { x: lx + 14, y: h - 8, class: "legend" }, svg);
      label.textContent = s.name;
      lx += 22 + 7 * s.name.length;
    });
    return svg;
  }

  // bars: [{label, value, note?}] drawn horizontally; max: the axis end (default: largest value).
  function bars(container, items, opts) {
    const o = Object.assign({ width: 560, barHeight: 22, max: null, unit: "", digits: 2 }, opts || {});
    const m = { l: 150, r: 60, t: 8, b: 8 };
    const h = m.t + m.b + Math.max(1, items.length) * (o.barHeight + 8);
    container.replaceChildren();
    const svg = el("svg", { viewBox: `0 0 ${o.width} ${h}`, role: "img", class: "chart-svg", "data-chart": o.id || "" }, container);
    el("title", {}, svg).textContent = o.title || "";
    if (!items.length) {
      empty(svg, o.width, h, o.emptyText || "nothing to show");
      return svg;
    }
    const max = o.max || Math.max(...items.map((b) => b.value), 1e-9);
    const pw = o.width - m.l - m.r;
    items.forEach((b, i) => {
      const y0 = m.t + i * (o.barHeight + 8);
      el("text", { x: m.l - 8, y: y0 + o.barHeight / 2 + 4, "text-anchor": "end", class: "label" }, svg).textContent = b.label;
      el("rect", { x: m.l, y: y0, width: pw, height: o.barHeight, class: "track" }, svg);
      const bw = Math.max(1, (Math.min(b.value, max) / max) * pw);
      const bar = el("rect", { x: m.l, y: y0, width: bw, height: o.barHeight, class: "bar", fill: b.color || PALETTE[i % PALETTE.length], "data-value": b.value }, svg);
      el("title", {}, bar).textContent = b.note || `${b.label}: ${b.value}`;
      el("text", { x: m.l + bw + 6, y: y0 + o.barHeight / 2 + 4, class: "value" }, svg).textContent = b.value.toFixed(o.digits) + o.unit;
    });
    return svg;
  }

  return { lines, bars, PALETTE };
})();
