// The control screens: the live snapshot from ws/control/ drawn into the pairs table, the charts (uPlot) and the
// audit list; every action confirmed in a dialog that says what will happen, then sent to the operator API.
"use strict";

const state = { snapshot: null, charts: {}, chartPair: null, awaitingAudit: null, auditSeen: 0 };
const $ = (selector) => document.querySelector(selector);

function connect() {
  const badge = $("#connection");
  const socket = new WebSocket(document.body.dataset.websocket);
  badge.textContent = "connecting";
  badge.className = "connection connecting";
  socket.onopen = () => {
    badge.textContent = "live";
    badge.className = "connection live";
    const status = $("#pair-status");
    if (status) socket.send(JSON.stringify({ op: "watch", pair: status.dataset.pair }));
  };
  socket.onmessage = (message) => show(JSON.parse(message.data));
  socket.onclose = () => {
    badge.textContent = "disconnected";
    badge.className = "connection disconnected";
    setTimeout(connect, 2000);
  };
}

function show(snapshot) {
  state.snapshot = snapshot;
  if ($("#pairs")) {
    drawPairs(snapshot.pairs);
    drawCharts(snapshot.series);
    drawAudit(snapshot.audit);
  }
  const status = $("#pair-status");
  if (status) {
    const pair = snapshot.pairs.find((row) => row.pair === status.dataset.pair);
    if (pair) status.textContent = describe(pair);
    if (snapshot.detail) drawDetail(snapshot.detail);
  }
}

// ---- a pair's page: its plan history and divergences, redrawn as they grow ---------------------------------
function drawDetail(detail) {
  const timeline = $("#timeline");
  const items = detail.events.map((event) => {
    const li = element("li", `event event-${event.kind}`);
    li.dataset.event = String(event.id);
    li.append(element("time", "", new Date(event.at).toLocaleString()), " ", element("strong", "", event.kind), " ",
      event.from_percentage === null ? "" : `${event.from_percentage}% → ${event.to_percentage}% `,
      element("span", "actor", event.actor), " ", element("span", "reason", event.reason), " ",
      element("span", "plan", `plan ${event.plan} (${event.plan_state})`));
    if (Object.keys(event.figures || {}).length) li.append(details("figures", event.figures));
    return li;
  });
  timeline.replaceChildren(...(items.length ? items : [element("li", "", "No migration yet.")]));
  const section = $("#divergences");
  const articles = detail.divergences.map((divergence) => {
    const article = element("article", "divergence");
    article.id = `divergence-${divergence.id}`;
    article.append(element("h3", "", `${divergence.kind} at engine sequence ${divergence.engine_sequence} ` +
      new Date(divergence.at).toLocaleString()), element("pre", "command", pretty(divergence.command)));
    const sides = element("div", "side-by-side");
    for (const [title, events] of [["Legacy book (stood)", divergence.legacy_events],
                                   ["Adaptive book", divergence.adaptive_events]]) {
      const side = element("div");
      side.append(element("h4", "", title), element("pre", "", pretty(events)));
      sides.append(side);
    }
    article.append(sides);
    return article;
  });
  section.replaceChildren(element("h2", "", "Divergences"),
    ...(articles.length ? articles : [element("p", "", "No divergence: the books agreed on every command.")]));
}

function element(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

function details(summary, value) {
  const node = element("details");
  node.append(element("summary", "", summary), element("pre", "", pretty(value)));
  return node;
}

function pretty(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 1);
}

function describe(row) {
  return `${row.mode} at ${row.current_percentage}% (requested ${row.requested_percentage}%` +
    `${row.applied ? "" : ", not applied yet"}), plan ${row.state}, breaker ${row.breaker_state} ` +
    `(${row.breaker_trips} trips)${row.hold_reason ? `, held: ${row.hold_reason}` : ""}`;
}

// ---- the pairs table -------------------------------------------------------------------------------------
function drawPairs(pairs) {
  const body = $("#pairs tbody");
  body.replaceChildren(...pairs.map(pairRow));
  const select = $("#chart-pair");
  if (select.options.length !== pairs.length) {
    select.replaceChildren(...pairs.map((row) => new Option(row.pair, row.pair)));
    select.value = state.chartPair || (pairs.find((row) => row.state === "running") || pairs[0] || {}).pair || "";
  }
}

