// echoic explorer: the map (canvas), the neighbour list, search by id and by dropped file.
// Plain JavaScript, no library, nothing loaded from elsewhere (the server's CSP forbids it).
"use strict";

const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  "#bcbd22", "#393b79", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
  "#f7b6d2", "#9edae5", "#dbdb8d", "#637939",
];
const OTHER_COLOUR = "#c8c8c8";

const state = {
  info: null, map: null, scheme: null, selected: null, neighbours: [],
  view: { scale: 1, tx: 0, ty: 0 }, position: new Map(),
};
const $ = (id) => document.getElementById(id);

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const why = body && body.error ? body.error : response.statusText;
    throw new Error(`${response.status}: ${why}`);
  }
  return body;
}

function k() {
  const value = parseInt($("k-input").value, 10);
  const top = state.info ? state.info.max_k : 100;
  return Number.isFinite(value) ? Math.min(Math.max(value, 1), top) : 10;
}

function colourOf(scheme, code) {
  return scheme.names[code] === "other" ? OTHER_COLOUR : PALETTE[code % PALETTE.length];
}

// ---- the map -------------------------------------------------------------------------------
function canvasSize() {
  const canvas = $("map");
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  return { w, h, ratio };
}

function toScreen(i, w, h) {
  const pad = 14, v = state.view;
  const x = pad + state.map.x[i] * (w - 2 * pad);
  const y = pad + (1 - state.map.y[i]) * (h - 2 * pad);
  return [x * v.scale + v.tx, y * v.scale + v.ty];
}

