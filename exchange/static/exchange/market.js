// A pair's market, live from the public stream: the snapshot, then each update applied only on top of the
// sequence it follows, the book's CRC32 checked against the server's after every update.
"use strict";

const LEVELS = 15, TAPE = 50;
const book = { bids: new Map(), asks: new Map(), sequence: null, trades: [] };
const $ = (selector) => document.querySelector(selector);
let depthChart = null;

function connect() {
  const socket = new WebSocket(document.body.dataset.websocket);
  setConnection("connecting");
  socket.onopen = () => socket.send(JSON.stringify({ op: "subscribe", channels: ["depth", "trades", "ticker"] }));
  socket.onmessage = (message) => receive(JSON.parse(message.data), socket);
  socket.onclose = () => { setConnection("disconnected"); setTimeout(connect, 2000); };
}

function setConnection(text) {
  const badge = $("#connection");
  badge.textContent = text;
  badge.className = `connection ${text === "live" ? "live" : text === "disconnected" ? "disconnected" : "connecting"}`;
}

function receive(message, socket) {
  if (message.type === "snapshot") {
    book.bids = new Map(message.bids);
    book.asks = new Map(message.asks);
    book.sequence = message.sequence;
    setConnection("live");
    check(message.checksum);
  } else if (message.type === "update") {
    if (book.sequence !== message.previous_sequence) {
      setConnection("resyncing");          // a gap: the server sends a fresh snapshot, or a new connection will
      socket.close();
      return;
    }
    for (const [side, levels] of [["bids", message.bids || []], ["asks", message.asks || []]]) {
      for (const [price, quantity] of levels) {
        if (Number(quantity) === 0) book[side].delete(price); else book[side].set(price, quantity);
      }
    }
    book.sequence = message.sequence;
    book.trades = [...(message.trades || []).slice().reverse(), ...book.trades].slice(0, TAPE);
    if (message.ticker) showTicker(message.ticker);
    check(message.checksum);
  } else if (message.type === "ticker") {
    showTicker(message.ticker);
    return;
  } else {
    return;
  }
  draw();
}

function sorted(side) {
  const levels = [...book[side].entries()];
  levels.sort((a, b) => side === "bids" ? Number(b[0]) - Number(a[0]) : Number(a[0]) - Number(b[0]));
  return levels;
}

// CRC32 of the top 10 levels interleaved (best bid, best ask, second bid, ...), "price:quantity" joined by ":".
function checksum() {
  const bids = sorted("bids").slice(0, 10), asks = sorted("asks").slice(0, 10), parts = [];
  for (let i = 0; i < 10; i++) {
    if (bids[i]) parts.push(`${bids[i][0]}:${bids[i][1]}`);
    if (asks[i]) parts.push(`${asks[i][0]}:${asks[i][1]}`);
  }
  return crc32(parts.join(":"));
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(text) {
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function check(expected) {
  const element = $("#checksum");
  const ok = expected === undefined || checksum() === expected;
  element.textContent = ok ? "checksum ok" : "checksum mismatch";
  element.className = `checksum ${ok ? "ok" : "mismatch"}`;
}

function showTicker(ticker) {
  $("#ticker").textContent = `last ${ticker.last ?? "–"} · 24 h high ${ticker.high ?? "–"} low ${ticker.low ?? "–"}` +
    ` · volume ${ticker.base_volume} ${document.body.dataset.base}`;
}

function draw() {
  $("#sequence").textContent = String(book.sequence);
  const bids = sorted("bids"), asks = sorted("asks");
  $("#asks").replaceChildren(...asks.slice(0, LEVELS).reverse().map(([price, quantity]) => cells([price, quantity])));
  $("#bids").replaceChildren(...bids.slice(0, LEVELS).map(([price, quantity]) => cells([price, quantity])));
  const decimals = (price) => (price.split(".")[1] || "").length;
  $("#spread").textContent = bids.length && asks.length
    ? `spread ${(Number(asks[0][0]) - Number(bids[0][0])).toFixed(Math.max(decimals(asks[0][0]), decimals(bids[0][0])))}`
    : "–";
  $("#tape tbody").replaceChildren(...book.trades.map((trade) =>
    cells([new Date(trade.executed_at).toLocaleTimeString(), trade.price, trade.quantity], trade.taker_side)));
  drawDepth(bids, asks);
}

function cells(values, className) {
  const tr = document.createElement("tr");
  if (className) tr.className = className;
  for (const value of values) {
    const td = document.createElement("td");
    td.textContent = value;
    tr.append(td);
  }
  return tr;
}

// A bid level's total holds from its price down to the next level's; an ask level's from its price up.
const steppedBids = uPlot.paths.stepped({ align: -1 }), steppedAsks = uPlot.paths.stepped({ align: 1 });

// Cumulative quantity by price: bids from the best down, asks from the best up.
function drawDepth(bids, asks) {
  const bidPoints = [], askPoints = [];
  let total = 0;
  for (const [price, quantity] of bids.slice(0, 100)) { total += Number(quantity); bidPoints.push([Number(price), total]); }
  total = 0;
  for (const [price, quantity] of asks.slice(0, 100)) { total += Number(quantity); askPoints.push([Number(price), total]); }
  const prices = [...bidPoints.map((p) => p[0]).reverse(), ...askPoints.map((p) => p[0])];
  const bidColumn = [...bidPoints.map((p) => p[1]).reverse(), ...askPoints.map(() => null)];
  const askColumn = [...bidPoints.map(() => null), ...askPoints.map((p) => p[1])];
  const data = [prices, bidColumn, askColumn];
  const element = $("#depth-chart");
  element.dataset.levels = String(prices.length);
  if (depthChart) { depthChart.setData(data); return; }
  depthChart = new uPlot({
    width: Math.max(420, element.clientWidth || 600), height: 320,
    scales: { x: { time: false } },
    series: [{ label: "price" },
      { label: "bids", stroke: "#1f8a4c", fill: "rgba(31,138,76,.15)", width: 2, paths: steppedBids },
      { label: "asks", stroke: "#b3261e", fill: "rgba(179,38,30,.15)", width: 2, paths: steppedAsks }],
    axes: [{}, { size: 60 }],
  }, data, element);
}

connect();