function pairRow(row) {
  const tr = document.createElement("tr");
  tr.dataset.pair = row.pair;
  const live = ["pending", "running", "paused"].includes(row.state);
  const cells = [
    link(`/control/${row.pair}/`, row.pair), row.mode, `${row.current_percentage}%`,
    `${row.requested_percentage}%` + (row.applied ? "" : ` (pending ${row.pending_commands})`),
    row.target_percentage === null ? "–" : `${row.target_percentage}%`,
    row.state + (row.hold_reason ? `: ${row.hold_reason}` : ""),
    `${row.breaker_state} (${row.breaker_trips})`,
    row.next_step_at ? new Date(row.next_step_at).toLocaleTimeString() : "–",
  ];
  cells.forEach((content, index) => {
    const td = document.createElement("td");
    td.className = ["pair", "mode", "current", "requested", "target", "plan", "breaker", "next"][index];
    if (index === 3 && !row.applied) td.classList.add("pending");
    if (index === 6) td.classList.add(row.breaker_state);
    td.append(content);
    tr.append(td);
  });
  const actions = document.createElement("td");
  actions.className = "actions";
  const buttons = [];
  if (!live && row.mode === "legacy_only") buttons.push(["start", "Start"]);
  if (live) {
    buttons.push(["step", "Step"], ["percentage", "Set %"]);
    buttons.push(row.hold_code === "operator" ? ["resume", "Resume"] : ["pause", "Pause"]);
  }
  if (live || row.mode !== "legacy_only") buttons.push(["rollback", "Roll back"]);
  if (row.breaker_state !== "closed" || row.breaker_trips) buttons.push(["reset", "Reset breaker"]);
  for (const [action, label] of buttons) {
    const button = document.createElement("button");
    button.textContent = label;
    button.dataset.action = action;
    button.addEventListener("click", () => ask(action, row));
    actions.append(button);
  }
  tr.append(actions);
  return tr;
}

function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}

// ---- actions ---------------------------------------------------------------------------------------------
const ACTIONS = {
  start: {
    fields: ["preset", "target"],
    text: (row) => `Start migrating ${row.pair}: both books run side by side, the adaptive one executes the ` +
      "preset's initial share of the orders (never above the target) and auto-migration steps it toward the target.",
    call: (row, form) => ["POST", "/admin/migration/start",
      { pair: row.pair, target_percentage: Number(form.target.value), preset: form.preset.value }],
  },
  step: {
    fields: [],
    text: (row) => `Raise ${row.pair} from ${row.requested_percentage}% to ${stepped(row)}% of its orders executed by ` +
      "the adaptive book (the plan's step; it becomes the target).",
    call: (row) => ["POST", "/admin/migration/percentage", { pair: row.pair, percentage: stepped(row) }],
  },
  percentage: {
    fields: ["percentage"],
    text: (row) => `Set the share of ${row.pair}'s orders the adaptive book executes (now ${row.requested_percentage}%); ` +
      "it becomes the plan's target.",
    call: (row, form) => ["POST", "/admin/migration/percentage",
      { pair: row.pair, percentage: Number(form.percentage.value) }],
  },
  pause: {
    fields: [],
    text: (row) => `Hold ${row.pair} at ${row.requested_percentage}%: no automatic step until resumed ` +
      "(the rollback triggers still watch it).",
    call: (row) => ["POST", "/admin/migration/pause", { pair: row.pair }],
  },
  resume: {
    fields: [],
    text: (row) => `Let auto-migration step ${row.pair} again, from ${row.requested_percentage}%.`,
    call: (row) => ["POST", "/admin/migration/resume", { pair: row.pair }],
  },
  rollback: {
    fields: [],
    text: (row) => `Roll ${row.pair} back to the legacy book at 0%: the adaptive book stops executing its orders ` +
      "and the plan ends rolled back.",
    call: (row) => ["POST", "/admin/migration/rollback", { pair: row.pair, reason: "rolled back from the control screen" }],
  },
  reset: {
    fields: [],
    text: (row) => `Close ${row.pair}'s circuit breaker (now ${row.breaker_state}, ${row.breaker_trips} trips): ` +
      "the adaptive book takes its share of the orders again.",
    call: (row) => ["POST", `/admin/circuit-breaker/reset/${row.pair}`, null],
  },
  emergency: {
    fields: [],
    text: () => "Emergency stop: every pair not on the legacy book alone goes back to it at once, and every " +
      "migration plan stops.",
    call: () => ["POST", "/admin/migration/emergency-stop", null],
  },
};

function stepped(row) {
  return Math.min(100, row.requested_percentage + (row.step_percentage || 10));
}

