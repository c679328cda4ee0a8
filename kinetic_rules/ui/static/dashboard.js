// The dashboard page: reads the API, draws the charts, sends the controls. It reads
// everything once, then only what changed: the stream sends each event and each closed
// trade, and at each close the page asks for what is newer than what it holds (equity
// points, decisions, the last candles). No build step, no dependency but the charting
// library served beside it.
"use strict";

const $ = (selector) => document.querySelector(selector);
const MAX_MARKERS = 150; // more trades than this on the chart: grouped per time bucket
const TRADE_PAGE = 100; // closed trades read at a time (the API's cursor pages)
const KEEP_DECISIONS = 60;
const KEEP_EVENTS = 100;
let chosenPair = "";
let equityChart, realizedLine, totalLine, candleChart, candleSeries, markers;
let tradeRows = []; // the closed trades shown, newest (highest id) first
let tradeCursor = null; // the next older page's cursor; null: all shown
let candles = []; // the chosen pair's candles on the chart
let pairTrades = new Map(); // the chosen pair's closed trades on the chart, by id
let positions = []; // open positions, as last read
let lastEquity = null; // time of the newest equity point drawn
let decisions = []; // shown, newest first
let events = []; // shown, newest first

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
  positions = await api("/api/positions");
  fill($("#positions tbody"), positions.map((p) => el("tr", { "data-trade": p.id },
    el("td", {}, `#${p.id}`), el("td", { class: "pair" }, p.pair), el("td", {}, p.side),
    el("td", {}, num(p.entry_price)), el("td", {}, num(p.price)), el("td", {}, num(p.stop ?? p.initial_stop)),
    el("td", {}, p.trailing ? "moved" : "initial"), el("td", {}, String(p.take_profits_done)),
    el("td", {}, money(p.unrealized)), el("td", {}, `${p.leverage}×`), el("td", {}, num(p.liquidation_price)),
    el("td", {}, el("button", { class: "small", onclick: () => control(`close/${p.id}`) }, "Close")))));
  if (!positions.length) fill($("#positions tbody"), [el("tr", {}, el("td", { colspan: "12" }, "No open positions."))]);
}

// -- closed trades: a page at a time, then each one the stream sends ------------------

function tradeFilters() {
  const query = new URLSearchParams();
  for (const [key, value] of new FormData($("#trade-filters"))) if (value) query.set(key, value);
  return query;
}

function matchesFilters(t) { // the server's filter, for a trade the stream sends
  const f = tradeFilters();
  const entered = Date.parse(t.entry_time);
  return (!f.get("pair") || t.pair === f.get("pair")) && (!f.get("side") || t.side === f.get("side"))
    && (!f.get("reason") || (t.exit_reason || "").includes(f.get("reason")))
    && (!f.get("start") || entered >= Date.parse(`${f.get("start")}T00:00:00Z`))
    && (!f.get("end") || entered < Date.parse(`${f.get("end")}T00:00:00Z`));
}

function tradeRow(t) {
  return el("tr", { "data-trade": t.id },
    el("td", {}, `#${t.id}`), el("td", { class: "pair" }, t.pair), el("td", {}, t.side),
    el("td", {}, when(t.entry_time)), el("td", {}, num(t.entry_price)), el("td", {}, when(t.exit_time)),
    el("td", {}, num(t.exit_price)), el("td", { class: "reason" }, t.exit_reason || ""),
    el("td", {}, money(t.profit)), el("td", {}, t.profit_ratio === null ? "–" : `${(t.profit_ratio * 100).toFixed(2)}%`));
}

function showTrades() {
  fill($("#trades tbody"), tradeRows.map(tradeRow));
  if (!tradeRows.length) fill($("#trades tbody"), [el("tr", {}, el("td", { colspan: "10" }, "No closed trades."))]);
  $("#trades-more").hidden = tradeCursor === null;
  $("#trades-note").textContent = `${tradeRows.length} closed trade(s) shown${tradeCursor === null ? "" : "; older ones below"}`;
}

