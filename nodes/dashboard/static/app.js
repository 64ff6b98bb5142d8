// The dashboard page: one WebSocket, a view every frame, commands back. Plain canvas, no build step.
"use strict";

const BG = [17, 17, 17];
const ON = [255, 214, 90];
const OFF = [80, 160, 255];
const PALETTE = ["#ffd65a", "#50a0ff", "#7fd18b", "#ff7b7b", "#c58aff", "#5ee0d0", "#ffb347", "#e6e6e6"];
let classes = 0;
let classNames = [];
let ws = null;

function $(id) { return document.getElementById(id); }
function fmt(n) { return n === undefined || n === null ? "–" : Number(n).toLocaleString("en"); }
function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(1) + " %"; }
function className(i) { return i < 0 ? "unknown" : (classNames[i] ? `${i} ${classNames[i]}` : String(i)); }

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${proto}//${location.host}/ws${location.search}`);
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === "hello") hello(m);
    else if (m.type === "view") {
      // the server sends the next frame once this one is drawn: frames never queue up behind a slow page
      try { draw(m); } finally { if (ws.readyState === WebSocket.OPEN) ws.send("drawn"); }
    }
    else if (m.type === "reply") showReply(m);
  };
  ws.onclose = () => {
    const s = $("status");
    if (!s.classList.contains("ended")) { s.textContent = "disconnected"; s.className = "status down"; }
    setTimeout(connect, 2000);
  };
}

function hello(m) {
  classes = m.classes;
  classNames = m.class_names || [];
  const box = $("labels");
  box.textContent = "";
  for (let i = 0; i < classes; i++) box.appendChild(labelButton(i, className(i)));
  box.appendChild(labelButton(null, "unknown"));
  $("read-only").textContent = m.can_teach ? "" : m.read_only_reason;
}

function labelButton(label, text) {
  const b = document.createElement("button");
  b.textContent = text;
  b.dataset.label = label === null ? "unknown" : String(label);
  b.addEventListener("click", () => send({ cmd: "label", label: label }));
  return b;
}

function send(cmd) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(cmd));
}

function showReply(m) {
  const r = $("reply");
  if (m.ok) {
    const what = m.cmd === "label" ? `label ${className(m.label)}` : m.cmd + (m.scope ? ` (${m.scope})` : "");
    r.textContent = `accepted: ${what}`;
    r.className = "reply ok";
  } else {
    r.textContent = `refused: ${m.error}`;
    r.className = "reply refused";
  }
}

function draw(v) {
  const s = $("status");
  s.textContent = v.ended ? "run ended (last state)" : "live";
  s.className = "status " + (v.ended ? "ended" : "live");
  $("link-info").textContent =
    `pages ${v.clients} · frames sent ${fmt(v.frames_sent)}, skipped ${fmt(v.frames_dropped)} · tap losses ${fmt(v.tap_lost)}`;
  drawFrames(v.frames);
  noteLatency(v.frames);
  if (v.rates) drawRates(v.rates);  // (rates, kernels, layers: once a second; the page keeps the last)
  drawSpikes(v.spikes);
  drawKernels(v.kernels || {});
  drawLayers(v.layers || {});
  drawPrediction(v.prediction);
  drawAccuracy(v);
  drawConfusion(v.decisions);
  drawRecent(v.decisions.recent);
  drawNodes(v.nodes);
  drawCommands(v.commands);
}

