// The operator dashboard: polls /ops/api/overview and draws it. Text from the server is
// always set with textContent, never parsed as HTML.
"use strict";

(() => {
  const REFRESH_MS = 5000;
  // one colour per installed factor, in the order the API lists them; webhooks keep theirs
  const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#0891b2", "#db2777", "#65a30d", "#7c3aed"];
  const FACTOR_COLORS = { webhooks: "#9333ea" };
  const colourFactors = (names) => names.forEach((n, i) => { FACTOR_COLORS[n] ??= PALETTE[i % PALETTE.length]; });
  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "css") for (const [prop, val] of Object.entries(v)) node.style.setProperty(prop, val); // CSSOM: allowed by the CSP
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function ago(iso) {
    if (!iso) return "";
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 90) return `${Math.round(s)} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    return `${(s / 3600).toFixed(1)} h ago`;
  }

  function tiles(data) {
    const root = $("factors");
    root.replaceChildren();
    colourFactors(Object.keys(data.factors));
    for (const [factor, f] of Object.entries(data.factors)) {
      root.append(h("div", { class: "tile", "data-factor": factor, css: { "border-top-color": FACTOR_COLORS[factor] } },
        h("h3", {}, factor),
        h("dl", {},
          h("dt", {}, "waiting"), h("dd", { "data-k": "depth" }, f.depth),
          h("dt", {}, "running"), h("dd", { "data-k": "in_flight" }, f.in_flight),
          h("dt", {}, "jobs/s (1 min)"), h("dd", { "data-k": "per_s" }, f.per_s.toFixed(2)),
          h("dt", {}, "dead"), h("dd", { "data-k": "dead", class: f.dead ? "bad" : "" }, f.dead))));
    }
  }

  function span(data) {
    return { from: data.now - data.minutes * 60, to: data.now };
  }

  function depthChart(data) {
    const names = [...Object.keys(data.factors), "webhooks"];
    const series = names.map((name) => ({
      name, color: FACTOR_COLORS[name],
      points: data.queue_history.filter((s) => name in s.depths).map((s) => [s.t, s.depths[name]]),
    }));
    Charts.lines($("chart-depth"), series, { id: "queue-depth", title: "Queue depth", ...span(data) });
  }

  function throughputChart(data) {
    const series = Object.entries(data.throughput).map(([name, pts]) => ({ name, color: FACTOR_COLORS[name], points: pts }));
    Charts.lines($("chart-throughput"), series, { id: "throughput", title: "Jobs finished per second", unit: "/s", ...span(data) });
  }

  function latencyCharts(data) {
    const root = $("latency");
    root.replaceChildren();
    for (const [factor, pts] of Object.entries(data.latency)) {
      const box = h("div", { class: "chart" });
      root.append(h("figure", { class: "card" }, h("figcaption", {}, `${factor}: p50 / p95 / p99`), box));
      const c = FACTOR_COLORS[factor];
      Charts.lines(box, [
        { name: "p50", color: c, points: pts.map((p) => [p[0], p[1]]) },
        { name: "p95", color: c, dash: "6 3", points: pts.map((p) => [p[0], p[2]]) },
        { name: "p99", color: "#64748b", dash: "2 3", points: pts.map((p) => [p[0], p[3]]) },
      ], { id: `latency-${factor}`, title: `Upload to score, ${factor}`, unit: "s", width: 360, height: 200, ...span(data) });
    }
  }

  function workers(data) {
    const pools = data.workers.filter((w) => w.factor);
    Charts.bars($("chart-batches"), pools.map((w) => ({
      label: `${w.factor} ${w.hostname}:${w.pid}`, value: w.mean_batch_rows, color: FACTOR_COLORS[w.factor],
      note: `${w.batches} batches, ${w.mean_batch_jobs} jobs each on average`,
    })), { id: "batch-size", title: "Mean batch size", digits: 1, emptyText: "no scoring pool is alive" });
    const list = $("workers");
    list.replaceChildren();
    if (!data.workers.length) list.append(h("li", { class: "muted" }, "no process has sent a heartbeat in the last 20 s"));
    for (const w of data.workers) {
      list.append(h("li", { "data-role": w.role },
        h("strong", {}, w.role), ` ${w.hostname}:${w.pid}`,
        w.device ? h("span", { class: "pill" }, w.device) : "",
        h("span", { class: "muted" }, w.factor
          ? ` ${w.jobs_done} done, ${w.jobs_failed} failed, ${w.batches} batches`
          : ` up ${Math.round((data.now - w.started_at) / 60)} min`)));
    }
  }

  async function requeue(id, button, row) {
    button.disabled = true;
    button.textContent = "requeueing…";
    const r = await fetch(`/ops/api/jobs/${id}/requeue`, {
      method: "POST", credentials: "same-origin", headers: { "X-Tacit-Ops": "1" },
    });
    const body = await r.json().catch(() => ({}));
    if (r.ok) {
      row.classList.add("requeued");
      button.textContent = `requeued (${body.status})`;
    } else {
      button.disabled = false;
      button.textContent = "Requeue";
      row.append(h("span", { class: "bad" }, ` ${(body.error && body.error.message) || r.status}`));
    }
  }

  function deadJobs(data) {
    const root = $("dead");
    root.replaceChildren();
    if (!data.dead_jobs.length) {
      root.append(h("p", { class: "muted" }, "No dead jobs."));
      return;
    }
    const list = h("ul", { class: "dead" });
    for (const j of data.dead_jobs) {
      const row = h("li", { "data-job": j.id });
      const button = h("button", { type: "button", class: "requeue", onclick: () => requeue(j.id, button, row) }, "Requeue");
      row.append(button,
        h("code", { title: j.id }, j.id.slice(0, 8)), " ",
        h("span", { class: "pill", css: { background: FACTOR_COLORS[j.factor] } }, j.factor), " ",
        h("strong", {}, j.error_code || "unknown"), " ",
        h("span", { class: "reason" }, j.error_message || ""), " ",
        h("span", { class: "muted" }, `${j.attempts} attempts, ${ago(j.finished_at)}`));
      list.append(row);
    }
    root.append(list);
  }

  function evaluation(data) {
    const root = $("evaluation");
    root.replaceChildren();
    for (const [factor, ev] of Object.entries(data.evaluation)) {
      const card = h("figure", { class: "card", "data-factor": factor }, h("figcaption", {}, factor));
      root.append(card);
      if (!ev) {
        card.append(h("p", { class: "muted" }, "no evaluation report"));
        continue;
      }
      const chart = h("div", { class: "chart" });
      card.append(chart);
      const items = Object.entries(ev.scorers).flatMap(([name, s]) => [
        { label: `${name} EER`, value: s.eer ?? 0, color: FACTOR_COLORS[factor] },
        { label: `${name} pooled EER`, value: s.pooled_eer ?? 0, color: "#64748b" },
      ]);
      Charts.bars(chart, items, { id: `eer-${factor}`, title: `EER, ${factor}`, max: Math.max(0.5, ...items.map((i) => i.value)), digits: 3, width: 360 });
      if (ev.det) card.append(h("img", { src: `/ops/api/evaluation/${factor}/det.png`, alt: `DET curve, ${factor}`, class: "det" }));
      if (ev.data) card.append(h("p", { class: "muted" }, `data: ${ev.data}`));
    }
  }

  function trustEvaluation(data) {
    const root = $("trust-evaluation");
    root.replaceChildren();
    const ev = data.trust_evaluation;
    if (!ev) {
      root.append(h("p", { class: "muted" }, "no trust evaluation report (tacit eval trust --report)"));
      return;
    }
    const fmt = (v, d) => (v === null || v === undefined ? "-" : Number(v).toFixed(d));
    root.append(h("p", {}, `${ev.users} users, ${ev.sessions} sessions, ${ev.uploads} uploads`));
    const table = h("table", { class: "trust-figures" },
      h("tr", {}, ...["trust from", "ANIA (uploads)", "takeovers detected", "false lockouts / 1000", "ANGA"].map((t) => h("th", {}, t))));
    const rows = [["fused", ev.fused], ...Object.entries(ev.factors).map(([f, v]) => [`${f} alone`, v])];
    for (const [name, f] of rows) {
      table.append(h("tr", { "data-trust": name },
        h("td", {}, name), h("td", {}, fmt(f.ania, 2)), h("td", {}, fmt(f.detected, 3)),
        h("td", {}, fmt(f.false_lockouts_per_1000, 2)), h("td", {}, fmt(f.anga, 1))));
    }
    root.append(table);
    if (ev.fused.mean_detection_s !== null && ev.fused.mean_detection_s !== undefined)
      root.append(h("p", {}, `mean time to detection (fused): ${fmt(ev.fused.mean_detection_s, 0)} s`));
    if (ev.plots.trust) root.append(h("img", { src: "/ops/api/evaluation/trust/trust.png", alt: "trust over time", class: "det" }));
    if (ev.plots.det) root.append(h("img", { src: "/ops/api/evaluation/trust/det.png", alt: "DET curve, fused trust", class: "det" }));
    if (ev.data) root.append(h("p", { class: "muted" }, `data: ${ev.data}`));
  }

  let evaluationShown = false;

  let latest = 0; // a slow answer for an older window must not overwrite a newer one

  async function refresh() {
    const minutes = $("window").value;
    const ticket = ++latest;
    try {
      const r = await fetch(`/ops/api/overview?minutes=${minutes}`, { credentials: "same-origin" });
      if (ticket !== latest) return;
      if (r.status === 401) {
        window.location.reload();
        return;
      }
      const data = await r.json();
      if (ticket !== latest) return;
      tiles(data);
      depthChart(data);
      throughputChart(data);
      latencyCharts(data);
      workers(data);
      deadJobs(data);
      if (!evaluationShown) {
        evaluation(data); // the report changes with a deployment, not between refreshes
        trustEvaluation(data);
        evaluationShown = true;
      }
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      document.body.dataset.loaded = "1";
      document.body.dataset.minutes = String(data.minutes);
    } catch (e) {
      $("updated").textContent = "refresh failed: " + e;
    }
  }

  $("window").addEventListener("change", refresh);
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
