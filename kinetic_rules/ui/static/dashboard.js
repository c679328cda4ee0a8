// The dashboard page: reads the API, draws the charts, sends the controls, and reloads
// whenever the stream says something happened. No build step, no dependency but the
// charting library served beside it.
"use strict";

const $ = (selector) => document.querySelector(selector);
const MAX_MARKERS = 150; // more trades than this on the chart: grouped per time bucket
let chosenPair = "";
let equityChart, realizedLine, totalLine, candleChart, candleSeries, markers;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function num(value, digits = 6) {
  if (value === null || value === undefined) return "–";
  return Number(value).toPrecision(digits).replace(/\.?0+$/, "").replace(/\.?0+e/, "e");
}

function money(value) {
  if (value === null || value === undefined) return el("span", {}, "–");
  return el("span", { class: value > 0 ? "pos" : value < 0 ? "neg" : "" },
    (value > 0 ? "+" : "") + Number(value).toFixed(2));
}

function when(text) {
  if (!text) return "–";
  return text.replace("T", " ").replace(/(:\d\d)(\.\d+)?(Z|[+-]00:00)$/, "$1").slice(0, 16);
}

async function api(path) {
  const answer = await fetch(path);
  if (!answer.ok) throw new Error(`${path}: ${answer.status}`);
  return answer.json();
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// -- panels ---------------------------------------------------------------------------

async function loadStatus() {
  const status = await api("/api/status");
  $("#title").textContent = `kinetic-rules · ${status.strategy || "no strategy"}`;
  const badges = [
    [status.source === "session" ? "running" : `from the ${status.source}`, status.running ? "good" : ""],
    status.paused ? ["entries paused", "bad"] : null,
    status.stopping ? ["stopping", "bad"] : null,
    [status.fail_safe ? "fail-safe ON" : "fail-safe off", status.fail_safe ? "bad" : "good"],
    [`exchange: ${status.exchange}`, status.exchange.startsWith("ok") ? "good" : "bad"],
    [`last close ${when(status.last_close)}`, ""],
    [`controls: ${status.controls}`, status.controls === "enabled" ? "good" : ""],
  ].filter(Boolean);
  $("#badges").replaceChildren(...badges.map(([text, kind]) => el("span", { class: `badge ${kind}` }, text)));
  $("#badges").dataset.paused = String(status.paused);
  fill($("#pairs tbody"), status.pairs.map((p) => el("tr", {},
    el("td", { class: "pair" }, p.pair), el("td", {}, p.regime || "–"),
    el("td", {}, p.blocked ? "blocks entries" : "–"), el("td", {}, p.shortlisted ? "listed" : "not listed"))));
  const select = $("#chart-pair");
  const pairs = status.pairs.map((p) => p.pair);
  if (select.options.length !== pairs.length) {
    select.replaceChildren(...pairs.map((p) => el("option", { value: p }, p)));
    if (!chosenPair && pairs.length) chosenPair = pairs[0];
    select.value = chosenPair;
  }
  return status;
}

async function loadPositions() {
  const positions = await api("/api/positions");
  fill($("#positions tbody"), positions.map((p) => el("tr", { "data-trade": p.id },
    el("td", {}, `#${p.id}`), el("td", { class: "pair" }, p.pair), el("td", {}, p.side),
    el("td", {}, num(p.entry_price)), el("td", {}, num(p.price)), el("td", {}, num(p.stop ?? p.initial_stop)),
    el("td", {}, p.trailing ? "moved" : "initial"), el("td", {}, String(p.take_profits_done)),
    el("td", {}, money(p.unrealized)), el("td", {}, `${p.leverage}×`), el("td", {}, num(p.liquidation_price)),
    el("td", {}, el("button", { class: "small", onclick: () => control(`close/${p.id}`) }, "Close")))));
  if (!positions.length) fill($("#positions tbody"), [el("tr", {}, el("td", { colspan: "12" }, "No open positions."))]);
}

async function loadTrades() {
  const form = new FormData($("#trade-filters"));
  const query = new URLSearchParams();
  for (const [key, value] of form) if (value) query.set(key, value);
  const trades = await api(`/api/trades?${query}`);
  const closed = trades.filter((t) => t.exit_time).reverse();
  fill($("#trades tbody"), closed.slice(0, 300).map((t) => el("tr", {},
    el("td", {}, `#${t.id}`), el("td", { class: "pair" }, t.pair), el("td", {}, t.side),
    el("td", {}, when(t.entry_time)), el("td", {}, num(t.entry_price)), el("td", {}, when(t.exit_time)),
    el("td", {}, num(t.exit_price)), el("td", { class: "reason" }, t.exit_reason || ""),
    el("td", {}, money(t.profit)), el("td", {}, t.profit_ratio === null ? "–" : `${(t.profit_ratio * 100).toFixed(2)}%`))));
  return trades;
}

async function loadEquity() {
  const points = await api("/api/equity");
  const seconds = (p) => Math.floor(Date.parse(p.time) / 1000);
  const unique = (rows) => rows.filter((row, i) => i === rows.length - 1 || rows[i + 1].time !== row.time);
  realizedLine.setData(unique(points.map((p) => ({ time: seconds(p), value: p.realized }))));
  totalLine.setData(unique(points.filter((p) => p.total !== null).map((p) => ({ time: seconds(p), value: p.total }))));
}

function tradeMarkers(trades, candles) {
  const at = (text) => Math.floor(Date.parse(text) / 1000);
  const first = candles.length ? candles[0].time : 0;
  const marks = [];
  for (const t of trades) {
    if (at(t.entry_time) >= first) marks.push({ time: at(t.entry_time), kind: "entry", side: t.side });
    if (t.exit_time && at(t.exit_time) >= first) marks.push({ time: at(t.exit_time), kind: "exit", win: t.profit > 0 });
  }
  marks.sort((a, b) => a.time - b.time);
  const snap = (time) => { // a marker sits on the candle that holds its time
    let lo = 0, hi = candles.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (candles[mid].time <= time) lo = mid; else hi = mid - 1; }
    return candles.length ? candles[lo].time : time;
  };
  if (marks.length <= MAX_MARKERS) {
    return marks.map((m) => m.kind === "entry"
      ? { time: snap(m.time), position: m.side === "long" ? "belowBar" : "aboveBar",
          shape: m.side === "long" ? "arrowUp" : "arrowDown", color: "#58a6ff", size: 0.6 }
      : { time: snap(m.time), position: "aboveBar", shape: "circle", color: m.win ? "#3fb950" : "#f85149", size: 0.5 });
  }
  // Thousands of trades: one marker per bucket of candles, saying how many it holds.
  const bucket = Math.ceil(candles.length / MAX_MARKERS);
  const groups = new Map();
  for (const m of marks) {
    const index = candles.findIndex((c) => c.time >= m.time);
    const key = Math.floor((index < 0 ? candles.length - 1 : index) / bucket) * bucket;
    groups.set(key, (groups.get(key) || 0) + (m.kind === "entry" ? 1 : 0));
  }
  return [...groups].filter(([, n]) => n > 0).map(([index, n]) => (
    { time: candles[index].time, position: "belowBar", shape: "circle", color: "#58a6ff", size: 0.5, text: String(n) }));
}