function drawFrames(frames) {
  const box = $("frames");
  for (const [name, f] of Object.entries(frames)) {
    let canvas = document.querySelector(`canvas.events[data-stream="${name}"]`);
    if (!canvas) {
      const div = document.createElement("div");
      div.className = "frame";
      const title = document.createElement("div");
      title.className = "muted";
      canvas = document.createElement("canvas");
      canvas.className = "events";
      canvas.dataset.stream = name;
      div.appendChild(title);
      div.appendChild(canvas);
      box.appendChild(div);
    }
    const title = canvas.previousSibling;
    title.textContent = `${name}: ${f.sensor[0]}×${f.sensor[1]}` + (f.scale > 1 ? ` (binned ${f.scale}×)` : "");
    if (canvas.width !== f.width || canvas.height !== f.height) { canvas.width = f.width; canvas.height = f.height; }
    const raw = atob(f.pixels);
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(f.width, f.height);
    for (let i = 0; i < raw.length; i++) {
      let v = raw.charCodeAt(i);
      if (v > 127) v -= 256;
      const a = Math.min(1, Math.abs(v) / 3);
      const c = v > 0 ? ON : OFF;
      for (let k = 0; k < 3; k++) img.data[4 * i + k] = v === 0 ? BG[k] : BG[k] + a * (c[k] - BG[k]);
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }
}

// frame latency per stream: from its newest events' sending to this frame drawn, ms (the benchmark reads it)
const latencies = {};
window.frameLatencies = latencies;
function noteLatency(frames) {
  const now = performance.timeOrigin + performance.now();
  for (const [name, f] of Object.entries(frames)) {
    if (!(f.created_ms > 0)) continue;
    const list = latencies[name] || (latencies[name] = []);
    list.push(now - f.created_ms);
    if (list.length > 20000) list.splice(0, 10000);
  }
}

function tileCanvas(box, cls, name) {
  let canvas = box.querySelector(`canvas.${cls}[data-stream="${name}"]`);
  if (!canvas) {
    const div = document.createElement("div");
    const title = document.createElement("div");
    title.className = "muted";
    canvas = document.createElement("canvas");
    canvas.className = cls;
    canvas.dataset.stream = name;
    div.appendChild(title);
    div.appendChild(canvas);
    box.appendChild(div);
  }
  return canvas;
}

function drawKernels(kernels) {
  // each map a tile: its ON channel (yellow) beside its OFF channel (blue), weight 0 dark, 1 bright
  const box = $("kernels");
  for (const [name, k] of Object.entries(kernels)) {
    const canvas = tileCanvas(box, "kernels", name);
    const tileW = k.channels * k.width + (k.channels - 1), gap = 2;
    const cols = Math.max(1, Math.min(k.maps, 8));
    const rows = Math.ceil(k.maps / cols);
    const w = cols * (tileW + gap), h = rows * (k.height + gap);
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w; canvas.height = h;
      canvas.style.width = `${Math.min(540, 6 * w)}px`;
    }
    const raw = atob(k.pixels);
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    for (let i = 0; i < img.data.length; i += 4) { img.data[i] = 40; img.data[i + 1] = 44; img.data[i + 2] = 52; img.data[i + 3] = 255; }
    const per = k.channels * k.height * k.width;
    for (let m = 0; m < k.maps; m++) {
      const ox = (m % cols) * (tileW + gap), oy = Math.floor(m / cols) * (k.height + gap);
      for (let c = 0; c < k.channels; c++) {
        const color = k.channels === 2 ? (c === 0 ? OFF : ON) : [230, 230, 230];
        for (let y = 0; y < k.height; y++) for (let x = 0; x < k.width; x++) {
          const a = raw.charCodeAt(m * per + (c * k.height + y) * k.width + x) / 255;
          const p = 4 * ((oy + y) * w + ox + c * (k.width + 1) + x);
          for (let j = 0; j < 3; j++) img.data[p + j] = BG[j] + a * (color[j] - BG[j]);
        }
      }
    }
    ctx.putImageData(img, 0, 0);
    canvas.previousSibling.textContent =
      `${name}: ${k.maps} maps of ${k.channels}×${k.height}×${k.width}` +
      (k.channels === 2 ? " (OFF | ON)" : "") + `, ${k.age_s} s old`;
  }
}

function drawLayers(layers) {
  const box = $("layers");
  for (const [name, rows] of Object.entries(layers)) {
    for (const r of rows) {
      const key = `${name}/${r.layer}`;
      const canvas = tileCanvas(box, "layer-spikes", key);
      if (canvas.width !== 540) { canvas.width = 540; canvas.height = 40; }
      canvas.dataset.firing = String(r.firing);
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#111"; ctx.fillRect(0, 0, canvas.width, canvas.height);
      const top = Math.max(1e-9, ...r.per_s);
      const bw = canvas.width / Math.max(1, r.maps);
      ctx.fillStyle = "#c58aff";
      r.per_s.forEach((c, i) => {
        const bh = (canvas.height - 2) * c / top;
        ctx.fillRect(i * bw, canvas.height - bh, Math.max(1, bw - 1), bh);
      });
      const total = r.per_s.reduce((a, b) => a + b, 0);
      canvas.previousSibling.textContent =
        `${name} layer ${r.layer} (${r.kind}): ${r.firing} of ${r.maps} maps firing, ${fmt(Math.round(total))} spikes/s`;
    }
  }
}