function draw() {
  if (!state.map) return;
  const canvas = $("map");
  const { w, h, ratio } = canvasSize();
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const scheme = state.map.schemes[state.scheme];
  const n = state.map.ids.length;
  const radius = n > 20000 ? 1.6 : n > 2000 ? 2.4 : 4;
  ctx.globalAlpha = state.selected === null ? 0.75 : 0.35;
  for (let i = 0; i < n; i++) {
    const [x, y] = toScreen(i, w, h);
    if (x < -5 || y < -5 || x > w + 5 || y > h + 5) continue;
    ctx.fillStyle = colourOf(scheme, scheme.codes[i]);
    if (n > 5000) {  // squares: many times faster than arcs, alike at this size
      ctx.fillRect(x - radius, y - radius, 2 * radius, 2 * radius);
    } else {
      ctx.beginPath();
      ctx.arc(x, y, radius, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  ctx.globalAlpha = 1;
  ctx.lineWidth = 2;
  for (const hit of state.neighbours) ring(ctx, hit.id, w, h, 6, "#111");
  if (state.selected !== null) ring(ctx, state.selected, w, h, 9, "#e00");
}

function ring(ctx, id, w, h, r, colour) {
  const i = state.position.get(id);
  if (i === undefined) return;  // a row not on the (sampled) map
  const [x, y] = toScreen(i, w, h);
  ctx.strokeStyle = colour;
  ctx.beginPath();
  ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.stroke();
}

function nearestPoint(px, py, within = 10) {
  const { w, h } = canvasSize();
  let best = -1, bestD = within * within;
  for (let i = 0; i < state.map.ids.length; i++) {
    const [x, y] = toScreen(i, w, h);
    const d = (x - px) ** 2 + (y - py) ** 2;
    if (d < bestD) { bestD = d; best = i; }
  }
  return best;
}

function drawLegend() {
  const scheme = state.map.schemes[state.scheme];
  const legend = $("legend");
  legend.replaceChildren();
  scheme.names.forEach((name, code) => {
    const li = document.createElement("li");
    const dot = document.createElement("span");
    dot.className = "swatch";
    dot.style.background = colourOf(scheme, code);
    li.append(dot, `${name} (${scheme.counts[code]})`);
    legend.append(li);
  });
}

function setupMap() {
  const canvas = $("map");
  let drag = null, moved = false;
  canvas.addEventListener("mousedown", (e) => {
    drag = { x: e.clientX, y: e.clientY, tx: state.view.tx, ty: state.view.ty };
    moved = false;
  });
  window.addEventListener("mouseup", () => { drag = null; });
  canvas.addEventListener("mousemove", (e) => {
    const rect = canvas.getBoundingClientRect();
    if (drag) {
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) moved = true;
      state.view.tx = drag.tx + dx;
      state.view.ty = drag.ty + dy;
      draw();
      return;
    }
    const i = nearestPoint(e.clientX - rect.left, e.clientY - rect.top, 8);
    const tip = $("tooltip");
    if (i < 0) { tip.hidden = true; return; }
    const scheme = state.map.schemes[state.scheme];
    tip.textContent = `#${state.map.ids[i]} · ${scheme.names[scheme.codes[i]]}`;
    tip.style.left = `${e.clientX - rect.left + 12}px`;
    tip.style.top = `${e.clientY - rect.top + 12}px`;
    tip.hidden = false;
  });
  canvas.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  canvas.addEventListener("click", (e) => {
    if (moved) return;
    const rect = canvas.getBoundingClientRect();
    const i = nearestPoint(e.clientX - rect.left, e.clientY - rect.top);
    if (i >= 0) searchRow(state.map.ids[i]);
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const rect = canvas.getBoundingClientRect();
    const px = e.clientX - rect.left, py = e.clientY - rect.top;
    const factor = Math.exp(-e.deltaY * 0.0015);
    const v = state.view;
    const scale = Math.min(Math.max(v.scale * factor, 0.5), 200);
    v.tx = px - (px - v.tx) * (scale / v.scale);
    v.ty = py - (py - v.ty) * (scale / v.scale);
    v.scale = scale;
    draw();
  }, { passive: false });
  canvas.addEventListener("dblclick", () => { state.view = { scale: 1, tx: 0, ty: 0 }; draw(); });
  window.addEventListener("resize", draw);
}

// ---- results -------------------------------------------------------------------------------
function card(item, extra, isQuery) {
  const li = document.createElement(isQuery ? "div" : "li");
  li.className = isQuery ? "card query" : "card hit";
  if (item.id !== undefined) li.dataset.id = item.id;
  if (item.thumbnail) {
    const img = document.createElement("img");
    img.src = item.thumbnail;
    img.alt = `waveform and spectrogram of row ${item.id}`;
    img.loading = "lazy";
    li.append(img);
  }
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = item.name !== undefined ? `${item.name}` : "";
  const meta = document.createElement("div");
  meta.className = "meta";
  const span = item.offset_s > 0
    ? `${item.offset_s.toFixed(2)}–${(item.offset_s + item.duration_s).toFixed(2)} s`
    : `${item.duration_s.toFixed(2)} s`;
  meta.textContent = [extra, item.id !== undefined ? `id ${item.id}` : null, span,
    item.label ? `label ${item.label}` : null].filter(Boolean).join(" · ");
  li.append(name, meta);
  if (item.audio) {
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = isQuery ? "metadata" : "none";
    audio.src = item.audio;
    li.append(audio);
  }
  return li;
}

function showResults(query, hits, title) {
  const score = state.info.score;
  $("query").replaceChildren(card(query, title, true));
  $("neighbours").replaceChildren(
    ...hits.map((hit) => card(hit, `#${hit.rank} · ${score} ${hit.score.toFixed(4)}`, false)));
  state.neighbours = hits;
  draw();
}

async function searchRow(id) {
  setStatus(`searching the neighbours of row ${id}…`);
  try {
    const answer = await getJSON(`/api/neighbours/${encodeURIComponent(id)}?k=${k()}`);
    state.selected = answer.query.id;
    showResults(answer.query, answer.hits, "query");
    setStatus(`${answer.hits.length} nearest rows of row ${id}`);
  } catch (err) {
    setStatus(`row ${id}: ${err.message}`, true);
  }
}

async function searchFile(file) {
  const limit = state.info.max_upload_bytes;
  if (file.size > limit) {
    setStatus(`${file.name}: ${(file.size / 2 ** 20).toFixed(1)} MiB, more than the ` +
      `${(limit / 2 ** 20).toFixed(1)} MiB an upload may have`, true);
    return;
  }
  setStatus(`embedding ${file.name}…`);
  try {
    const answer = await getJSON(`/api/query?k=${k()}&name=${encodeURIComponent(file.name)}`, {
      method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" },
    });
    state.selected = null;
    const query = { name: `uploaded: ${file.name}`, duration_s: answer.query.duration_s, offset_s: 0 };
    showResults(query, answer.hits, "query (upload)");
    setStatus(`${answer.hits.length} nearest rows of ${file.name}`);
  } catch (err) {
    setStatus(`${file.name}: ${err.message}`, true);
  }
}

function setupSearch() {
  $("id-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("id-input").value.trim();
    if (!/^[0-9]+$/.test(text)) { setStatus("a row id is a whole number", true); return; }
    searchRow(text);
  });
  $("file-input").addEventListener("change", (e) => {
    if (e.target.files.length) searchFile(e.target.files[0]);
    e.target.value = "";
  });
  const overlay = $("drop-overlay");
  let depth = 0;
  window.addEventListener("dragenter", (e) => { e.preventDefault(); depth++; overlay.hidden = false; });
  window.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; overlay.hidden = true; } });
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    overlay.hidden = true;
    const files = e.dataTransfer ? e.dataTransfer.files : [];
    if (files.length) searchFile(files[0]);
  });
  $("scheme").addEventListener("change", (e) => {
    state.scheme = e.target.value;
    drawLegend();
    draw();
  });
}

async function start() {
  setupMap();
  setupSearch();
  try {
    state.info = await getJSON("/api/info");
    const i = state.info;
    $("info").textContent = `${i.count.toLocaleString()} ${i.level} rows · ${i.model} · ` +
      `${i.kind} index, ${i.score} · map: ${i.map.method}` +
      (i.uploads ? "" : " · uploads off");
    $("k-input").value = i.k;
    $("k-input").max = i.max_k;
    state.map = await getJSON("/api/map");
    state.map.ids.forEach((id, i) => state.position.set(id, i));
    state.scheme = state.map.default_scheme;
    const select = $("scheme");
    for (const name of Object.keys(state.map.schemes)) {
      const option = document.createElement("option");
      option.value = option.textContent = name;
      select.append(option);
    }
    select.value = state.scheme;
    drawLegend();
    draw();
    document.body.dataset.ready = "true";
  } catch (err) {
    setStatus(`could not load the index: ${err.message}`, true);
  }
}

// for tests and scripts: where a row is drawn, in CSS pixels from the canvas's top-left corner
window.echoicExplorer = {
  pointPosition(id) {
    const i = state.position.get(id);
    if (i === undefined) return null;
    const { w, h } = canvasSize();
    const [x, y] = toScreen(i, w, h);
    return { x, y };
  },
  ids() { return state.map ? state.map.ids.slice() : []; },
};

start();