async function loadCandles(trades) {
  if (!chosenPair) return;
  const candles = await api(`/api/candles?pair=${encodeURIComponent(chosenPair)}&limit=1500`);
  candleSeries.setData(candles);
  const mine = trades.filter((t) => t.pair === chosenPair);
  markers.setMarkers(tradeMarkers(mine, candles));
  $("#candle-note").textContent = candles.length
    ? `${candles.length} candles, ${mine.length} trades of ${chosenPair}`
    : "No candles of this pair were recorded.";
}

async function loadDecisions() {
  const decisions = await api("/api/decisions?limit=60");
  const box = $("#decisions");
  if (!decisions.length) { box.replaceChildren(el("p", { class: "note" }, "No close has come near a decision yet.")); return; }
  box.replaceChildren(...decisions.map((d) => {
    const kind = d.outcome.startsWith("entered") ? "entered" : d.outcome.startsWith("no slot") ? "noslot" : "";
    const lines = el("ul", { class: "lines" }, ...d.lines.map((line) => el("li", {},
      `${line.holds === true ? "✓" : line.holds === false ? "✗" : "·"} ${line.label}: ${line.text} → ${line.value}`,
      ...line.parts.map((part) => el("div", { class: "parts" }, `${part.text} = ${part.value}`)))));
    return el("div", { class: `decision ${kind}`, "data-pair": d.pair },
      el("div", { class: "head", onclick: () => choosePair(d.pair) },
        el("span", { class: "time" }, when(d.time)), el("strong", { class: "pair" }, d.pair), el("span", {}, d.side),
        el("span", {}, `${d.verdict} — ${d.held} of ${d.total} hold`), el("em", {}, d.outcome)),
      lines);
  }));
}