function ago(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

function lineChart(canvas, series, opts) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 28;
  ctx.fillStyle = "#111"; ctx.fillRect(0, 0, w, h);
  let xmin = Infinity, xmax = -Infinity, ymax = opts.ymax || 0;
  for (const s of series) for (const [x, y] of s.points) {
    xmin = Math.min(xmin, x); xmax = Math.max(xmax, x); if (!opts.ymax) ymax = Math.max(ymax, y);
  }
  ctx.fillStyle = "#8a8f98"; ctx.font = "10px sans-serif";
  ctx.fillText(opts.label(ymax), 2, 10);
  if (!isFinite(xmin) || ymax <= 0) return;
  if (xmax === xmin) xmax = xmin + 1;
  series.forEach((s, i) => {
    ctx.strokeStyle = PALETTE[i % PALETTE.length];
    ctx.beginPath();
    s.points.forEach(([x, y], j) => {
      const px = pad + (w - pad - 4) * (x - xmin) / (xmax - xmin);
      const py = h - 12 - (h - 24) * y / ymax;
      if (j === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    });
    ctx.stroke();
    ctx.fillStyle = PALETTE[i % PALETTE.length];
    ctx.fillText(s.name, pad + 4 + 90 * i, h - 1);
  });
}

function drawRates(rates) {
  const series = Object.entries(rates).filter(([, p]) => p.length).map(([name, points]) => ({ name, points }));
  lineChart($("rates"), series, { label: (y) => `${(y / 1e6).toFixed(2)} M ev/s` });
}

function drawSpikes(spikes) {
  const box = $("spikes");
  for (const [name, counts] of Object.entries(spikes)) {
    let canvas = document.querySelector(`canvas.spikes[data-stream="${name}"]`);
    if (!canvas) {
      const title = document.createElement("div");
      title.className = "muted";
      title.textContent = name;
      canvas = document.createElement("canvas");
      canvas.className = "spikes";
      canvas.dataset.stream = name;
      canvas.width = 540; canvas.height = 60;
      box.appendChild(title); box.appendChild(canvas);
    }
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#111"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    const top = Math.max(1, ...counts);
    const bw = canvas.width / Math.max(1, counts.length);
    ctx.fillStyle = "#7fd18b";
    counts.forEach((c, i) => {
      const bh = (canvas.height - 2) * c / top;
      ctx.fillRect(i * bw, canvas.height - bh, Math.max(1, bw - 1), bh);
    });
    canvas.previousSibling.textContent = `${name}: ${counts.length} maps, ${fmt(counts.reduce((a, b) => a + b, 0))} spikes/s`;
  }
}

function drawPrediction(p) {
  $("prediction").textContent = p ? className(p.label) : "–";
  const canvas = $("scores");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#111"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!p) return;
  const top = Math.max(1e-9, ...p.scores.map(Math.abs));
  const bw = canvas.width / p.scores.length;
  ctx.font = "10px sans-serif";
  p.scores.forEach((s, i) => {
    const bh = (canvas.height - 14) * Math.max(0, s) / top;
    ctx.fillStyle = i === p.label ? "#ffd65a" : "#50a0ff";
    ctx.fillRect(i * bw + 1, canvas.height - 12 - bh, bw - 2, bh);
    ctx.fillStyle = "#8a8f98";
    ctx.fillText(String(i), i * bw + bw / 2 - 3, canvas.height - 1);
  });
}

function drawAccuracy(v) {
  $("accuracy").textContent = `online ${pct(v.online_accuracy)} (${fmt(v.decisions.online)}), ` +
    `test ${pct(v.test_accuracy)} (${fmt(v.decisions.test)})`;
  lineChart($("curves"), [
    { name: "online", points: v.decisions.online_curve },
    { name: "test", points: v.decisions.test_curve },
  ], { ymax: 1, label: () => "100 %" });
}

function drawConfusion(d) {
  $("confusion-of").textContent = d.confusion_of;
  const m = d.confusion, n = m.length, canvas = $("confusion"), ctx = canvas.getContext("2d");
  ctx.fillStyle = "#111"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  const cell = canvas.width / Math.max(1, n);
  for (let r = 0; r < n; r++) {
    const total = m[r].reduce((a, b) => a + b, 0) || 1;
    for (let c = 0; c < n; c++) {
      const a = m[r][c] / total;
      ctx.fillStyle = `rgba(${r === c ? "127,209,139" : "255,123,123"},${a})`;
      ctx.fillRect(c * cell, r * cell, cell - 1, cell - 1);
    }
  }
}

function drawRecent(recent) {
  const body = $("recent").tBodies[0];
  body.textContent = "";
  for (const d of recent) {
    const tr = body.insertRow();
    tr.insertCell().textContent = fmt(d.t);
    tr.insertCell().textContent = className(d.label);
    tr.insertCell().textContent = d.truth < 0 ? "?" : className(d.truth);
    tr.insertCell().textContent = d.truth < 0 ? "" : (d.label === d.truth ? "✓" : "✗") + (d.train ? " online" : " test");
  }
}

const COUNTERS = ["events_in", "events_out", "gaps", "drops", "shed", "malformed", "errors", "checkpoints"];

function drawNodes(nodes) {
  const body = $("nodes").tBodies[0];
  for (const [name, n] of Object.entries(nodes)) {
    let tr = body.querySelector(`tr[data-node="${name}"]`);
    if (!tr) {
      tr = body.insertRow();
      tr.dataset.node = name;
      tr.insertCell().textContent = name;
      tr.insertCell().dataset.counter = "type";
      for (const k of COUNTERS) tr.insertCell().dataset.counter = k;
      for (const k of ["last_checkpoint", "learning", "latency", "age"]) tr.insertCell().dataset.counter = k;
      tr.insertCell().className = "muted";
    }
    tr.querySelector('td[data-counter="type"]').textContent = n.type || "";
    const c = n.counters;
    for (const k of COUNTERS) tr.querySelector(`td[data-counter="${k}"]`).textContent = fmt(c[k]);
    const lat = c.latency || {};
    tr.querySelector('td[data-counter="latency"]').textContent =
      lat.p50_ms === undefined ? "–" : `${lat.p50_ms} / ${lat.p99_ms}`;
    const now = Date.now() / 1000;
    tr.querySelector('td[data-counter="last_checkpoint"]').textContent =
      c.checkpoint_at ? `${ago(now - c.checkpoint_at)} (${c.checkpoint_ms} ms)` : "–";
    const learning = tr.querySelector('td[data-counter="learning"]');
    learning.textContent = n.learning === true ? "on" : n.learning === false ? "off" : "";
    learning.className = n.learning === false ? "frozen" : "";
    // how old the counters are: a busy tap delivers them late (they are snapshots: the next one replaces it)
    const age = tr.querySelector('td[data-counter="age"]');
    const reported = n.age_s !== null;
    age.textContent = n.final ? "final" : reported ? `${Math.max(0, n.age_s).toFixed(1)} s` : "–";
    age.className = !n.final && n.age_s > 3 ? "stale" : "";
    // falling behind (it sheds, or its input is more than a second old) stays marked once seen
    const fell = n.fell_behind_at;
    tr.className = fell ? "behind" : "";
    const since = fell ? new Date(fell * 1000).toLocaleTimeString("en-GB") : "";
    tr.cells[tr.cells.length - 1].textContent = (n.final ? "ended" : reported ? "running" : "no report yet") +
      (n.behind ? " · behind" : fell ? ` · fell behind at ${since}` : "");
  }
}

function drawCommands(commands) {
  const ul = $("commands");
  ul.textContent = "";
  for (const c of commands) {
    const li = document.createElement("li");
    li.textContent = `${c.at} ${c.ok ? "accepted" : "refused"}: ` + (c.ok ? JSON.stringify(c) : c.error);
    ul.appendChild(li);
  }
}

document.querySelectorAll("button[data-cmd]").forEach((b) => {
  b.addEventListener("click", () => {
    const cmd = { cmd: b.dataset.cmd };
    if (b.dataset.scope) cmd.scope = b.dataset.scope;
    send(cmd);
  });
});
connect();
