// The sweep page: polls /api/sweep once a second and draws the trials. Plain canvas, no build step.
"use strict";

const PALETTE = ["#ffd65a", "#50a0ff", "#7fd18b", "#ff7b7b", "#c58aff", "#5ee0d0", "#ffb347", "#e6e6e6"];

function $(id) { return document.getElementById(id); }
function num(x, digits) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  return Number.isInteger(x) ? x.toLocaleString("en") : x.toPrecision(digits || 4);
}
function color(i) { return PALETTE[i % PALETTE.length]; }

function scale(points, w, h, pad) {
  let x0 = Infinity, x1 = -Infinity, y1 = 0;
  for (const [x, y] of points) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  y1 = Math.max(y1, 1e-9);
  return { px: (x) => pad + (w - pad - 6) * (x - x0) / (x1 - x0), py: (y) => h - 14 - (h - 24) * y / y1, x0, x1, y1 };
}

function axes(ctx, s, w, h, xlabel) {
  ctx.fillStyle = "#8a8f98"; ctx.font = "10px sans-serif";
  ctx.fillText(num(s.y1, 3), 2, 10);
  ctx.fillText(`${num(s.x0, 3)} … ${num(s.x1, 3)} ${xlabel}`, 30, h - 2);
}

function drawCurves(trials, ids) {
  const canvas = $("curves"), ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.fillStyle = "#111"; ctx.fillRect(0, 0, w, h);
  const all = ids.flatMap((t) => trials[t].curve);
  if (!all.length) return;
  const s = scale(all, w, h, 30);
  axes(ctx, s, w, h, "samples");
  ids.forEach((t, i) => {
    const c = trials[t].curve;
    ctx.strokeStyle = color(i);
    ctx.setLineDash(trials[t].status === "stopped early" ? [3, 3] : []);
    ctx.beginPath();
    c.forEach(([x, y], j) => (j ? ctx.lineTo(s.px(x), s.py(y)) : ctx.moveTo(s.px(x), s.py(y))));
    ctx.stroke();
  });
  ctx.setLineDash([]);
}

function drawParams(v, ids) {
  const box = $("params");
  for (const key of v.keys) {
    let canvas = document.querySelector(`canvas.param[data-key="${key}"]`);
    if (!canvas) {
      const wrap = document.createElement("div");
      const title = document.createElement("div");
      title.className = "muted"; title.textContent = key;
      canvas = document.createElement("canvas");
      canvas.className = "param"; canvas.dataset.key = key; canvas.width = 260; canvas.height = 180;
      wrap.appendChild(title); wrap.appendChild(canvas); box.appendChild(wrap);
    }
    const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
    ctx.fillStyle = "#111"; ctx.fillRect(0, 0, w, h);
    const pts = [];
    ids.forEach((t, i) => {
      const tr = trials(v)[t], x = tr.params[key];
      const final = tr.figures[v.metric];
      const last = tr.curve.length ? tr.curve[tr.curve.length - 1][1] : null;
      const y = typeof final === "number" ? final : last;
      if (typeof x === "number" && typeof y === "number") pts.push([x, y, typeof final === "number", i]);
    });
    if (!pts.length) continue;
    const s = scale(pts, w, h, 30);
    axes(ctx, s, w, h, "");
    for (const [x, y, filled, i] of pts) {
      ctx.beginPath(); ctx.arc(s.px(x), s.py(y), 4, 0, 2 * Math.PI);
      if (filled) { ctx.fillStyle = color(i); ctx.fill(); } else { ctx.strokeStyle = color(i); ctx.stroke(); }
    }
  }
}

function trials(v) { return v.trials; }

function drawTable(v, ids) {
  const table = $("trials");
  const cols = ["trial", ...v.keys, "seed", "status", v.metric, "samples", "window", "M ev/s", "wall s"];
  const head = `<tr>${cols.map((c) => `<th>${c}</th>`).join("")}</tr>`;
  if (table.tHead.innerHTML !== head) table.tHead.innerHTML = head;
  const body = table.tBodies[0];
  body.textContent = "";
  ids.forEach((t, i) => {
    const tr = v.trials[t], f = tr.figures, last = tr.curve.length ? tr.curve[tr.curve.length - 1] : [null, null];
    const row = body.insertRow();
    row.dataset.trial = t;
    if (v.best && v.best.trial_id === t) row.className = "best";
    const cells = [t, ...v.keys.map((k) => tr.params[k]), tr.seed, tr.error ? `error: ${tr.error}` : tr.status,
      f[v.metric], last[0], last[1], f.events_per_s === undefined ? null : f.events_per_s / 1e6, f.trial_wall_s];
    cells.forEach((c, j) => {
      const cell = row.insertCell();
      cell.textContent = j === 0 ? c : num(c);
      cell.style.color = j === 0 ? color(i) : "";
    });
  });
}

async function poll() {
  try {
    const v = await (await fetch("/api/sweep")).json();
    const ids = Object.keys(v.trials).sort();
    $("name").textContent = v.name;
    $("metric-name").textContent = v.metric;
    const s = $("status");
    s.textContent = v.ended ? "sweep ended" : "running"; s.className = "status " + (v.ended ? "ended" : "live");
    const states = ids.map((t) => v.trials[t].status);
    const count = (x) => states.filter((y) => y === x).length;
    $("summary").textContent = `${ids.length} trials: ${count("running")} running, ${v.elapsed_s} s`;
    $("best").textContent = v.best ? `best: ${v.best.trial_id}, ${v.metric} ${num(v.best.metric)}` +
      (v.test_accuracy === null ? "" : `; its test figure, run once after selection: ${num(v.test_accuracy)}`) : "";
    drawCurves(v.trials, ids);
    drawParams(v, ids);
    drawTable(v, ids);
  } catch (e) {
    const s = $("status"); s.textContent = "disconnected"; s.className = "status down";
  }
  setTimeout(poll, 1000);
}
poll();
