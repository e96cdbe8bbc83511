// aacbatch dashboard: training curves (uPlot, vendored), a running run's live refresh, and
// the compare page's paired tests. Data comes embedded in the page (JSON in a <script
// type="application/json"> element) or from the page's /api twin; nothing else is fetched.
"use strict";

const PALETTE = ["#2459a6", "#d1495b", "#2e933c", "#e08e0b", "#7b2cbf", "#00798c", "#8d6a9f", "#5c5c5c"];

function embedded(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

// series: [{run_id, metric, split, epochs: [...], values: [...]}]; label(s) names a line.
// One chart per metric; lines share the x axis (epochs), gaps where a run has no value.
function drawCurves(container, series, label) {
  container.innerHTML = "";
  const byMetric = new Map();
  for (const s of series) {
    if (!byMetric.has(s.metric)) byMetric.set(s.metric, []);
    byMetric.get(s.metric).push(s);
  }
  const names = [...new Set(series.map(label))];
  const colour = (s) => PALETTE[names.indexOf(label(s)) % PALETTE.length];
  const metrics = [...byMetric.keys()].sort((a, b) => (a === "loss") - (b === "loss") || a.localeCompare(b));
  for (const metric of metrics) {
    const lines = byMetric.get(metric);
    const epochs = [...new Set(lines.flatMap((s) => s.epochs))].sort((a, b) => a - b);
    const data = [epochs, ...lines.map((s) => {
      const at = new Map(s.epochs.map((e, k) => [e, s.values[k]]));
      return epochs.map((e) => (at.has(e) ? at.get(e) : null));
    })];
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.metric = metric;
    box.dataset.points = String(lines.reduce((n, s) => n + s.values.filter((v) => v !== null).length, 0));
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = metric === "loss" ? "loss (training)" : metric;
    box.appendChild(title);
    container.appendChild(box);
    const width = Math.max(300, box.clientWidth - 8);
    new uPlot({
      width, height: 190,
      scales: { x: { time: false } },
      legend: { live: true },
      axes: [{ label: "epoch", size: 36 }, { size: 52 }],
      series: [{ label: "epoch" }, ...lines.map((s) => ({
        label: label(s), stroke: colour(s), width: 1.6, spanGaps: true, points: { show: epochs.length <= 60, size: 4 },
      }))],
    }, data, box);
  }
  if (!metrics.length) container.textContent = "No per-epoch scores recorded.";
}

function runLabel(s) { return s.split; }

function setupRun() {
  const page = embedded("run-data");
  if (!page) return;
  const box = document.getElementById("curves");
  drawCurves(box, page.curves, runLabel);
  if (page.status !== "running") return;
  const note = document.getElementById("live");
  const poll = async () => {
    try {
      const response = await fetch(page.curves_url, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const fresh = await response.json();
      const points = (c) => c.reduce((n, s) => n + s.epochs.length, 0);
      if (points(fresh.curves) !== points(page.curves)) {
        page.curves = fresh.curves;
        drawCurves(box, page.curves, runLabel);
      }
      note.textContent = fresh.stale ? fresh.stale : `live: refreshed ${new Date().toLocaleTimeString()}`;
      if (fresh.status !== "running") { window.location.reload(); return; }
    } catch (err) {
      note.textContent = `live refresh paused (${err.message}); retrying`;
    }
    setTimeout(poll, page.poll_s * 1000);
  };
  setTimeout(poll, page.poll_s * 1000);
}

function setupCompare() {
  const page = embedded("compare-data");
  if (!page) return;
  const labels = new Map(page.items.map((i) => [i.id, i.label]));
  const box = document.getElementById("curves");
  if (box) drawCurves(box, page.curves, (s) => `${labels.get(s.run_id)} ${s.split}`);
  for (const row of document.querySelectorAll("tr[data-paired]")) loadPaired(row);
}

function fmt(x) { return x === null || x === undefined ? "n/a" : Number(x).toFixed(4); }

async function loadPaired(row) {
  const cell = row.querySelector(".result");
  try {
    const response = await fetch(row.dataset.paired, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) { cell.textContent = body.error || `HTTP ${response.status}`; return; }
    if (body.state === "pending") { cell.textContent = "computing per-clip scores…"; setTimeout(() => loadPaired(row), 1500); return; }
    if (body.state !== "ready") { cell.textContent = body.reason; return; }
    const table = document.createElement("table");
    table.className = "grid";
    table.innerHTML = "<tr><th>metric</th><th class=num>A</th><th class=num>B</th><th class=num>A − B</th>"
      + `<th class=num>${Math.round(body.level * 100)}% interval</th><th class=num>p</th></tr>`;
    for (const c of body.comparisons) {
      const tr = document.createElement("tr");
      for (const [text, num] of [[c.metric, false], [fmt(c.a), true], [fmt(c.b), true], [fmt(c.difference), true],
                                 [`${fmt(c.low)} … ${fmt(c.high)}`, true], [fmt(c.p_value), true]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (num) td.className = "num";
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
    cell.textContent = `${body.basis}, ${body.resamples} resamples by clip:`;
    cell.appendChild(table);
  } catch (err) {
    cell.textContent = `could not load: ${err.message}`;
  }
}

function setupCompareBoxes() {
  for (const form of document.querySelectorAll("form.pick")) {
    const button = form.querySelector("button[type=submit]");
    const boxes = form.querySelectorAll("input[type=checkbox]");
    const update = () => {
      const n = [...boxes].filter((b) => b.checked).length;
      button.disabled = n < 2 || n > 6;
      button.textContent = `Compare ${n ? n + " " : ""}selected`;
    };
    boxes.forEach((b) => b.addEventListener("change", update));
    update();
  }
}

document.addEventListener("DOMContentLoaded", () => { setupRun(); setupCompare(); setupCompareBoxes(); });