async function loadEvents() {
  const events = await api("/api/events?limit=100");
  fill($("#events"), events.reverse().map((e) => el("li", { "data-kind": e.kind },
    el("span", { class: "time" }, when(e.time)), `${e.kind}: ${e.message}`)));
}

async function loadStrategy() {
  const strategy = await api("/api/strategy");
  $("#strategy-path").textContent = strategy.path;
  $("#strategy-text").textContent = strategy.text;
  fill($("#params tbody"), Object.entries(strategy.params).map(([name, value]) =>
    el("tr", {}, el("td", {}, `$${name}`), el("td", {}, value))));
}

async function loadScanner() {
  const scanner = await api("/api/scanner");
  fill($("#scanner-changes"), scanner.changes.map((c) => el("li", {},
    el("span", { class: "time" }, when(c.time)),
    `in: ${c.added.join(", ") || "–"}; out: ${c.removed.join(", ") || "–"}`)));
  if (!scanner.changes.length) fill($("#scanner-changes"), [el("li", { class: "note" }, "No change seen.")]);
}

function choosePair(pair) {
  chosenPair = pair;
  $("#chart-pair").value = pair;
  refresh();
}

// -- controls -------------------------------------------------------------------------

async function control(what) {
  if (what === "close-all" && !confirm("Close every open trade at market?")) return;
  if (what === "stop" && !confirm("Stop the session? It makes no new trades and ends.")) return;
  const token = $("#token").value.trim();
  sessionStorage.setItem("kinetic-ui-token", token);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const answer = await fetch(`/api/controls/${what}`, { method: "POST", headers });
  const body = await answer.json().catch(() => ({}));
  const text = answer.ok ? body.message : `refused (${answer.status}): ${body.detail || answer.statusText}`;
  const result = $("#control-result");
  result.textContent = text;
  result.className = answer.ok ? "pos" : "neg";
  refresh();
}

// -- refresh and the stream -----------------------------------------------------------

let refreshing = null, again = false;
async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    try {
      await loadStatus();
      const [trades] = await Promise.all([loadTrades(), loadPositions(), loadEquity(), loadDecisions(),
        loadEvents(), loadScanner()]);
      await loadCandles(trades);
      document.body.dataset.loaded = String(Date.now());
    } catch (error) {
      $("#control-result").textContent = `could not load: ${error.message}`;
    }
  })();
  await refreshing;
  refreshing = null;
  if (again) { again = false; return refresh(); }
}

let pending = null;
function soon() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; refresh(); }, 250);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/stream`);
  socket.onopen = () => { document.body.dataset.stream = "open"; soon(); };
  socket.onmessage = soon;
  socket.onclose = () => { document.body.dataset.stream = "closed"; setTimeout(connect, 2000); };
}

function charts() {
  const options = (element) => ({
    autoSize: true,
    layout: { background: { color: "#182028" }, textColor: "#d8dee4", attributionLogo: true },
    grid: { vertLines: { color: "#22303c" }, horzLines: { color: "#22303c" } },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  const LC = window.LightweightCharts;
  equityChart = LC.createChart($("#equity-chart"), options());
  realizedLine = equityChart.addSeries(LC.LineSeries, { color: "#58a6ff", lineWidth: 2 });
  totalLine = equityChart.addSeries(LC.LineSeries, { color: "#d29922", lineWidth: 1, lineStyle: 1 });
  candleChart = LC.createChart($("#candle-chart"), options());
  candleSeries = candleChart.addSeries(LC.CandlestickSeries, {
    upColor: "#3fb950", downColor: "#f85149", borderVisible: false,
    wickUpColor: "#3fb950", wickDownColor: "#f85149" });
  markers = LC.createSeriesMarkers(candleSeries, []);
}

function start() {
  charts();
  $("#token").value = sessionStorage.getItem("kinetic-ui-token") || "";
  for (const button of document.querySelectorAll("[data-control]")) {
    button.addEventListener("click", () => control(button.dataset.control));
  }
  $("#chart-pair").addEventListener("change", (event) => choosePair(event.target.value));
  $("#trade-filters").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  loadStrategy();
  refresh();
  connect();
}

start();