async function loadTrades(fromTop) {
  const query = tradeFilters();
  query.set("limit", String(TRADE_PAGE));
  if (!fromTop && tradeCursor !== null) query.set("after", String(tradeCursor));
  const page = await api(`/api/trades?${query}`);
  if (fromTop) tradeRows = [];
  const known = new Set(tradeRows.map((t) => t.id));
  tradeRows.push(...page.trades.filter((t) => !known.has(t.id)));
  tradeCursor = page.next;
  showTrades();
}

function addTrade(t) {
  if (matchesFilters(t) && !tradeRows.some((row) => row.id === t.id)) {
    const at = tradeRows.findIndex((row) => row.id < t.id);
    tradeRows.splice(at < 0 ? tradeRows.length : at, 0, t);
    if (at < 0 && tradeCursor !== null) tradeRows.pop(); // older than the shown: its page has it
    showTrades();
  }
  if (t.pair === chosenPair) { pairTrades.set(t.id, t); showMarkers(); }
}

// -- equity, candles, decisions, events: all at first, then what is newer --------------

async function loadEquity(fromStart) {
  const seconds = (p) => Math.floor(Date.parse(p.time) / 1000);
  if (fromStart || lastEquity === null) {
    const points = await api("/api/equity");
    const unique = (rows) => rows.filter((row, i) => i === rows.length - 1 || rows[i + 1].time !== row.time);
    realizedLine.setData(unique(points.map((p) => ({ time: seconds(p), value: p.realized }))));
    totalLine.setData(unique(points.filter((p) => p.total !== null).map((p) => ({ time: seconds(p), value: p.total }))));
    lastEquity = points.length ? points[points.length - 1].time : null;
    return;
  }
  const points = await api(`/api/equity?after=${encodeURIComponent(lastEquity)}`);
  for (const p of points) {
    realizedLine.update({ time: seconds(p), value: p.realized });
    if (p.total !== null) totalLine.update({ time: seconds(p), value: p.total });
    lastEquity = p.time;
  }
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

async function loadCandles(fromStart) {
  if (!chosenPair) return;
  const pair = encodeURIComponent(chosenPair);
  if (fromStart || !candles.length) {
    candles = await api(`/api/candles?pair=${pair}&limit=1500`);
    candleSeries.setData(candles);
    pairTrades = new Map();
    if (candles.length) { // the pair's closed trades since the first candle, for the marks
      const since = new Date(candles[0].time * 1000).toISOString();
      const page = await api(`/api/trades?pair=${pair}&start=${encodeURIComponent(since)}&limit=1000`);
      for (const t of page.trades) pairTrades.set(t.id, t);
    }
  } else { // the candle that closed, and the one forming if the session holds it
    const last = candles[candles.length - 1].time;
    for (const candle of await api(`/api/candles?pair=${pair}&limit=3`)) {
      if (candle.time < last) continue;
      candleSeries.update(candle);
      if (candle.time === candles[candles.length - 1].time) candles[candles.length - 1] = candle;
      else candles.push(candle);
    }
  }
  showMarkers();
}

function showMarkers() {
  const mine = [...pairTrades.values(), ...positions.filter((p) => p.pair === chosenPair)];
  markers.setMarkers(tradeMarkers(mine, candles));
  $("#candle-note").textContent = candles.length
    ? `${candles.length} candles, ${mine.length} trades of ${chosenPair}`
    : "No candles of this pair were recorded.";
}

function decisionBox(d) {
  const kind = d.outcome.startsWith("entered") ? "entered" : d.outcome.startsWith("no slot") ? "noslot" : "";
  const lines = el("ul", { class: "lines" }, ...d.lines.map((line) => el("li", {},
    `${line.holds === true ? "✓" : line.holds === false ? "✗" : "·"} ${line.label}: ${line.text} → ${line.value}`,
    ...line.parts.map((part) => el("div", { class: "parts" }, `${part.text} = ${part.value}`)))));
  return el("div", { class: `decision ${kind}`, "data-pair": d.pair },
    el("div", { class: "head", onclick: () => choosePair(d.pair) },
      el("span", { class: "time" }, when(d.time)), el("strong", { class: "pair" }, d.pair), el("span", {}, d.side),
      el("span", {}, `${d.verdict} — ${d.held} of ${d.total} hold`), el("em", {}, d.outcome)),
    lines);
}

async function loadDecisions(fromStart) {
  const query = `limit=${KEEP_DECISIONS}`;
  if (fromStart || !decisions.length) decisions = await api(`/api/decisions?${query}`);
  else {
    const newer = await api(`/api/decisions?${query}&after=${encodeURIComponent(decisions[0].time)}`);
    if (!newer.length) return;
    decisions = [...newer, ...decisions].slice(0, KEEP_DECISIONS);
  }
  const box = $("#decisions");
  if (!decisions.length) { box.replaceChildren(el("p", { class: "note" }, "No close has come near a decision yet.")); return; }
  box.replaceChildren(...decisions.map(decisionBox));
}

function showEvents() {
  fill($("#events"), events.map((e) => el("li", { "data-kind": e.kind },
    el("span", { class: "time" }, when(e.time)), `${e.kind}: ${e.message}`)));
}

async function loadEvents() {
  events = (await api(`/api/events?limit=${KEEP_EVENTS}`)).reverse();
  showEvents();
}

function addEvent(e) {
  const same = (o) => o.time === e.time && o.kind === e.kind && o.message === e.message;
  if (events.slice(0, 20).some(same)) return; // read already, by the first read
  events = [e, ...events].slice(0, KEEP_EVENTS);
  showEvents();
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
  loadCandles(true).catch(failed);
}

// -- controls -------------------------------------------------------------------------

async function control(what) {
  if (what === "close-all" && !confirm("Cancel every entry order waiting to fill and close every open trade at market?")) return;
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
  update(false);
}

// -- reading: all at first (and after the stream reconnects), then what changed ---------

function failed(error) {
  $("#control-result").textContent = `could not load: ${error.message}`;
}

let running = null, wanted = null; // one update at a time; the next one waits its turn
async function update(everything) {
  wanted = wanted === null ? everything : wanted || everything;
  if (running) return running;
  running = (async () => {
    while (wanted !== null) {
      const full = wanted;
      wanted = null;
      try {
        await loadStatus();
        await loadPositions();
        const reads = [loadEquity(full), loadDecisions(full), loadScanner(), loadCandles(full)];
        if (full) reads.push(loadTrades(true), loadEvents());
        await Promise.all(reads);
        document.body.dataset.loaded = String(Date.now());
      } catch (error) {
        failed(error);
      }
    }
  })();
  await running;
  running = null;
}

let pending = null, pendingFull = false;
function soon(everything) {
  pendingFull = pendingFull || everything;
  if (pending) return;
  pending = setTimeout(() => { pending = null; const full = pendingFull; pendingFull = false; update(full); }, 250);
}

function received(message) {
  const change = JSON.parse(message.data);
  if (change.type === "event") {
    addEvent(change.event);
    if (["trade_opened", "trade_closed", "control"].includes(change.event.kind)) soon(false); // positions
  } else if (change.type === "trade") {
    addTrade(change.trade);
  } else if (change.type === "close") {
    soon(false);
  } else { // a stored session changed: read it again
    soon(true);
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/stream`);
  socket.onopen = () => { document.body.dataset.stream = "open"; soon(true); };
  socket.onmessage = received;
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
  $("#trade-filters").addEventListener("submit", (event) => { event.preventDefault(); loadTrades(true).catch(failed); });
  $("#trades-more").addEventListener("click", () => loadTrades(false).catch(failed));
  loadStrategy();
  update(true);
  connect(); // once open, reads everything again: no change falls in between
}

start();