function ask(action, row) {
  const dialog = $("#confirm");
  const form = dialog.querySelector("form");
  $("#confirm-text").textContent = ACTIONS[action].text(row);
  dialog.querySelectorAll(".field").forEach((field) =>
    field.classList.toggle("shown", ACTIONS[action].fields.includes(field.dataset.field)));
  if (row && row.requested_percentage !== undefined) form.percentage.value = row.requested_percentage;
  dialog.returnValue = "";
  dialog.onclose = () => {
    if (dialog.returnValue === "confirm") perform(action, row, form);
  };
  dialog.showModal();
}

async function perform(action, row, form) {
  const [method, path, body] = ACTIONS[action].call(row, form);
  const result = $("#result");
  const latestAudit = Math.max(0, ...(state.snapshot ? state.snapshot.audit.map((entry) => entry.id) : []));
  result.className = "result";
  result.textContent = "sending…";
  const response = await fetch(path, {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: body === null ? undefined : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    result.className = "result error";
    result.textContent = `Refused (HTTP ${response.status}): ${(answer.error && answer.error.message) || response.statusText}`;
    return;
  }
  result.className = "result ok";
  result.textContent = summary(action, row, answer);
  state.awaitingAudit = { after: latestAudit, target: row ? `pair:${row.pair}` : null };
  if (state.snapshot) drawAudit(state.snapshot.audit);
}

function summary(action, row, answer) {
  if (action === "emergency") return `Emergency stop: ${answer.stopped.join(", ") || "no pair"} back to the legacy book.`;
  if (action === "reset") return `${row.pair}: breaker reset sent (command ${answer.command}).`;
  return `${answer.pair}: ${answer.state} at ${answer.current_percentage}% (target ${answer.target_percentage}%).`;
}

function csrfToken() {
  return document.querySelector("input[name=csrfmiddlewaretoken]").value;
}

// ---- audit -------------------------------------------------------------------------------------------------
function drawAudit(entries) {
  $("#audit").replaceChildren(...entries.map((entry) => {
    const li = document.createElement("li");
    li.append(link(`/backoffice/exchange/auditlog/${entry.id}/change/`,
      `${new Date(entry.at).toLocaleTimeString()} ${entry.actor} ${entry.action} ${entry.target}`));
    return li;
  }));
  const awaiting = state.awaitingAudit;
  if (!awaiting) return;
  const entry = entries.find((candidate) => candidate.id > awaiting.after &&
    (awaiting.target === null || candidate.target === awaiting.target));
  if (entry) {
    const result = $("#result");
    result.append(" ", link(`/backoffice/exchange/auditlog/${entry.id}/change/`, `audit entry ${entry.id}`));
    state.awaitingAudit = null;
  }
}

// ---- charts ------------------------------------------------------------------------------------------------
const SERIES = {
  latency: [["adaptive", "p50", "#1d4ed8"], ["adaptive", "p95", "#3b82f6"], ["adaptive", "p99", "#93c5fd"],
            ["legacy", "p50", "#b45309"], ["legacy", "p95", "#f59e0b"], ["legacy", "p99", "#fcd34d"]],
  errors: [["adaptive", "error_rate", "#b3261e"], ["legacy", "error_rate", "#6b7280"]],
  divergences: [["adaptive", "divergences", "#7c3aed"]],
};

function drawCharts(series) {
  const select = $("#chart-pair");
  if (!select.onchange) select.onchange = () => { state.chartPair = select.value; drawCharts(state.snapshot.series); };
  const pair = series[select.value] || { minutes: [], books: { adaptive: {}, legacy: {} } };
  for (const [name, lines] of Object.entries(SERIES)) {
    const data = [pair.minutes, ...lines.map(([book, column]) => (pair.books[book] || {})[column] ||
      pair.minutes.map(() => null))];
    const chart = state.charts[name];
    if (chart && chart.pair === select.value) {
      chart.plot.setData(data);
      continue;
    }
    if (chart) chart.plot.destroy();
    const element = $(`#chart-${name}`);
    const plot = new uPlot({
      width: Math.max(380, element.clientWidth || 420), height: 220,
      series: [{}, ...lines.map(([book, column, color]) => ({ label: `${book} ${column}`, stroke: color, width: 2,
        points: { show: true, size: 5 } }))],
      // The last 30 minutes up to now, however few of them have samples yet.
      scales: { x: { time: true, range: () => [Date.now() / 1000 - 30 * 60, Date.now() / 1000 + 60] } },
      axes: [{}, { size: 60 }],
    }, data, element);
    state.charts[name] = { plot, pair: select.value };
    element.dataset.points = String(pair.minutes.length);
  }
  for (const name of Object.keys(SERIES)) $(`#chart-${name}`).dataset.points = String(pair.minutes.length);
}

document.getElementById("emergency-stop")?.addEventListener("click", () => ask("emergency", null));
connect();
